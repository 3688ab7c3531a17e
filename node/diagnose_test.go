package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

func TestHandshakeGateLogsExpiredHandshakesPerAddress(t *testing.T) {
	log, buf := captureLogger()
	g, count, now := testGate(3 * time.Second)
	g.warns = newWarnLimiter(log, warnEvery)
	g.warns.now = func() time.Time { return *now }

	// Two failing connections from .66, one from .67; .70 dials twice and
	// its second connection passes (a member that learnt our id).
	for i, src := range []string{"192.168.1.66", "192.168.1.66", "192.168.1.67", "192.168.1.70", "192.168.1.70"} {
		if !g.InterceptAccept(conn("/ip4/"+src, 2000+i)) {
			t.Fatalf("connection %d refused", i)
		}
	}
	if !g.InterceptSecured(network.DirInbound, "", conn("/ip4/192.168.1.70", 2004)) {
		t.Fatal("secured connection refused")
	}
	select {
	case <-g.work:
	default:
		t.Fatal("a handshake started and the sweeper was not woken")
	}
	if !g.sweep() {
		t.Fatal("sweep reports nothing pending with four handshakes unfinished")
	}
	if out := buf.String(); out != "" {
		t.Fatalf("logged before the handshake timeout:\n%s", out)
	}
	*now = now.Add(3*time.Second + pendingSlack)
	if g.sweep() {
		t.Fatal("sweep reports handshakes pending after they all expired")
	}
	lines := buf.lines("level=WARN", "different secret?")
	if len(lines) != 2 {
		t.Fatalf("%d warnings, want one per failing address:\n%s", len(lines), buf)
	}
	for _, want := range []string{"remote=/ip4/192.168.1.66/tcp/2000", "remote=/ip4/192.168.1.67/tcp/2002"} {
		if len(buf.lines(want)) != 1 {
			t.Errorf("no warning with %s:\n%s", want, buf)
		}
	}
	if len(buf.lines("192.168.1.70")) != 0 {
		t.Errorf("the connection superseded by a secured one was logged:\n%s", buf)
	}
	// Counted as logged: the superseded one is not a failure.
	if n := count.handshakesFailed.Load(); n != 3 {
		t.Errorf("HandshakesFailed %d, want 3 (two from .66, one from .67)", n)
	}

	// Within warnEvery, .66 fails again: held back; after it, logged.
	g.InterceptAccept(conn("/ip4/192.168.1.66", 3000))
	*now = now.Add(3*time.Second + pendingSlack)
	g.sweep()
	if n := len(buf.lines("192.168.1.66")); n != 1 {
		t.Fatalf("%d warnings for .66 within %v, want 1", n, warnEvery)
	}
	// Counted although the warning is held back.
	if n := count.handshakesFailed.Load(); n != 4 {
		t.Errorf("HandshakesFailed %d, want 4", n)
	}
	g.InterceptAccept(conn("/ip4/192.168.1.66", 3001))
	*now = now.Add(warnEvery)
	g.sweep()
	if l := buf.lines("192.168.1.66", "suppressed_since_last=2"); len(l) != 1 {
		t.Fatalf("no second warning for .66 counting the one held back:\n%s", buf)
	}
}

func TestHandshakeGateFailedListIsBounded(t *testing.T) {
	g, count, now := testGate(time.Second)
	g.warns = newWarnLimiter(slog.New(slog.DiscardHandler), warnEvery)
	for i := range maxPendingTotal {
		g.InterceptAccept(conn(fmt.Sprintf("/ip4/10.%d.%d.1", i/256, i%256), 1000))
	}
	*now = now.Add(time.Second + pendingSlack)
	g.mu.Lock()
	g.sweepLocked(*now)
	failed := len(g.failed)
	g.mu.Unlock()
	if failed != maxFailedUnlogged {
		t.Fatalf("%d failed handshakes waiting to be logged, want the bound %d", failed, maxFailedUnlogged)
	}
	// The count is not bounded by the log's list.
	if n := count.handshakesFailed.Load(); n != maxPendingTotal {
		t.Fatalf("HandshakesFailed %d, want %d", n, maxPendingTotal)
	}
}

func TestDialFailureNamesTheCause(t *testing.T) {
	addr := ma.StringCast("/ip4/192.168.1.10/tcp/4001")
	wrap := func(cause error) error {
		return fmt.Errorf("failed to dial: %w", &swarm.DialError{Peer: "x", DialErrors: []swarm.TransportError{{Address: addr, Cause: cause}}})
	}
	for _, c := range []struct {
		err        error
		want       string
		handshakes bool // counted in Stats.HandshakesFailed
	}{
		{wrap(fmt.Errorf("failed to negotiate security protocol: %w", sec.ErrPeerIDMismatch{Expected: "a", Actual: "b"})), "another peer id", false},
		{wrap(fmt.Errorf("dial tcp4: connect: %w", syscall.ECONNREFUSED)), "refused", false},
		{wrap(errors.New("failed to negotiate security protocol: read: connection reset by peer")), "failed the handshakes (different secret?)", true},
		{wrap(fmt.Errorf("failed to negotiate security protocol: %w", context.DeadlineExceeded)), "timed out in the handshakes", true},
		{wrap(fmt.Errorf("dial tcp4: %w", context.DeadlineExceeded)), "timed out (unreachable", false},
		{errors.New("something else"), "failed", false},
	} {
		what, actual := dialFailure(c.err)
		if !strings.HasPrefix(what, c.want) && !strings.Contains(what, c.want) {
			t.Errorf("%v: %q, want %q", c.err, what, c.want)
		}
		if (actual != "") != strings.Contains(c.want, "peer id") {
			t.Errorf("%v: actual peer %q", c.err, actual)
		}
		if got := handshakesFailed(c.err); got != c.handshakes {
			t.Errorf("%v: handshakesFailed %v, want %v", c.err, got, c.handshakes)
		}
	}
}
