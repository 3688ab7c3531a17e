package pubsub

import (
	"sync"
	"sync/atomic"
	"time"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// tracer watches GossipSub's outbound queues. It bounds how many batches
// are queued towards each peer (flow control: the publisher waits instead of
// overflowing a queue) and counts every message GossipSub drops, so no loss
// is silent. Its methods are called synchronously by GossipSub and only take
// a short lock.
type tracer struct {
	window int

	mu       sync.Mutex
	inflight map[peer.ID]int
	over     int           // peers whose inflight ≥ window
	wake     chan struct{} // closed and replaced when over drops to 0

	droppedRPC    atomic.Uint64 // outbound batches GossipSub dropped (queue full)
	throttled     atomic.Uint64 // inbound batches dropped before validation
	undeliverable atomic.Uint64 // inbound batches our reader was too slow for
	invalid       atomic.Uint64 // inbound batches that failed validation
}

func newTracer(window int) *tracer {
	return &tracer{window: window, inflight: make(map[peer.ID]int), wake: make(chan struct{})}
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

// hasData reports whether an RPC carries published messages.
func hasData(rpc *lp2pps.RPC) bool { return len(rpc.GetPublish()) > 0 }

func (t *tracer) add(p peer.ID, d int) {
	t.mu.Lock()
	before := t.inflight[p]
	after := max(before+d, 0)
	if after == 0 {
		delete(t.inflight, p)
	} else {
		t.inflight[p] = after
	}
	t.account(before, after)
	t.mu.Unlock()
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

func (t *tracer) reset(p peer.ID) {
	t.mu.Lock()
	before := t.inflight[p]
	delete(t.inflight, p)
	t.account(before, 0)
	t.mu.Unlock()
}

// wait blocks while some peer's queue is at the window, at most d, or until
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
	if hasData(rpc) {
		t.add(p, 1)
	}
}

func (t *tracer) SendRPCCompleted(rpc *lp2pps.RPC, p peer.ID, _ time.Duration) {
	if hasData(rpc) {
		t.add(p, -1)
	}
}

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

func (t *tracer) OnNewOutboundStream(p peer.ID, _ protocol.ID) { t.reset(p) }
func (t *tracer) OnClosedOutboundStream(p peer.ID)             { t.reset(p) }
func (t *tracer) Join(string)                                  {}
func (t *tracer) Leave(string)                                 {}
func (t *tracer) Graft(peer.ID, string)                        {}
func (t *tracer) Prune(peer.ID, string)                        {}
func (t *tracer) ValidateMessage(*lp2pps.Message)              {}
func (t *tracer) DeliverMessage(*lp2pps.Message)               {}
func (t *tracer) DuplicateMessage(*lp2pps.Message)             {}
func (t *tracer) ThrottlePeer(peer.ID)                         {}
func (t *tracer) RecvRPC(*lp2pps.RPC)                          {}

var _ lp2pps.RawTracer = (*tracer)(nil)
