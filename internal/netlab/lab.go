package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
)

// MaxHosts is the most hosts a lab can have (one /24, .1 to .254).
const MaxHosts = 254

// namePrefix starts every lab name; CleanupStale looks for it.
const namePrefix = "rfl"

// A Lab is a virtual network: a bridge and hosts cabled to it, each in a
// network namespace. Its methods are safe for concurrent use.
type Lab struct {
	name   string       // e.g. "rfl3fa9c1"; namespaces are name+"-br", name+"-h1", ...
	subnet netip.Prefix // 10.X.Y.0/24
	t      testing.TB   // nil for labs from Open
	lock   *os.File     // held while the lab lives; see CleanupStale

	mu     sync.Mutex
	hosts  []*Host
	procs  []*Proc
	faults faults
	closed bool
	wg     sync.WaitGroup // the goroutines of started processes
}

// New builds a lab of the given number of hosts for t and tears it down in
// t.Cleanup (unless the test closed it already), also when the test fails or panics; if the test failed, the
// output of the processes started with Host.Start is logged first. When labs
// cannot be built here (see Available) it skips t, or fails it when
// REFLECT_REQUIRE_NETNS=1.
func New(t testing.TB, hosts int) *Lab {
	t.Helper()
	Require(t)
	l, err := Open(context.Background(), hosts)
	if err != nil {
		t.Fatal(err)
	}
	l.t = t
	t.Cleanup(func() {
		if t.Failed() {
			l.report()
		}
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("tearing down lab %s: %v", l.name, err)
		}
	})
	return l
}

// Require skips t unless labs can be built here (see Available), or fails it
// when REFLECT_REQUIRE_NETNS=1. New calls it; call it before Open in tests.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if netns.Required() {
			t.Fatalf("%v (%s is set)", err, netns.RequireEnv)
		}
		t.Skip(err)
	}
}

// Open builds a lab of the given number of hosts. The caller must Close it.
func Open(ctx context.Context, hosts int) (*Lab, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if hosts < 0 || hosts > MaxHosts {
		return nil, fmt.Errorf("netlab: %d hosts: want 0 to %d", hosts, MaxHosts)
	}
	staleOnce.Do(func() { _, _ = CleanupStale() })

	var rnd [5]byte
	_, _ = rand.Read(rnd[:])
	name := namePrefix + hex.EncodeToString(rnd[:3])
	lock, err := lockLab(name)
	if err != nil {
		return nil, err
	}
	l := &Lab{
		name:   name,
		subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1 + rnd[3]%254, rnd[4], 0}), 24),
		lock:   lock,
	}
	if err := l.build(ctx, hosts); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// Name returns the lab's name, the prefix of its namespaces.
func (l *Lab) Name() string { return l.name }

// Subnet returns the hosts' subnet, 10.X.Y.0/24.
func (l *Lab) Subnet() netip.Prefix { return l.subnet }

// bridgeNS returns the bridge's namespace.
func (l *Lab) bridgeNS() string { return l.name + "-br" }

// Host returns host i, counting from 1. It panics if there is no such host.
func (l *Lab) Host(i int) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i < 1 || i > len(l.hosts) {
		panic(fmt.Sprintf("netlab: lab %s has no host %d (hosts are 1 to %d)", l.name, i, len(l.hosts)))
	}
	return l.hosts[i-1]
}

// Hosts returns all hosts, host 1 first.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.hosts)
}

// AddHost adds a host to a running lab: a late joiner. On failure it fails
// the test of a lab from New, and panics for a lab from Open; see TryAddHost.
func (l *Lab) AddHost() *Host {
	h, err := l.TryAddHost(context.Background())
	if err != nil {
		if l.t != nil {
			l.t.Helper()
			l.t.Fatal(err)
		}
		panic(err)
	}
	return h
}

// TryAddHost adds a host to a running lab and returns it.
func (l *Lab) TryAddHost(ctx context.Context) (*Host, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, l.errClosed()
	}
	if len(l.hosts) >= MaxHosts {
		return nil, fmt.Errorf("netlab: lab %s already has %d hosts", l.name, MaxHosts)
	}
	if err := l.addHostsLocked(ctx, 1); err != nil {
		return nil, err
	}
	return l.hosts[len(l.hosts)-1], nil
}

func (l *Lab) errClosed() error { return fmt.Errorf("netlab: lab %s: %w", l.name, net.ErrClosed) }

// build creates the bridge and the first hosts.
func (l *Lab) build(ctx context.Context, hosts int) error {
	br := l.bridgeNS()
	if err := run(ctx, "", "ip", "netns", "add", br); err != nil {
		return err
	}
	script := "link set lo up\n" +
		"link add br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0\n" +
		"link set br0 up\n"
	if err := run(ctx, script, "ip", "-n", br, "-batch", "-"); err != nil {
		return err
	}
	if err := run(ctx, baseRules, "ip", "netns", "exec", br, "nft", "-f", "-"); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addHostsLocked(ctx, hosts)
}

