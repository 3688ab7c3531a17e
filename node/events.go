package node

import (
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// PeerState is a membership change.
type PeerState int

const (
	// PeerJoined: the first connection to a peer was established.
	PeerJoined PeerState = iota + 1
	// PeerLeft: the last connection to a peer closed (it left, crashed, or
	// the network failed; the node keeps redialling it).
	PeerLeft
)

func (s PeerState) String() string {
	switch s {
	case PeerJoined:
		return "joined"
	case PeerLeft:
		return "left"
	}
	return fmt.Sprintf("PeerState(%d)", int(s))
}

// PeerEvent reports that a peer joined or left this node's view of the mesh.
type PeerEvent struct {
	ID    peer.ID
	State PeerState
}

// watcher delivers events to one callback, in order, on its own goroutine,
// so a slow callback delays nobody else. Membership changes are rare, so the
// queue is unbounded rather than lossy.
type watcher struct {
	fn   func(PeerEvent)
	mu   sync.Mutex
	q    []PeerEvent
	wake chan struct{}
	stop chan struct{}
	once sync.Once
}

func newWatcher(fn func(PeerEvent)) *watcher {
	return &watcher{fn: fn, wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

func (w *watcher) push(e PeerEvent) {
	w.mu.Lock()
	w.q = append(w.q, e)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) halt() { w.once.Do(func() { close(w.stop) }) }

func (w *watcher) run() {
	for {
		select {
		case <-w.stop:
			return
		case <-w.wake:
		}
		for {
			w.mu.Lock()
			if len(w.q) == 0 {
				w.mu.Unlock()
				break
			}
			e := w.q[0]
			w.q = w.q[1:]
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			default:
			}
			w.fn(e)
		}
	}
}
