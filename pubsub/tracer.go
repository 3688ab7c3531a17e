package pubsub

import (
	"sync"
	"sync/atomic"
	"time"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// tracer watches the outbound queues, GossipSub's (through its tracer
// hooks) and the direct streams' (direct.go). It bounds how many batches
// are queued towards each peer (flow control: the publisher waits instead of
// overflowing a queue) and counts every message GossipSub drops, so no loss
// is silent. Its methods are called synchronously by GossipSub and only take
// a short lock.
type tracer struct {
	window int

	// onReady is called once per peer session when both the peer's first
	// RPC (its subscriptions) has arrived and our outbound stream to it is
	// open (before that, GossipSub drops what it routes to the peer).
	onReady func(peer.ID)
	ready   sync.Map   // peer.ID → readyHello|readyStream
	readyMu sync.Mutex // serialises updates of ready

	// subs and gone, if set, see peers' subscription changes and the
	// end of GossipSub's stream to a peer (which forgets its
	// subscriptions), on the event loop.
	subs func(peer.ID, []*pb.RPC_SubOpts)
	gone func(peer.ID)
	// onLost, if set, is called when GossipSub's outbound stream to a peer
	// closes (on GossipSub's event loop, before it decides whether the
	// peer is gone or the stream is to be reopened).
	onLost func(peer.ID)

	mu       sync.Mutex
	inflight map[flow]int
	over     int           // flows whose inflight ≥ window
	wake     chan struct{} // closed and replaced when over drops to 0
	// GossipSub pushes an RPC on a peer's queue before it reports it
	// (SendRPC), so the peer's writer may report it written
	// (SendRPCCompleted) first. queued holds the RPCs reported and not yet
	// written, early those written before they were reported. (Counting
	// alone lost such an RPC's completion and left the flow one batch
	// short for ever: Flush then hung, the window shrank.)
	queued map[sentRPC]struct{}
	early  map[sentRPC]struct{}

	droppedRPC    atomic.Uint64 // outbound batches GossipSub dropped (queue full)
	throttled     atomic.Uint64 // inbound batches dropped before validation
	undeliverable atomic.Uint64 // inbound batches our reader was too slow for
	invalid       atomic.Uint64 // inbound batches that failed validation
	duplicates    atomic.Uint64 // inbound copies of batches already seen
}

// flow is one queue towards a peer: GossipSub's or the direct stream's.
type flow struct {
	p      peer.ID
	direct bool
}

// sentRPC is one RPC towards one peer (GossipSub sends the same RPC to
// several peers).
type sentRPC struct {
	rpc *lp2pps.RPC
	p   peer.ID
}

func newTracer(window int, onReady func(peer.ID)) *tracer {
	return &tracer{window: window, onReady: onReady, inflight: make(map[flow]int), wake: make(chan struct{}),
		queued: map[sentRPC]struct{}{}, early: map[sentRPC]struct{}{}}
}

// totalInflight returns the number of batches queued towards all peers.
func (t *tracer) totalInflight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.inflight {
		n += c
	}
	return n
}

// waitDirect waits until nothing is queued towards any direct stream, at
// most d or until done is closed. It polls: it is rare.
func (t *tracer) waitDirect(done <-chan struct{}, d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		t.mu.Lock()
		n := 0
		for f, c := range t.inflight {
			if f.direct {
				n += c
			}
		}
		t.mu.Unlock()
		if n == 0 || time.Now().After(deadline) {
			return
		}
		select {
		case <-done:
			return
		case <-time.After(100 * time.Microsecond):
		}
	}
}

// hasData reports whether an RPC carries published messages.
func hasData(rpc *lp2pps.RPC) bool { return len(rpc.GetPublish()) > 0 }

func (t *tracer) add(p flow, d int) {
	if d == 0 {
		return
	}
	t.mu.Lock()
	t.addLocked(p, d)
	t.mu.Unlock()
}

func (t *tracer) addLocked(p flow, d int) {
	before := t.inflight[p]
	after := max(before+d, 0)
	if after == 0 {
		delete(t.inflight, p)
	} else {
		t.inflight[p] = after
	}
	t.account(before, after)
}

// account updates over for one peer's change from before to after; t.mu held.
func (t *tracer) account(before, after int) {
	if t.window <= 0 {
		return
	}
	wasOver, isOver := before >= t.window, after >= t.window
	switch {
	case !wasOver && isOver:
		t.over++
	case wasOver && !isOver:
		t.over--
		if t.over == 0 {
			close(t.wake)
			t.wake = make(chan struct{})
		}
	}
}

// reset forgets what is queued in flow p (its queue is gone).
func (t *tracer) reset(p flow) {
	t.mu.Lock()
	before := t.inflight[p]
	delete(t.inflight, p)
	t.account(before, 0)
	if !p.direct {
		for k := range t.queued {
			if k.p == p.p {
				delete(t.queued, k)
			}
		}
		for k := range t.early {
			if k.p == p.p {
				delete(t.early, k)
			}
		}
	}
	t.mu.Unlock()
}

