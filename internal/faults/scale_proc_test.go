package faults

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in
// /proc/PID/stat: 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTicks returns the CPU time process pid has used so far, user and
// system, in clock ticks (utime + stime of /proc/PID/stat).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields after it start past the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("pid %d: stat %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("pid %d: stat has %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("pid %d: stat utime %q stime %q", pid, f[11], f[12])
	}
	return ut + st, nil
}

// meshCPU returns the CPU the processes pids used together over window,
// in percent of one core.
func meshCPU(pids []int, window time.Duration) (float64, error) {
	before, err := cpuSeconds(pids)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	time.Sleep(window)
	after, err := cpuSeconds(pids)
	if err != nil {
		return 0, err
	}
	secs := after - before
	return 100 * secs / time.Since(start).Seconds(), nil
}

// cpuSeconds returns the CPU time (user and system) the processes have
// used since they started, summed, in seconds.
func cpuSeconds(pids []int) (float64, error) {
	var total int64
	for _, pid := range pids {
		n, err := cpuTicks(pid)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return float64(total) / clockTicks, nil
}

// loadAverage returns the first three fields of /proc/loadavg, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// spread describes a sample: min, median and max.
type spread struct{ min, median, max float64 }

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return spread{min: s[0], median: s[len(s)/2], max: s[len(s)-1]}
}

func (s spread) String() string {
	return fmt.Sprintf("%.0f/%.0f/%.0f", s.min, s.median, s.max)
}
