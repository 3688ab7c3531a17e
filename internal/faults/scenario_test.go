package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netlab"
	"github.com/reflectmesh/reflect/internal/testutil"
)

const meshKey = "fault-suite mesh secret 7f3a9c"

// startMesh starts one demo per host of lab (all at once) and waits until
// every one sees all the others; it returns the demos and the time to a
// full mesh.
func startMesh(t *testing.T, lab *netlab.Lab, hosts []int, extra ...string) ([]*demo, time.Duration) {
	t.Helper()
	ds := make([]*demo, len(hosts))
	errs := make([]error, len(hosts))
	start := time.Now()
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { ds[i], errs[i] = startDemo(t, lab.Host(h), meshKey, extra...) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for _, d := range ds {
		if err := d.WaitPeers(len(hosts)-1, 15*time.Second); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
	}
	return ds, worst
}

func keyset(keys ...[]string) map[string]bool {
	out := map[string]bool{}
	for _, ks := range keys {
		for _, k := range ks {
			out[k] = true
		}
	}
	return out
}

func pairs(prefix string, n int, value string) [][2]string {
	out := make([][2]string, n)
	for i := range out {
		out[i] = [2]string{fmt.Sprintf("%s/%05d", prefix, i), value}
	}
	return out
}

// 1. Discovery: 5 hosts start together and form a full mesh by mDNS.
func TestDiscovery(t *testing.T) {
	setup(t)
	lab := netlab.New(t, 5)
	ds, took := startMesh(t, lab, []int{1, 2, 3, 4, 5})
	for _, d := range ds[1:] {
		d.Must("sub hello")
	}
	ds[0].Must("wait-subscribers hello 4 10")
	ds[0].Must(`pub hello {"text":"hi"}`)
	for _, d := range ds[1:] {
		e, err := d.TryNext(5*time.Second, testutil.IsMessage("hello", ds[0].ID))
		if err != nil {
			t.Fatalf("%s: no message: %v", d.h, err)
		}
		if data, _ := e["data"].(map[string]any); data["text"] != "hi" { // not an object: nil, and the check fails
			t.Errorf("%s got %v", d.h, e)
		}
	}
	report(t, "5 hosts: full mesh %d ms after start; a broadcast reached all 4 others", took.Milliseconds())
}

// 2. Intruder: a host with another secret plus a TCP connection flood gets
// nothing in and changes nothing.
func TestIntruder(t *testing.T) {
	setup(t)
	lab := netlab.New(t, 6)
	ds, _ := startMesh(t, lab, []int{1, 2, 3, 4, 5})
	for _, d := range ds {
		d.Must("sub chat")
	}
	ds[0].Must("wait-subscribers chat 4 10")
	bad := mustStartDemo(t, lab.Host(6), "a different secret entirely 1234")
	bad.Must("sub chat")

	// 200 TCP connection attempts to each member within 10 s, each sending
	// junk, from the intruder's host.
	var targets []string
	for _, d := range ds {
		ip, port := tcpTarget(t, d)
		targets = append(targets, net.JoinHostPort(ip, port))
	}
	flood := lab.Host(6).Command(context.Background(), os.Args[0], "-test.run=^TestHelperFlood$")
	flood.Env = append(flood.Env, "REFLECT_FLOOD_TARGETS="+joinIDs(targets), "REFLECT_FLOOD_COUNT=200")
	start := time.Now()
	out, err := flood.CombinedOutput()
	if err != nil {
		t.Fatalf("flood: %v\n%s", err, out)
	}
	t.Logf("flood: %s in %v", out, time.Since(start))

	// The intruder tries to publish and write.
	bad.Must(`pub chat {"text":"intruder"}`)
	bad.Must("set intruder yes")
	if err := bad.WaitPeers(1, 3*time.Second); !errors.Is(err, testutil.ErrReply) {
		t.Fatalf("the intruder's wait-peers 1: %v, want a timeout (an error reply)", err)
	}
	ds[0].Must(`pub chat {"text":"member"}`)
	ds[0].Must("set member yes")
	for _, d := range ds[1:] {
		if _, err := d.TryNext(5*time.Second, testutil.IsMessage("chat", ds[0].ID)); err != nil {
			t.Errorf("%s missed the member's message: %v", d.h, err)
		}
	}
	testutil.Eventually(t, 2*time.Second, "the member's key on every member", func() bool {
		for _, d := range ds[1:] {
			if e := d.Must("get member"); e["found"] != true {
				return false
			}
		}
		return true
	})

	// Barriers: the replies below come after the intruder's attempts, and
	// each process writes its events and replies in order. A connection of
	// the intruder's would have printed a peer event on both ends before
	// these replies, and nothing (message or key) gets in without one.
	conns, accepted := 0, 0
	isBad := func(e testutil.Event) bool { return e.Str("from") == bad.ID }
	for _, d := range ds {
		ps := d.Peers()
		if saw := d.Drain(testutil.IsPeer(bad.ID, "")); slices.Contains(ps, bad.ID) || len(saw) > 0 {
			conns++
		}
		if len(ps) != 4 {
			t.Errorf("%s has %d peers after the flood, want 4", d.h, len(ps))
		}
		if e := d.Must("get intruder"); e["found"] == true {
			accepted++
		}
		accepted += len(d.Drain(isBad))
	}
	if ps := bad.Peers(); len(ps) != 0 {
		t.Errorf("the intruder has peers %v", ps)
	}
	if es := bad.Drain(testutil.IsKind("peer")); len(es) != 0 {
		t.Errorf("the intruder saw peers: %v", es)
	}
	if e := bad.Must("get member"); e["found"] == true {
		t.Error("the intruder read the member's key")
	}
	report(t, "intruder + %d TCP attempts: %d libp2p connections, %d messages or keys accepted", 200*len(ds), conns, accepted)
	if conns != 0 || accepted != 0 {
		t.Fatal("the intruder got in")
	}
}

// tcpTarget returns the IPv4 address and TCP port d listens on.
func tcpTarget(t testing.TB, d *demo) (string, string) {
	t.Helper()
	ip := d.h.IP().String()
	for _, a := range d.Addrs {
		var port string
		if _, err := fmt.Sscanf(a, "/ip4/"+ip+"/tcp/%s", &port); err == nil {
			if i := len(port); i > 0 {
				for j, c := range port {
					if c == '/' {
						port = port[:j]
						break
					}
				}
				return ip, port
			}
		}
	}
	t.Fatalf("%s: no TCP address on %s in %v", d.h, ip, d.Addrs)
	return "", ""
}

// TestHelperFlood is not a test: the intruder scenario runs the test binary
// as a TCP flooder on the intruder's host.
func TestHelperFlood(t *testing.T) {
	targets := os.Getenv("REFLECT_FLOOD_TARGETS")
	if targets == "" {
		t.Skip("helper process only")
	}
	count, err := strconv.Atoi(os.Getenv("REFLECT_FLOOD_COUNT"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	established := 0
	for _, target := range splitComma(targets) {
		wg.Go(func() {
			for i := range count {
				c, err := net.DialTimeout("tcp", target, time.Second)
				if err != nil {
					continue
				}
				mu.Lock()
				established++
				mu.Unlock()
				// Junk for the member to refuse: it may drop the connection
				// at any point, so the errors of these calls are expected and
				// tell nothing. The figure is the handshakes completed.
				_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
				_, _ = fmt.Fprintf(c, "/multistream/1.0.0\n junk %d", i)
				buf := make([]byte, 64)
				_, _ = c.Read(buf)
				_ = c.Close()
				time.Sleep(40 * time.Millisecond) // 200 in ~10 s
			}
		})
	}
	wg.Wait()
	fmt.Printf("%d TCP handshakes completed", established)
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// writer writes keys on d until stop, in batches; it returns the
// acknowledged keys, every key it tried, and the error that stopped it
// early, if one did.
func writer(d *demo, prefix string, stop <-chan struct{}, shared string) (acked, tried []string, err error) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return acked, tried, nil
		default:
		}
		var kv [][2]string
		for j := range 20 {
			k := fmt.Sprintf("%s/%06d", prefix, i*20+j)
			kv = append(kv, [2]string{k, "v"})
			tried = append(tried, k)
		}
		kv = append(kv, [2]string{shared, prefix + strconv.Itoa(i)})
		tried = append(tried, shared)
		ok, err := d.SetMany(kv)
		acked = append(acked, ok...)
		if err != nil {
			return acked, tried, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mustSetMany is SetMany failing t if a reply does not come, or if a set is
// refused.
func mustSetMany(t testing.TB, d *demo, kv [][2]string) []string {
	t.Helper()
	acked, err := d.SetMany(kv)
	if err != nil {
		t.Fatal(err)
	}
	if len(acked) != len(kv) {
		t.Fatalf("%s: only %d of %d sets acknowledged", d.h, len(acked), len(kv))
	}
	return acked
}

// 3. Partition: 60 s split {1,2} | {3,4,5}, a writer on each side; after the
// heal every node reconnects and every store converges, losing nothing.
func TestPartition(t *testing.T) {
	setup(t)
	if testing.Short() {
		t.Skip("-short")
	}
	t.Parallel() // a minute or more of waiting: see doc.go, "Run time"
	lab := netlab.New(t, 5)
	ds, _ := startMesh(t, lab, []int{1, 2, 3, 4, 5})
	if err := lab.Partition([]int{1, 2}, []int{3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var ackA, ackB, triedA, triedB []string
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { ackA, triedA, errA = writer(ds[0], "left", stop, "shared/x") })
	wg.Go(func() { ackB, triedB, errB = writer(ds[3], "right", stop, "shared/x") })
	time.Sleep(60 * time.Second)
	close(stop)
	wg.Wait()
	if err := errors.Join(errA, errB); err != nil {
		t.Fatal(err)
	}
	// During the split each side sees only its own.
	if n := len(ds[0].Peers()); n != 1 {
		t.Errorf("host 1 sees %d peers during the partition, want 1", n)
	}
	heal := time.Now()
	if err := lab.Heal(); err != nil {
		t.Fatal(err)
	}
	var reconnect time.Duration
	for _, d := range ds {
		if err := d.WaitPeers(4, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		reconnect = max(reconnect, time.Since(heal))
	}
	_, final := waitConverged(t, ds, 30*time.Second)
	converge := time.Since(heal)
	lost, unexpected := checkSet(t, final, append(ackA, ackB...), keyset(triedA, triedB))
	report(t, "60 s partition, %d+%d acked writes: reconnected %.1f s and converged %.1f s after heal; lost %d, unexpected %d",
		len(ackA), len(ackB), reconnect.Seconds(), converge.Seconds(), lost, unexpected)
	if reconnect > 5*time.Second || converge > 10*time.Second {
		t.Errorf("too slow: reconnect %v (≤ 5 s), converge %v (≤ 10 s)", reconnect, converge)
	}
}

// 4. Flapping: 20 cycles of 2 s cut / 2 s heal on one host; the mesh
// converges after the last, and goroutines and files return to baseline.
func TestFlapping(t *testing.T) {
	setup(t)
	if testing.Short() {
		t.Skip("-short")
	}
	t.Parallel() // a minute or more of waiting: see doc.go, "Run time"
	lab := netlab.New(t, 3)
	ds, _ := startMesh(t, lab, []int{1, 2, 3})
	warm := mustSetMany(t, ds[0], pairs("warm", 10, "v"))
	waitConverged(t, ds, 10*time.Second)
	time.Sleep(time.Second) // settle before the baseline
	base := ds[0].Stats()
	acked, tried := warm, warm
	var last time.Time
	for cycle := range 20 {
		if err := lab.Partition([]int{1}, []int{2, 3}); err != nil {
			t.Fatal(err)
		}
		kv := pairs(fmt.Sprintf("flap%02d", cycle), 10, "v")
		ok, err := ds[0].SetMany(kv)
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ok...)
		for _, p := range kv {
			tried = append(tried, p[0])
		}
		time.Sleep(2 * time.Second)
		if err := lab.Heal(); err != nil {
			t.Fatal(err)
		}
		last = time.Now()
		time.Sleep(2 * time.Second)
	}
	for _, d := range ds {
		if err := d.WaitPeers(2, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	_, final := waitConverged(t, ds, 20*time.Second)
	converge := time.Since(last)
	lost, unexpected := checkSet(t, final, acked, keyset(tried))
	g0, f0 := base.Num("goroutines"), base.Num("fds")
	var g1, f1 float64
	defer func() { // also when the wait below fails
		report(t, "20 flaps of host 1 (2 s cut, 2 s heal): converged %.1f s after the last heal; lost %d, unexpected %d; goroutines %.0f → %.0f, fds %.0f → %.0f",
			converge.Seconds(), lost, unexpected, g0, g1, f0, f1)
	}()
	if converge > 10*time.Second {
		t.Errorf("converged %v after the last flap (≤ 10 s)", converge)
	}
	// Closed connections take a moment to finish: they get 3 s.
	testutil.Eventually(t, 3*time.Second, "goroutines and fds back to baseline", func() bool {
		after := ds[0].Stats()
		g1, f1 = after.Num("goroutines"), after.Num("fds")
		return g1 <= g0*1.2+10 && f1 <= f0+5
	})
}

// 5. Loss: 10 % loss both ways on every host for 60 s while writing and
// publishing; converged ≤ 30 s after the loss stops.
func TestLoss(t *testing.T) {
	setup(t)
	if testing.Short() {
		t.Skip("-short")
	}
	t.Parallel() // a minute or more of waiting: see doc.go, "Run time"
	lab := netlab.New(t, 4)
	ds, _ := startMesh(t, lab, []int{1, 2, 3, 4})
	for _, d := range ds[1:] {
		d.Must("sub loss")
	}
	ds[0].Must("wait-subscribers loss 3 10")
	for i := range 4 {
		if err := lab.Loss(i+1, 10); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var acked, tried []string
	var werr error
	var wg sync.WaitGroup
	wg.Go(func() { acked, tried, werr = writer(ds[1], "lossy", stop, "shared/y") })
	sent := 0
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := ds[0].Do(fmt.Sprintf(`pub loss {"n":%d}`, sent)); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		sent++
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	end := time.Now()
	for i := range 4 {
		if err := lab.Loss(i+1, 0); err != nil {
			t.Fatal(err)
		}
	}
	_, final := waitConverged(t, ds, 40*time.Second)
	converge := time.Since(end)
	lost, unexpected := checkSet(t, final, acked, keyset(tried))
	time.Sleep(time.Second) // for the last messages, before counting
	delivered := 0.0
	for _, d := range ds[1:] {
		delivered += d.Stats().Num("pubsub", "topics", "loss", "delivered")
	}
	ratio := delivered / float64(sent*3)
	report(t, "10%% loss both ways for 60 s: converged %.1f s after; lost %d, unexpected %d; pub/sub delivered %.1f%% of %d×3",
		converge.Seconds(), lost, unexpected, 100*ratio, sent)
	if converge > 30*time.Second {
		t.Errorf("converged %v after the loss stopped (≤ 30 s)", converge)
	}
}

// 6. Crash: kill -9 a writer mid-stream and restart it with its data
// directory (-data: the store and the identity). Cut off from its peers,
// it already holds every write it acknowledged; once back on the network
// it catches up, and nothing it acknowledged is lost anywhere.
func TestCrashRestart(t *testing.T) {
	setup(t)
	lab := netlab.New(t, 3)
	data := filepath.Join(t.TempDir(), "writer")
	others, _ := startMesh(t, lab, []int{2, 3})
	w := mustStartDemo(t, lab.Host(1), meshKey, "-data", data)
	if err := w.WaitPeers(2, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	before := mustSetMany(t, others[0], pairs("before", 100, "v"))
	stop := make(chan struct{})
	var acked, tried []string
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		acked, tried, werr = writer(w, "crash", stop, "shared/z")
	}()
	time.Sleep(3 * time.Second)
	if err := w.p.Kill(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-done
	// The writer stops at the kill (its commands or replies fail) or at
	// stop; nothing else may stop it.
	if werr != nil && !errors.Is(werr, testutil.ErrExited) {
		t.Fatal(werr)
	}
	// Restarted alone: its own disk has every write it acknowledged.
	if err := lab.Partition([]int{1}, []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	w2 := mustStartDemo(t, lab.Host(1), meshKey, "-data", data)
	if w2.ID != w.ID {
		t.Fatalf("restarted with id %s, want %s", w2.ID, w.ID)
	}
	local := w2.Dump()
	readable := time.Since(restart)
	lostLocally := 0
	for _, k := range acked {
		if _, ok := local[k]; !ok {
			lostLocally++
			if lostLocally <= 5 {
				t.Errorf("acknowledged key %q not on the writer's disk after the restart", k)
			}
		}
	}
	if err := lab.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := w2.WaitPeers(2, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	w2.Must("wait-synced 15")
	rejoin := time.Since(restart)
	_, final := waitConverged(t, append(others, w2), 20*time.Second)
	// Written: what the writer tried, and the keys set before it started.
	lost, unexpected := checkSet(t, final, append(acked, before...), keyset(tried, before))
	report(t, "kill -9 after %d acked writes: restarted with -data, %d keys readable %.2f s after exec before any peer (lost locally %d); rejoined and synced %.1f s after restart; lost %d, unexpected %d",
		len(acked), len(local), readable.Seconds(), lostLocally, rejoin.Seconds(), lost, unexpected)
}

// 6b. Whole-mesh restart: five hosts with data directories, writers on
// two of them, deletes acknowledged on a third; kill -9 all five at once
// and restart them: every acknowledged write is present everywhere and
// no deleted key is back.
func TestWholeMeshRestart(t *testing.T) {
	setup(t)
	lab := netlab.New(t, 5)
	root := t.TempDir()
	dataOf := func(h int) []string { return []string{"-data", filepath.Join(root, strconv.Itoa(h))} }
	hosts := []int{1, 2, 3, 4, 5}
	start := func() []*demo {
		ds := make([]*demo, len(hosts))
		errs := make([]error, len(hosts))
		var wg sync.WaitGroup
		for i, h := range hosts {
			wg.Go(func() { ds[i], errs[i] = startDemo(t, lab.Host(h), meshKey, dataOf(h)...) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if err := d.WaitPeers(len(hosts)-1, 15*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		return ds
	}
	ds := start()
	doomed := mustSetMany(t, ds[2], pairs("doomed", 50, "x"))
	kept := mustSetMany(t, ds[2], pairs("kept", 50, "y"))
	_, _ = waitConverged(t, ds, 20*time.Second)
	for _, k := range doomed {
		ds[3].Must("del " + k) // acknowledged on another host than the writer
	}
	stop := make(chan struct{})
	type result struct {
		acked, tried []string
		err          error
	}
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			r := &results[i]
			r.acked, r.tried, r.err = writer(ds[i], "w"+strconv.Itoa(i), stop, "shared/z")
		})
	}
	time.Sleep(3 * time.Second)
	for _, d := range ds { // all at once, writers in mid-stream
		if err := d.p.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	acked := slices.Concat(kept, results[0].acked, results[1].acked)
	written := keyset(kept, doomed, results[0].tried, results[1].tried)
	for _, r := range results {
		if r.err != nil && !errors.Is(r.err, testutil.ErrExited) {
			t.Fatal(r.err)
		}
	}

	restart := time.Now()
	ds = start()
	for _, d := range ds {
		d.Must("wait-synced 15")
	}
	took, final := waitConverged(t, ds, 20*time.Second)
	lost, unexpected := checkSet(t, final, acked, written)
	resurrected := 0
	for _, k := range doomed {
		if _, ok := final[k]; ok {
			resurrected++
			if resurrected <= 5 {
				t.Errorf("deleted key %q is back", k)
			}
		}
	}
	report(t, "kill -9 of all 5 after %d acked writes and %d acked deletes: converged %.1f s after restart (%.1f s after synced); lost %d, unexpected %d, deleted back %d",
		len(acked), len(doomed), time.Since(restart).Seconds(), took.Seconds(), lost, unexpected, resurrected)
}

// 7. Churn: a host that joins while 10,000 keys exist is synced within 5 s.
func TestLateJoiner(t *testing.T) {
	setup(t)
	lab := netlab.New(t, 2)
	ds, _ := startMesh(t, lab, []int{1, 2})
	mustSetMany(t, ds[0], pairs("churn", 10000, "a value of some forty bytes or so......"))
	waitConverged(t, ds, 30*time.Second)
	h := lab.AddHost()
	start := time.Now()
	late := mustStartDemo(t, h, meshKey)
	if err := late.WaitPeers(2, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	late.Must("wait-synced 15")
	took := time.Since(start)
	n := len(late.Dump())
	report(t, "late joiner with 10,000 keys: synced %.2f s after start (process start included), %d keys", took.Seconds(), n)
	if n != 10000 {
		t.Fatalf("late joiner has %d keys", n)
	}
	if took > 5*time.Second {
		t.Errorf("synced after %v (≤ 5 s)", took)
	}
}
