package faults

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What waking an idle process costs on this machine.
//
// An idle member of a mesh spends most of its CPU waking up: for
// GossipSub's heartbeat every second, for a neighbour's refresh, for an
// anti-entropy sync. What a wake-up costs is the machine's, not the
// code's: on the VM of stops 35-39 (issue 16) the code of stop 34 idled
// at 24-26 % of a core, against 5.6-8.2 % on that of stops 28-34, and a
// wake-up cost 0.15-0.22 ms of CPU (the first VM's was not measured).
// So the scale scenario first measures it, with processes that do
// nothing but wake on a ticker and hand the tick to a second goroutine
// (as GossipSub's heartbeat hands its tick to its event loop), and
// reports it beside the mesh's figures.
const (
	// wakeHelperEnv: a process of this package's test binary started with
	// it set to a period wakes every period until its standard input
	// closes (TestMain), and does nothing else.
	wakeHelperEnv = "REFLECT_FAULTS_WAKE_HELPER"
	wakeProcs     = 10
	wakePeriod    = 100 * time.Millisecond
	wakeSettle    = time.Second
	wakeWindow    = 5 * time.Second
)

// runWakeHelper ticks every period, handing each tick to a second
// goroutine, until standard input closes; it returns the process's exit
// code.
func runWakeHelper(period string) int {
	d, err := time.ParseDuration(period)
	if err != nil || d <= 0 {
		fmt.Fprintf(os.Stderr, "%s=%q: want a positive duration\n", wakeHelperEnv, period)
		return 2
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	ticks := make(chan time.Time)
	go func() {
		for range ticks {
		}
	}()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-done:
			close(ticks)
			return 0
		case now := <-t.C:
			ticks <- now
		}
	}
}

// wakeCosts is what one wake-up of an idle process cost, on average.
type wakeCosts struct {
	cpu      time.Duration // CPU time, user and system
	switches float64       // context switches of its threads
}

// measureWake starts wakeProcs helper processes, each woken every
// wakePeriod, and returns what one wake-up cost them over wakeWindow,
// after wakeSettle.
func measureWake() (wakeCosts, error) {
	exe, err := os.Executable()
	if err != nil {
		return wakeCosts{}, err
	}
	var (
		cmds  []*exec.Cmd
		pipes []io.WriteCloser
	)
	stop := func() error {
		for _, p := range pipes {
			_ = p.Close()
		}
		var errs []error
		for _, c := range cmds {
			errs = append(errs, c.Wait())
		}
		return errors.Join(errs...)
	}
	for range wakeProcs {
		c := exec.Command(exe)
		c.Env = append(os.Environ(), wakeHelperEnv+"="+wakePeriod.String())
		in, err := c.StdinPipe()
		if err != nil {
			_ = stop()
			return wakeCosts{}, err
		}
		if err := c.Start(); err != nil {
			_ = in.Close()
			_ = stop()
			return wakeCosts{}, fmt.Errorf("start a waking process: %w", err)
		}
		cmds = append(cmds, c)
		pipes = append(pipes, in)
	}
	time.Sleep(wakeSettle)
	before, err := schedTotals(cmds)
	if err != nil {
		_ = stop()
		return wakeCosts{}, err
	}
	start := time.Now()
	time.Sleep(wakeWindow)
	after, err := schedTotals(cmds)
	elapsed := time.Since(start)
	if serr := stop(); err == nil && serr != nil {
		err = fmt.Errorf("waking processes: %w", serr)
	}
	if err != nil {
		return wakeCosts{}, err
	}
	wakes := float64(wakeProcs) * elapsed.Seconds() / wakePeriod.Seconds()
	return wakeCosts{
		cpu:      time.Duration(float64(after.cpu-before.cpu) / wakes),
		switches: float64(after.slices-before.slices) / wakes,
	}, nil
}

// schedCounts: the nanoseconds threads ran, and the times they were put
// on a CPU.
type schedCounts struct{ cpu, slices int64 }

// schedTotals sums /proc/PID/task/*/schedstat over the processes.
func schedTotals(cmds []*exec.Cmd) (schedCounts, error) {
	var total schedCounts
	for _, c := range cmds {
		dir := fmt.Sprintf("/proc/%d/task", c.Process.Pid)
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return schedCounts{}, err
		}
		for _, task := range tasks {
			s, err := readSchedstat(filepath.Join(dir, task.Name(), "schedstat"))
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread ended
			}
			if err != nil {
				return schedCounts{}, err
			}
			total.cpu += s.cpu
			total.slices += s.slices
		}
	}
	return total, nil
}

// readSchedstat reads one thread's schedstat: time on a CPU (ns), time
// waiting for one (ns), timeslices run.
func readSchedstat(path string) (schedCounts, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return schedCounts{}, err
	}
	fields := strings.Fields(string(b))
	if len(fields) != 3 {
		return schedCounts{}, fmt.Errorf("%s: %q: want 3 fields", path, b)
	}
	cpu, err1 := strconv.ParseInt(fields[0], 10, 64)
	slices, err2 := strconv.ParseInt(fields[2], 10, 64)
	if err1 != nil || err2 != nil {
		return schedCounts{}, fmt.Errorf("%s: %q: not numbers", path, b)
	}
	return schedCounts{cpu: cpu, slices: slices}, nil
}

// machineStep reports what one wake-up of an idle process costs here,
// and what waking 50 and 100 processes once a second (as GossipSub's
// heartbeat does each member) would cost: a floor under the scenario's
// idle figures, which are in percent of one core.
func machineStep(t *testing.T) {
	t.Helper()
	w, err := measureWake()
	if err != nil {
		t.Fatalf("measuring a wake-up: %v", err)
	}
	if w.cpu <= 0 || w.switches < 1 {
		t.Fatalf("measuring a wake-up: %v of CPU and %.2f switches a wake: the processes did not wake", w.cpu, w.switches)
	}
	perSecond := func(procs int) float64 { return 100 * float64(procs) * w.cpu.Seconds() }
	report(t, "this machine: one wake-up of an idle Go process costs %v of CPU and %.1f context switches (%d processes woken every %v for %v); woken once a second, 50 such processes use %.1f %% of a core, 100 %.1f %%",
		w.cpu.Round(time.Microsecond), w.switches, wakeProcs, wakePeriod, wakeWindow, perSecond(50), perSecond(100))
}

func TestReadSchedstat(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		text string
		want schedCounts
		ok   bool
	}{
		{"2416345 871020 37\n", schedCounts{cpu: 2416345, slices: 37}, true},
		{"2416345 871020\n", schedCounts{}, false},
		{"2416345 x 37 1\n", schedCounts{}, false},
		{"a 871020 37\n", schedCounts{}, false},
		{"", schedCounts{}, false},
	} {
		path := filepath.Join(dir, "schedstat")
		if err := os.WriteFile(path, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readSchedstat(path)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("readSchedstat(%q) = %+v, %v; want %+v, ok %v", c.text, got, err, c.want, c.ok)
		}
	}
	if _, err := readSchedstat(filepath.Join(dir, "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a thread gone: %v, want os.ErrNotExist", err)
	}
}
