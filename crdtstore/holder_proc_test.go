package crdtstore_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/internal/netns"
	"github.com/reflectmesh/reflect/internal/testutil"
	"github.com/reflectmesh/reflect/node"
)

// holderChildEnv, set in a child's environment to a writer's address and a
// key count ("ADDR KEYS"), makes TestHolderChild hold the writer's store.
const holderChildEnv = "REFLECT_TEST_HOLDER_CHILD"

// holderIdle is how long a holder rests once it holds every key before its
// memory is read: the bench's MemIdle.
const holderIdle = 6 * time.Second

// TestHolderChild is the holder of BenchmarkHolderProcess, a process of its
// own: it starts a node with the default store, connects to the writer,
// prints "up", waits until it holds every key (received as the writer's
// deltas), rests holderIdle, and prints one line of figures:
//
//	held keys=N rss=B anon=B heap=B goal=B retained=B
//
// (rss, anon: VmRSS and RssAnon from /proc; heap: the Go heap's live
// objects after a GC; goal: the GC's heap goal before that GC; retained:
// the heap's pages not returned to the OS). It skips unless run as that
// child.
func TestHolderChild(t *testing.T) {
	env := os.Getenv(holderChildEnv)
	if env == "" {
		t.Skip("the holder of BenchmarkHolderProcess")
	}
	addr, keysText, _ := strings.Cut(env, " ")
	keys, err := strconv.Atoi(keysText)
	if err != nil {
		t.Fatal(err)
	}
	c := startStoreNodeWith(t, node.Config{}, crdtstore.Options{})
	connectAndSync(t, c, addr)
	fmt.Println("up")
	testutil.Eventually(t, 5*time.Minute, "every key", func() bool { return c.s.Len() == keys })
	time.Sleep(holderIdle)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	writeHeapProfile(t)
	fmt.Printf("held keys=%d rss=%d anon=%d file=%d heap=%d goal=%d retained=%d\n",
		c.s.Len(), procKB(status, "VmRSS:")*1024, procKB(status, "RssAnon:")*1024, procKB(status, "RssFile:")*1024,
		ms.HeapAlloc, before.NextGC, before.HeapSys-before.HeapReleased)
}

// BenchmarkHolderProcess measures the memory of a node process that holds
// a store of REFLECT_BENCH_HOLDER_KEYS keys (default 100,000) of 100 bytes,
// received from a writer (this process) as its deltas, as the bench's
// holders do: the holder is a process of its own (TestHolderChild), over
// loopback libp2p, read after resting holderIdle. It reports the holder's
// RSS and private memory (rss-MB, anon-MB), its live heap per key
// (heap-B/key: the whole process's, node included), and the GC's heap
// goal and retained heap pages (goal-MB, retained-MB).
func BenchmarkHolderProcess(b *testing.B) {
	env := netns.SharedEnv()
	if env == "" {
		b.Skip("the holder must share this process's isolated network namespace")
	}
	keys := 100_000
	if v := os.Getenv("REFLECT_BENCH_HOLDER_KEYS"); v != "" {
		var err error
		if keys, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	var rss, anon, file, heap, goal, retained float64
	b.StopTimer() // the timer runs only while the writer writes (runHolder)
	for range b.N {
		f := runHolder(b, env, keys)
		if f["keys"] != int64(keys) {
			b.Fatalf("the holder holds %d keys, want %d", f["keys"], keys)
		}
		rss += float64(f["rss"]) / 1e6
		anon += float64(f["anon"]) / 1e6
		file += float64(f["file"]) / 1e6
		heap += float64(f["heap"]) / float64(keys)
		goal += float64(f["goal"]) / 1e6
		retained += float64(f["retained"]) / 1e6
	}
	n := float64(b.N)
	b.ReportMetric(rss/n, "rss-MB")
	b.ReportMetric(anon/n, "anon-MB")
	b.ReportMetric(file/n, "file-MB")
	b.ReportMetric(heap/n, "heap-B/key")
	b.ReportMetric(goal/n, "goal-MB")
	b.ReportMetric(retained/n, "retained-MB")
}

// runHolder starts a writer, runs TestHolderChild against it, writes keys
// once the holder is up, and returns the holder's figures.
func runHolder(b *testing.B, env string, keys int) map[string]int64 {
	b.StopTimer()
	w := startStoreNodeWith(b, node.Config{}, crdtstore.Options{})
	defer closeStore(b, w.s)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHolderChild$", "-test.v=false", "-test.count=1")
	cmd.Env = append(os.Environ(), env, fmt.Sprintf("%s=%s %d", holderChildEnv, w.n.Addrs()[0], keys))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil { // a Fatal before the Wait below
			cmd.Process.Kill() //nolint:errcheck // it may have exited
			cmd.Wait()         //nolint:errcheck // reaped only
		}
	}()
	sc := bufio.NewScanner(out)
	var lines []string
	for sc.Scan() && sc.Text() != "up" {
		lines = append(lines, sc.Text())
	}
	testutil.Eventually(b, time.Minute, "the holder's store joined", func() bool { return len(w.n.Peers()) > 0 })
	time.Sleep(200 * time.Millisecond) // its subscription reaches the writer's pub/sub
	b.StartTimer()
	v := make([]byte, 100)
	for k := range keys {
		if err := w.s.Set(holderKey(k), holderValue(v, k)); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	var f map[string]int64
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "held ")
		if !ok {
			lines = append(lines, sc.Text())
			continue
		}
		f = map[string]int64{}
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			f[k], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	io.Copy(io.Discard, out) //nolint:errcheck
	if err := cmd.Wait(); err != nil || f == nil {
		b.Fatalf("holder: %v\n%s", err, strings.Join(lines, "\n"))
	}
	return f
}
