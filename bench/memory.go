package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"
)

// memReading is one look at this process's memory (and its servers').
type memReading struct {
	Heap      uint64 // heap objects, live and not yet swept (runtime/metrics)
	Held      uint64 // memory the Go runtime holds from the OS (total − released): ≈ RSS of Go code
	RSS       uint64 // this process's VmRSS
	ServerRSS uint64 // sum of VmRSS of the system's servers
}

var memSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/total:bytes"},
	{Name: "/memory/classes/heap/released:bytes"},
}

// readMem reads the process's memory and that of the given server PIDs.
func readMem(servers []int) memReading {
	s := make([]metrics.Sample, len(memSamples))
	copy(s, memSamples)
	metrics.Read(s)
	r := memReading{Heap: value(s[0]), Held: value(s[1]) - value(s[2]), RSS: vmRSS(os.Getpid())}
	for _, pid := range servers {
		r.ServerRSS += vmRSS(pid)
	}
	return r
}

func value(s metrics.Sample) uint64 {
	if s.Value.Kind() == metrics.KindUint64 {
		return s.Value.Uint64()
	}
	return 0
}

// settledMem collects garbage and returns memory to the OS first, for a
// baseline or an idle reading.
func settledMem(servers []int) memReading {
	runtime.GC()
	debug.FreeOSMemory()
	return readMem(servers)
}

// vmRSS returns a process's resident set in bytes from /proc (0 if unknown).
func vmRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(string(f[0]), 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// memPeak samples memory every interval until stopped and keeps the
// maximum of each figure.
type memPeak struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	peak memReading
}

func startMemPeak(servers []int, every time.Duration) *memPeak {
	m := &memPeak{stop: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m.take(servers)
			select {
			case <-m.stop:
				m.take(servers)
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memPeak) take(servers []int) {
	r := readMem(servers)
	m.mu.Lock()
	m.peak.Heap = max(m.peak.Heap, r.Heap)
	m.peak.Held = max(m.peak.Held, r.Held)
	m.peak.RSS = max(m.peak.RSS, r.RSS)
	m.peak.ServerRSS = max(m.peak.ServerRSS, r.ServerRSS)
	m.mu.Unlock()
}

// done stops sampling and returns the peaks.
func (m *memPeak) done() memReading {
	close(m.stop)
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak
}

// MemResult is per-node memory: the process's growth over its baseline
// before the cluster started, divided by the number of participants (they
// all live in this process; for NATS that includes the embedded server),
// plus the RSS of out-of-process servers (Redis), not divided.
type MemResult struct {
	IdleHeapMB     float64 `json:"idle_heap_mb_per_node"`
	IdleHeldMB     float64 `json:"idle_held_mb_per_node"`
	BurstHeapMB    float64 `json:"burst_peak_heap_mb_per_node"`
	BurstHeldMB    float64 `json:"burst_peak_held_mb_per_node"`
	ProcessRSSMB   float64 `json:"burst_peak_process_rss_mb"`
	ServerIdleMB   float64 `json:"server_idle_rss_mb,omitempty"`
	ServerBurstMB  float64 `json:"server_burst_peak_rss_mb,omitempty"`
	BurstSizeBytes int     `json:"burst_message_bytes"`
}

const mb = 1e6

// perNode turns the growth from base to r into MB per node.
func perNode(r, base uint64, n int) float64 {
	if r < base {
		return 0
	}
	return float64(r-base) / float64(n) / mb
}