// addHostsLocked creates n more hosts and cables them to the bridge.
func (l *Lab) addHostsLocked(ctx context.Context, n int) error {
	if n == 0 {
		return nil
	}
	first := len(l.hosts) + 1
	var create, cable strings.Builder
	var added []*Host
	for i := first; i < first+n; i++ {
		ip := l.subnet.Addr().As4()
		ip[3] = byte(i)
		h := &Host{lab: l, index: i, ns: fmt.Sprintf("%s-h%d", l.name, i), port: fmt.Sprintf("p%d", i), ip: netip.AddrFrom4(ip),
			mac: fmt.Sprintf("02:52:%02x:%02x:00:%02x", ip[1], ip[2], ip[3])}
		added = append(added, h)
		fmt.Fprintf(&create, "netns add %s\n", h.ns)
		fmt.Fprintf(&create, "link add veth0 netns %s type veth peer name %s netns %s\n", h.ns, h.port, l.bridgeNS())
		fmt.Fprintf(&cable, "link set %s master br0\nlink set %s up\n", h.port, h.port)
	}
	// Hosts are recorded before they are complete so that Close deletes
	// whatever part of them exists.
	l.hosts = append(l.hosts, added...)
	if err := run(ctx, create.String(), "ip", "-batch", "-"); err != nil {
		return err
	}
	for _, h := range added {
		// DAD off: IPv6 link-local addresses are usable at once, not after ~2 s.
		err := run(ctx, "", "ip", "netns", "exec", h.ns, "sysctl", "-qw",
			"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.veth0.accept_dad=0")
		if err != nil {
			return err
		}
		script := fmt.Sprintf("link set lo up\nlink set veth0 address %s\naddr add %s/24 dev veth0\nlink set veth0 up\nroute add 224.0.0.0/4 dev veth0\n", h.mac, h.ip)
		if err := run(ctx, script, "ip", "-n", h.ns, "-batch", "-"); err != nil {
			return err
		}
	}
	if err := l.addNeighboursLocked(ctx, added); err != nil {
		return err
	}
	return run(ctx, cable.String(), "ip", "-n", l.bridgeNS(), "-batch", "-")
}

// addNeighboursLocked gives every host a permanent neighbour (ARP) entry
// for each of the added hosts, and the added hosts one for every host.
// Without them a lab of N hosts in full mesh needs N(N-1) dynamic entries
// in the kernel's neighbour table, which all namespaces share (at most
// 1,024 by default, gc_thresh3): from about 33 hosts on, dials fail with
// "neighbour table overflow" although each real machine would hold only
// N-1. Permanent entries are exempt from that limit.
func (l *Lab) addNeighboursLocked(ctx context.Context, added []*Host) error {
	isNew := make(map[*Host]bool, len(added))
	for _, h := range added {
		isNew[h] = true
	}
	for _, h := range l.hosts {
		var script strings.Builder
		for _, o := range l.hosts {
			if o != h && (isNew[h] || isNew[o]) {
				fmt.Fprintf(&script, "neigh replace %s lladdr %s dev veth0 nud permanent\n", o.ip, o.mac)
			}
		}
		if script.Len() == 0 {
			continue
		}
		if err := run(ctx, script.String(), "ip", "-n", h.ns, "-batch", "-"); err != nil {
			return err
		}
	}
	return nil
}

// namespaces returns the names of the lab's namespaces, hosts first.
func (l *Lab) namespacesLocked() []string {
	var names []string
	for _, h := range l.hosts {
		names = append(names, h.ns)
	}
	return append(names, l.bridgeNS())
}

// Close tears the lab down: it kills the processes started with Host.Start,
// then every other process left in the lab's namespaces, then deletes the
// namespaces (which removes the veth pairs and the bridge). A second Close
// returns an error wrapping net.ErrClosed.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.errClosed()
	}
	l.closed = true
	procs := l.procs
	names := l.namespacesLocked()
	l.mu.Unlock()

	var errs []error
	for _, p := range procs {
		p.signal(syscall.SIGKILL)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			errs = append(errs, fmt.Errorf("netlab: %s did not exit within 5s of SIGKILL", p))
		}
	}
	if err := killNamespaces(names, 5*time.Second); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, deleteNamespaces(names))
	if err := waitTimeout(&l.wg, 5*time.Second); err != nil {
		errs = append(errs, fmt.Errorf("netlab: lab %s: output readers: %w", l.name, err))
	}
	errs = append(errs, unlockLab(l.name, l.lock))
	return errors.Join(errs...)
}

// report logs what the lab's processes printed, for a failed test.
func (l *Lab) report() {
	l.mu.Lock()
	procs := slices.Clone(l.procs)
	f := l.faults.String()
	l.mu.Unlock()
	l.t.Logf("netlab: lab %s (%s), faults: %s", l.name, l.subnet, f)
	for _, p := range procs {
		l.t.Logf("netlab: %s: %s\n--- stdout (tail) ---\n%s\n--- stderr (tail) ---\n%s", p, p.status(), p.Stdout(), p.Stderr())
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("still running after %v", d)
	}
}
