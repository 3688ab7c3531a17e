package node

import (
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// PeerState is a membership change.
type PeerState int

const (
	// PeerJoined: the peer joined this node's view of the mesh: it is
	// connected and can receive this node's broadcasts, or (on a partial
	// mesh) another node announces it is (see Node.OnPeer for the exact
	// rule; Node.OnNeighbour for direct peers).
	PeerJoined PeerState = iota + 1
	// PeerLeft: the peer is no longer connected to this node nor
	// announced by another (it left, crashed, or the network failed; the
	// node keeps redialling a lost direct peer). For Node.OnNeighbour: the
	// last connection to the peer closed.
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
type watcher[E any] struct {
	fn   func(E)
	mu   sync.Mutex
	q    []E
	wake chan struct{}
	stop chan struct{}
	done chan struct{} // closed when run returns
	once sync.Once
}

func newWatcher[E any](fn func(E)) *watcher[E] {
	return &watcher[E]{fn: fn, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (w *watcher[E]) push(e E) {
	w.mu.Lock()
	w.q = append(w.q, e)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher[E]) halt() { w.once.Do(func() { close(w.stop) }) }

func (w *watcher[E]) run() {
	defer close(w.done)
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