// wait blocks while some flow's queue is at the window, at most d, or until
// done is closed. It reports whether it had to wait.
func (t *tracer) wait(done <-chan struct{}, d time.Duration) bool {
	if t.window <= 0 {
		return false
	}
	t.mu.Lock()
	if t.over == 0 {
		t.mu.Unlock()
		return false
	}
	wake := t.wake
	t.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-wake:
		case <-timer.C:
			return true
		case <-done:
			return true
		}
		t.mu.Lock()
		if t.over == 0 {
			t.mu.Unlock()
			return true
		}
		wake = t.wake
		t.mu.Unlock()
	}
}

func (t *tracer) SendRPC(rpc *lp2pps.RPC, p peer.ID) {
	if !hasData(rpc) {
		return
	}
	k := sentRPC{rpc, p}
	t.mu.Lock()
	if _, ok := t.early[k]; ok {
		delete(t.early, k)
	} else {
		t.queued[k] = struct{}{}
		t.addLocked(flow{p: p}, 1)
	}
	t.mu.Unlock()
}

func (t *tracer) SendRPCCompleted(rpc *lp2pps.RPC, p peer.ID, _ time.Duration) {
	if !hasData(rpc) {
		return
	}
	k := sentRPC{rpc, p}
	t.mu.Lock()
	if _, ok := t.queued[k]; ok {
		delete(t.queued, k)
		t.addLocked(flow{p: p}, -1)
	} else {
		if len(t.early) >= maxEarly { // completions of RPCs of closed queues
			clear(t.early)
		}
		t.early[k] = struct{}{}
	}
	t.mu.Unlock()
}

// maxEarly bounds the RPCs remembered as written before they were
// reported. An RPC of a closed queue that was being written when the queue
// closed is reported written but never sent again: it would stay for ever.
const maxEarly = 1024

func (t *tracer) DropRPC(rpc *lp2pps.RPC, p peer.ID) {
	if n := len(rpc.GetPublish()); n > 0 {
		t.droppedRPC.Add(uint64(n))
	}
}

func (t *tracer) RejectMessage(_ *lp2pps.Message, reason string) {
	switch reason {
	case lp2pps.RejectValidationQueueFull, lp2pps.RejectValidationThrottled:
		t.throttled.Add(1)
	case lp2pps.RejectValidationFailed:
		t.invalid.Add(1)
	}
}

func (t *tracer) UndeliverableMessage(*lp2pps.Message) { t.undeliverable.Add(1) }

func (t *tracer) OnNewOutboundStream(p peer.ID, _ protocol.ID) {
	t.markReady(p, readyStream)
}
func (t *tracer) OnClosedOutboundStream(p peer.ID) {
	t.reset(flow{p: p})
	if t.gone != nil {
		t.gone(p)
	}
	if t.onLost != nil {
		t.onLost(p)
	}
	t.readyMu.Lock()
	t.ready.Delete(p)
	t.readyMu.Unlock()
}
func (t *tracer) Join(string)                      {}
func (t *tracer) Leave(string)                     {}
func (t *tracer) Graft(peer.ID, string)            {}
func (t *tracer) Prune(peer.ID, string)            {}
func (t *tracer) ValidateMessage(*lp2pps.Message)  {}
func (t *tracer) DeliverMessage(*lp2pps.Message)   {}
func (t *tracer) DuplicateMessage(*lp2pps.Message) {}
func (t *tracer) ThrottlePeer(peer.ID)             {}

// Readiness bits of a peer.
const (
	readyHello  = 1 << iota // its first RPC arrived
	readyStream             // our outbound stream to it is open
	readyBoth   = readyHello | readyStream
)

// RecvRPC runs on GossipSub's event loop just before it applies the RPC's
// subscriptions, in the same step: anything published after onReady has
// returned sees them.
func (t *tracer) RecvRPC(rpc *lp2pps.RPC) {
	if subs := rpc.GetSubscriptions(); len(subs) > 0 && t.subs != nil {
		t.subs(rpc.From(), subs)
	}
	t.markReady(rpc.From(), readyHello)
}

// markReady records a readiness bit and calls onReady when both are set.
func (t *tracer) markReady(p peer.ID, bit int) {
	if t.onReady == nil {
		return
	}
	if v, ok := t.ready.Load(p); ok && v.(int)&bit != 0 {
		return // the fast path of every RPC
	}
	t.readyMu.Lock()
	v, _ := t.ready.Load(p)
	old, _ := v.(int)
	t.ready.Store(p, old|bit)
	t.readyMu.Unlock()
	if old != readyBoth && old|bit == readyBoth {
		t.onReady(p)
	}
}

var _ lp2pps.RawTracer = (*tracer)(nil)
