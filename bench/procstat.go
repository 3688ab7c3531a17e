package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// procStat is what /proc says about one process (-procs mode): memory,
// CPU time and context switches, for a participant or a server alike.
type procStat struct {
	RSS  uint64 // VmRSS, bytes
	Anon uint64 // RssAnon, bytes: private memory (heap, stacks), no shared file pages
	// CPU is user + system time of all its threads, dead ones included
	// (/proc/PID/stat utime + stime, in clock ticks of 10 ms).
	CPU time.Duration
	// Switches is voluntary + involuntary context switches summed over
	// its live threads (/proc/PID/task/*/status): how often it went to
	// sleep and woke up, or was preempted.
	Switches uint64
}

// errNoProc is returned when a process's /proc entry cannot be read.
var errNoProc = errors.New("process not readable in /proc")

// userHZ is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100
// on every Linux architecture Go builds for, whatever CONFIG_HZ is).
const userHZ = 100

// readProcStat reads pid's figures.
func readProcStat(pid int) (procStat, error) {
	var st procStat
	dir := fmt.Sprintf("/proc/%d", pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return st, fmt.Errorf("%w: %w", errNoProc, err)
	}
	st.RSS = statusKB(status, "VmRSS:")
	st.Anon = statusKB(status, "RssAnon:")
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return st, fmt.Errorf("%w: %w", errNoProc, err)
	}
	if st.CPU, err = statCPU(stat); err != nil {
		return st, fmt.Errorf("%w: pid %d: %w", errNoProc, pid, err)
	}
	tasks, _ := filepath.Glob(dir + "/task/*/status")
	for _, t := range tasks {
		if b, err := os.ReadFile(t); err == nil {
			st.Switches += statusValue(b, "voluntary_ctxt_switches:") + statusValue(b, "nonvoluntary_ctxt_switches:")
		}
	}
	return st, nil
}

// procMem reads only pid's VmRSS and RssAnon (0, 0 if it is gone): cheap
// enough to sample every few milliseconds.
func procMem(pid int) (rss, anon uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	return statusKB(b, "VmRSS:"), statusKB(b, "RssAnon:")
}

// statusKB returns a "Name:   123 kB" line of /proc/PID/status in bytes.
func statusKB(status []byte, name string) uint64 { return statusValue(status, name) << 10 }

// statusValue returns the first number after name in /proc/PID/status, 0
// if the line is missing.
func statusValue(status []byte, name string) uint64 {
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(name)); ok {
			if f := bytes.Fields(rest); len(f) > 0 {
				v, _ := strconv.ParseUint(string(f[0]), 10, 64)
				return v
			}
		}
	}
	return 0
}

// statCPU parses utime + stime (fields 14 and 15) of /proc/PID/stat. The
// command name (field 2) is in parentheses and may hold spaces, so the
// fields are counted from the last ')'.
func statCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	stt, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+stt) * time.Second / userHZ, nil
}
