package faults

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netlab"
)

const meshKey = "fault-suite mesh secret 7f3a9c"

// startMesh starts one demo per host of lab (all at once) and waits until
// every one sees all the others; it returns the demos and the time to a
// full mesh.
func startMesh(t *testing.T, lab *netlab.Lab, hosts []int, extra ...string) ([]*demo, time.Duration) {
	t.Helper()
	ds := make([]*demo, len(hosts))
	start := time.Now()
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { ds[i] = startDemo(t, lab.Host(h), meshKey, extra...) })
	}
	wg.Wait()
	var worst time.Duration
	for _, d := range ds {
		if _, err := d.waitPeers(len(hosts)-1, 15*time.Second); err != nil {
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
		d.must("sub hello")
	}
	ds[0].must("wait-subscribers hello 4 10")
	ds[0].must(`pub hello {"text":"hi"}`)
	for _, d := range ds[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := d.p.WaitLine(ctx, isEvent("message"))
		cancel()
		if err != nil {
			t.Fatalf("%s: no message: %v", d.h, err)
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
		d.must("sub chat")
	}
	ds[0].must("wait-subscribers chat 4 10")
	bad := startDemo(t, lab.Host(6), "a different secret entirely 1234")
	bad.must("sub chat")

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
	bad.must(`pub chat {"text":"intruder"}`)
	bad.must("set intruder yes")
	if _, err := bad.waitPeers(1, 3*time.Second); err == nil {
		t.Fatal("the intruder got a peer")
	}
	ds[0].must(`pub chat {"text":"member"}`)
	ds[0].must("set member yes")

	time.Sleep(2 * time.Second)
	conns := 0
	for _, d := range ds {
		ps := d.peers()
		if slices.Contains(ps, bad.id) {
			conns++
		}
		if len(ps) != 4 {
			t.Errorf("%s has %d peers after the flood, want 4", d.h, len(ps))
		}
	}
	accepted := 0
	for _, d := range ds[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := d.p.WaitLine(ctx, func(l string) bool {
			e, ok := parse(l)
			return ok && e.str("event") == "message" && e.str("from") == ds[0].id
		}); err != nil {
			t.Errorf("%s missed the member's message: %v", d.h, err)
		}
		cancel()
		if e := d.must("get intruder"); e["found"] == true {
			accepted++
		}
		if e := d.must("get member"); e["found"] != true {
			t.Errorf("%s lacks the member's key", d.h)
		}
		for _, l := range strings.Split(d.p.Stdout(), "\n") {
			if e, ok := parse(l); ok && e.str("from") == bad.id {
				accepted++
			}
		}
	}
	if len(bad.peers()) != 0 {
		t.Error("the intruder has peers")
	}
	if e := bad.must("get member"); e["found"] == true {
		t.Error("the intruder read the member's key")
	}
	report(t, "intruder + %d TCP attempts: %d libp2p connections, %d messages or keys accepted", 200*len(ds), conns, accepted)
	if conns != 0 || accepted != 0 {
		t.Fatal("the intruder got in")
	}
}

// tcpTarget returns the IPv4 address and TCP port d listens on.
func tcpTarget(t testing.TB, d *demo) (string, string) {
	ip := d.h.IP().String()
	for _, a := range d.addrs {
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
	t.Fatalf("%s: no TCP address on %s in %v", d.h, ip, d.addrs)
	return "", ""
}

// TestHelperFlood is not a test: the intruder scenario runs the test binary
// as a TCP flooder on the intruder's host.
func TestHelperFlood(t *testing.T) {
	targets := os.Getenv("REFLECT_FLOOD_TARGETS")
	if targets == "" {
		t.Skip("helper process only")
	}
	count, _ := strconv.Atoi(os.Getenv("REFLECT_FLOOD_COUNT"))
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
				_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
				_, _ = c.Write([]byte(fmt.Sprintf("/multistream/1.0.0\n junk %d", i)))
				buf := make([]byte, 64)
				_, _ = c.Read(buf)
				c.Close()
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
// acknowledged keys and every key it tried.
func writer(d *demo, prefix string, stop <-chan struct{}, shared string) (acked, tried []string) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return acked, tried
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
		acked = append(acked, d.setMany(kv)...)
		time.Sleep(50 * time.Millisecond)
	}
}

// 3. Partition: 60 s split {1,2} | {3,4,5}, a writer on each side; after the
// heal every node reconnects and every store converges, losing nothing.
func TestPartition(t *testing.T) {
	setup(t)
	if testing.Short() {
		t.Skip("-short")
	}
	lab := netlab.New(t, 5)
	ds, _ := startMesh(t, lab, []int{1, 2, 3, 4, 5})
	if err := lab.Partition([]int{1, 2}, []int{3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var ackA, ackB, triedA, triedB []string
	var wg sync.WaitGroup
	wg.Go(func() { ackA, triedA = writer(ds[0], "left", stop, "shared/x") })
	wg.Go(func() { ackB, triedB = writer(ds[3], "right", stop, "shared/x") })
	time.Sleep(60 * time.Second)
	close(stop)
	wg.Wait()
	// During the split each side sees only its own.
	if n := len(ds[0].peers()); n != 1 {
		t.Errorf("host 1 sees %d peers during the partition, want 1", n)
	}
	heal := time.Now()
	if err := lab.Heal(); err != nil {
		t.Fatal(err)
	}
	var reconnect time.Duration
	for _, d := range ds {
		if _, err := d.waitPeers(4, 20*time.Second); err != nil {
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
	lab := netlab.New(t, 3)
	ds, _ := startMesh(t, lab, []int{1, 2, 3})
	warm := ds[0].setMany(pairs("warm", 10, "v"))
	waitConverged(t, ds, 10*time.Second)
	time.Sleep(time.Second)
	base := ds[0].stats()
	acked, tried := warm, warm
	var last time.Time
	for cycle := range 20 {
		if err := lab.Partition([]int{1}, []int{2, 3}); err != nil {
			t.Fatal(err)
		}
		kv := pairs(fmt.Sprintf("flap%02d", cycle), 10, "v")
		acked = append(acked, ds[0].setMany(kv)...)
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
		if _, err := d.waitPeers(2, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	_, final := waitConverged(t, ds, 20*time.Second)
	converge := time.Since(last)
	lost, unexpected := checkSet(t, final, acked, keyset(tried))
	time.Sleep(3 * time.Second) // let closed connections finish
	after := ds[0].stats()
	g0, g1 := base.num("goroutines"), after.num("goroutines")
	f0, f1 := base.num("fds"), after.num("fds")
	report(t, "20 flaps of host 1 (2 s cut, 2 s heal): converged %.1f s after the last heal; lost %d, unexpected %d; goroutines %.0f → %.0f, fds %.0f → %.0f",
		converge.Seconds(), lost, unexpected, g0, g1, f0, f1)
	if converge > 10*time.Second {
		t.Errorf("converged %v after the last flap (≤ 10 s)", converge)
	}
	if g1 > g0*1.2+10 || f1 > f0+5 {
		t.Errorf("resources did not return to baseline: goroutines %v → %v, fds %v → %v", g0, g1, f0, f1)
	}
}

// 5. Loss: 10 % loss both ways on every host for 60 s while writing and
// publishing; converged ≤ 30 s after the loss stops.
func TestLoss(t *testing.T) {
	setup(t)
	if testing.Short() {
		t.Skip("-short")
	}
	lab := netlab.New(t, 4)
	ds, _ := startMesh(t, lab, []int{1, 2, 3, 4})
	for _, d := range ds[1:] {
		d.must("sub loss")
	}
	ds[0].must("wait-subscribers loss 3 10")
	for i := range 4 {
		if err := lab.Loss(i+1, 10); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var acked, tried []string
	var wg sync.WaitGroup
	wg.Go(func() { acked, tried = writer(ds[1], "lossy", stop, "shared/y") })
	sent := 0
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ds[0].must(fmt.Sprintf(`pub loss {"n":%d}`, sent))
		sent++
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	end := time.Now()
	for i := range 4 {
		if err := lab.Loss(i+1, 0); err != nil {
			t.Fatal(err)
		}
	}
	_, final := waitConverged(t, ds, 40*time.Second)
	converge := time.Since(end)
	lost, unexpected := checkSet(t, final, acked, keyset(tried))
	time.Sleep(time.Second)
	delivered := 0.0
	for _, d := range ds[1:] {
		delivered += d.stats().num("pubsub", "topics", "loss", "delivered")
	}
	ratio := delivered / float64(sent*3)
	report(t, "10%% loss both ways for 60 s: converged %.1f s after; lost %d, unexpected %d; pub/sub delivered %.1f%% of %d×3",
		converge.Seconds(), lost, unexpected, 100*ratio, sent)
	if converge > 30*time.Second {
		t.Errorf("converged %v after the loss stopped (≤ 30 s)", converge)
	}
}

// 6. Crash: kill -9 a writer mid-stream, restart it with its identity; it
// rejoins and catches up, and nothing it acked that reached a peer is lost.
func TestCrashRestart(t *testing.T) {
	setup(t)
	lab := netlab.New(t, 3)
	dir := t.TempDir()
	idFile := filepath.Join(dir, "writer.key")
	others, _ := startMesh(t, lab, []int{2, 3})
	w := startDemo(t, lab.Host(1), meshKey, "-identity", idFile)
	if _, err := w.waitPeers(2, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	_ = others[0].setMany(pairs("before", 100, "v"))
	stop := make(chan struct{})
	var acked, tried []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		acked, tried = writer(w, "crash", stop, "shared/z")
	}()
	time.Sleep(3 * time.Second)
	_ = w.p.Kill()
	close(stop)
	<-done
	// What the writer acked and a peer holds must survive.
	time.Sleep(time.Second)
	seen := others[0].dump()
	var reached []string
	for _, k := range acked {
		if _, ok := seen[k]; ok {
			reached = append(reached, k)
		}
	}
	restart := time.Now()
	w2 := startDemo(t, lab.Host(1), meshKey, "-identity", idFile)
	if w2.id != w.id {
		t.Fatalf("restarted with id %s, want %s", w2.id, w.id)
	}
	if _, err := w2.waitPeers(2, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	w2.must("wait-synced 15")
	rejoin := time.Since(restart)
	_, final := waitConverged(t, append(others, w2), 20*time.Second)
	lost, unexpected := checkSet(t, final, reached, keyset(tried, others[0].mustKeys()))
	report(t, "kill -9 after %d acked writes (%d had reached a peer): rejoined and synced %.1f s after restart; lost %d, unexpected %d",
		len(acked), len(reached), rejoin.Seconds(), lost, unexpected)
}

// mustKeys returns the keys d holds.
func (d *demo) mustKeys() []string {
	var out []string
	for k := range d.dump() {
		out = append(out, k)
	}
	return out
}

// 7. Churn: a host that joins while 10,000 keys exist is synced within 5 s.
func TestLateJoiner(t *testing.T) {
	setup(t)
	lab := netlab.New(t, 2)
	ds, _ := startMesh(t, lab, []int{1, 2})
	acked := ds[0].setMany(pairs("churn", 10000, "a value of some forty bytes or so......"))
	if len(acked) != 10000 {
		t.Fatalf("only %d of 10000 sets acknowledged", len(acked))
	}
	waitConverged(t, ds, 30*time.Second)
	h := lab.AddHost()
	start := time.Now()
	late := startDemo(t, h, meshKey)
	if _, err := late.waitPeers(2, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	late.must("wait-synced 15")
	took := time.Since(start)
	n := len(late.dump())
	report(t, "late joiner with 10,000 keys: synced %.2f s after start (process start included), %d keys", took.Seconds(), n)
	if n != 10000 {
		t.Fatalf("late joiner has %d keys", n)
	}
	if took > 5*time.Second {
		t.Errorf("synced after %v (≤ 5 s)", took)
	}
}
