package crdtstore_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/internal/netns"
	"github.com/reflectmesh/reflect/node"
)

// joinChildEnv, set in a child's environment to a holder's address, makes
// TestJoinChild join the holder's store.
const joinChildEnv = "REFLECT_TEST_JOIN_CHILD"

// TestJoinChild is the joiner of BenchmarkJoinProcess, a process of its
// own: it starts a node with the default store, connects to the holder,
// waits until synced, and prints one line of figures:
//
//	joined keys=N up=µs synced=µs bytes=B heap=B rss=B hwm=B
//
// (times from the process's start of the test; heap: the Go heap in use
// after a GC; rss, hwm: VmRSS and VmHWM, the peak, from /proc). It skips
// unless run as that child.
func TestJoinChild(t *testing.T) {
	addr := os.Getenv(joinChildEnv)
	if addr == "" {
		t.Skip("the joiner of BenchmarkJoinProcess")
	}
	start := time.Now()
	c := startStoreNodeWith(t, node.Config{}, crdtstore.Options{})
	up := time.Since(start)
	connectAndSync(t, c, addr)
	synced := time.Since(start)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := c.s.Stats()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("joined keys=%d up=%d synced=%d bytes=%d heap=%d rss=%d hwm=%d\n",
		c.s.Len(), up.Microseconds(), synced.Microseconds(), st.SyncBytesIn+st.SyncBytesOut, ms.HeapInuse,
		procKB(status, "VmRSS:")*1024, procKB(status, "VmHWM:")*1024)
}

// connectAndSync connects a child process's node to the node at addr (a
// multiaddr with /p2p/ID) and waits until its store has synced, within 5
// minutes.
func connectAndSync(t *testing.T, c testNode, addr string) {
	t.Helper()
	peerAddr, err := ma.NewMultiaddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := c.n.Connect(ctx, peerAddr); err != nil {
		t.Fatal(err)
	}
	if err := c.s.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
}

// writeHeapProfile writes a heap profile to the file named by the
// environment variable REFLECT_HOLDER_MEMPROFILE, if set.
func writeHeapProfile(t testing.TB) {
	t.Helper()
	f := os.Getenv("REFLECT_HOLDER_MEMPROFILE")
	if f == "" {
		return
	}
	out, err := os.Create(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.WriteHeapProfile(out); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// procKB reads a "Name:   N kB" line of /proc/PID/status.
func procKB(status []byte, name string) int64 {
	for line := range bytes.Lines(status) {
		if f := strings.Fields(string(line)); len(f) >= 2 && f[0] == name {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkJoinProcess times a new node joining a store of
// REFLECT_BENCH_JOIN_KEYS keys (default 1,000,000) of 100 bytes, held by
// this process, as users run it: the joiner is a process of its own
// (TestJoinChild), over loopback libp2p. It reports the time from the
// joiner's node being up to synced (join-s) and from its start (exec-s,
// the process's own start-up excluded), the bytes moved, and the joiner's
// memory once synced — the Go heap in use after a GC (heap-MB), its RSS
// (rss-MB) — and its peak RSS during the join (peak-MB, VmHWM) with
// peak/rss and peak/heap.
func BenchmarkJoinProcess(b *testing.B) {
	env := netns.SharedEnv()
	if env == "" {
		b.Skip("the joiner must share this process's isolated network namespace")
	}
	keys := 1_000_000
	if v := os.Getenv("REFLECT_BENCH_JOIN_KEYS"); v != "" {
		var err error
		if keys, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	a := startStoreNodeWith(b, node.Config{}, crdtstore.Options{})
	v := bytes.Repeat([]byte("v"), 100)
	for i := range keys {
		if err := a.s.Set(fmt.Sprintf("key/%07d", i), v); err != nil {
			b.Fatal(err)
		}
	}
	addr := a.n.Addrs()[0].String()
	var join, exec_, mb, heap, rss, peak float64
	b.ResetTimer()
	for range b.N {
		f := runJoiner(b, env, addr)
		if f["keys"] != int64(keys) {
			b.Fatalf("the joiner holds %d keys, want %d", f["keys"], keys)
		}
		join += float64(f["synced"]-f["up"]) / 1e6
		exec_ += float64(f["synced"]) / 1e6
		mb += float64(f["bytes"]) / 1e6
		heap += float64(f["heap"]) / 1e6
		rss += float64(f["rss"]) / 1e6
		peak += float64(f["hwm"]) / 1e6
	}
	n := float64(b.N)
	b.ReportMetric(join/n, "join-s")
	b.ReportMetric(exec_/n, "exec-s")
	b.ReportMetric(mb/n, "MB")
	b.ReportMetric(heap/n, "heap-MB")
	b.ReportMetric(rss/n, "rss-MB")
	b.ReportMetric(peak/n, "peak-MB")
	b.ReportMetric(peak/rss, "peak/rss")
	b.ReportMetric(peak/heap, "peak/heap")
}

// runJoiner runs TestJoinChild against the holder at addr and returns its
// figures.
func runJoiner(b *testing.B, env, addr string) map[string]int64 {
	cmd := exec.Command(os.Args[0], "-test.run=^TestJoinChild$", "-test.v=false", "-test.count=1")
	cmd.Env = append(os.Environ(), env, joinChildEnv+"="+addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("joiner: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "joined ")
		if !ok {
			continue
		}
		f := map[string]int64{}
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			f[k], _ = strconv.ParseInt(v, 10, 64)
		}
		return f
	}
	b.Fatalf("the joiner printed no figures:\n%s", out)
	return nil
}
