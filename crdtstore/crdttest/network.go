package crdttest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/reflectmesh/reflect/crdtstore"
)

// Network is an in-memory network of store transports, every one linked to
// every other until Disconnect cuts a link. It is safe for concurrent use.
type Network struct {
	mu    sync.Mutex
	nodes map[string]*Transport
	cut   map[[2]string]bool
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{nodes: map[string]*Transport{}, cut: map[[2]string]bool{}}
}

// Transport returns a new transport named id (its peer id, Self), linked to
// every other transport of the network. Open one store on it with
// crdtstore.OpenTransport; the store's Close closes it, and its id can then
// be used again. It panics if a transport named id is open.
func (n *Network) Transport(id string) *Transport {
	t := &Transport{net: n, id: id, inbox: make(chan func(), 4096), done: make(chan struct{}), up: map[string]bool{}}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[id] != nil {
		panic(fmt.Sprintf("crdttest: transport %q is open already", id))
	}
	n.nodes[id] = t
	return t
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Disconnect cuts the link between a and b: each sees the other leave, and
// nothing crosses until Connect.
func (n *Network) Disconnect(a, b string) { n.setLink(a, b, false) }

// Connect restores the link between a and b: each sees the other join.
func (n *Network) Connect(a, b string) { n.setLink(a, b, true) }

func (n *Network) setLink(a, b string, up bool) {
	n.mu.Lock()
	if up {
		delete(n.cut, pair(a, b))
	} else {
		n.cut[pair(a, b)] = true
	}
	ta, tb := n.nodes[a], n.nodes[b]
	n.mu.Unlock()
	if ta == nil || tb == nil || !ta.started() || !tb.started() {
		return
	}
	ta.peerChange(b, up)
	tb.peerChange(a, up)
}

// linked returns b's transport if a and b are both started and not cut
// apart.
func (n *Network) linked(a, b string) (*Transport, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.nodes[b]
	if a == b || t == nil || n.cut[pair(a, b)] || !t.started() {
		return nil, false
	}
	return t, true
}

// Transport is one store's end of a Network: a crdtstore.Transport.
type Transport struct {
	net   *Network
	id    string
	inbox chan func() // deliveries and peer events, run in order by one goroutine
	done  chan struct{}

	mu     sync.Mutex
	h      *crdtstore.Handlers
	up     map[string]bool // peers reported up (changes only by peerChange)
	closed bool
	wg     sync.WaitGroup // the delivery goroutine and served syncs
	close  sync.Once
}

var _ crdtstore.Transport = (*Transport)(nil)

func (t *Transport) started() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.h != nil && !t.closed
}

// Self returns the transport's id.
func (t *Transport) Self() string { return t.id }

// Start installs h and reports every linked started peer as up, and this
// transport to them.
func (t *Transport) Start(h crdtstore.Handlers) error {
	t.mu.Lock()
	if t.closed || t.h != nil {
		t.mu.Unlock()
		return fmt.Errorf("crdttest: transport %q started twice or closed", t.id)
	}
	t.h = &h
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		for {
			select {
			case f := <-t.inbox:
				f()
			case <-t.done:
				return
			}
		}
	}()
	for _, p := range t.peers() {
		if o, ok := t.net.linked(t.id, p); ok {
			t.peerChange(p, true)
			o.peerChange(t.id, true)
		}
	}
	return nil
}

// handlers returns the installed handlers; nil before Start or after Close.
func (t *Transport) handlers() *crdtstore.Handlers {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	return t.h
}

// deliver queues f for the delivery goroutine; it blocks while the queue is
// full, and drops f once the transport is closed.
func (t *Transport) deliver(f func()) {
	select {
	case t.inbox <- f:
	case <-t.done:
	}
}

// peerChange reports p up or down, if that changes what was reported.
func (t *Transport) peerChange(p string, up bool) {
	t.mu.Lock()
	h := t.h
	if h == nil || t.closed || t.up[p] == up {
		t.mu.Unlock()
		return
	}
	t.up[p] = up
	// Queued under t.mu, so that the events of p stay in the order decided.
	t.deliver(func() {
		if up {
			h.PeerUp(p)
		} else {
			h.PeerDown(p)
		}
	})
	t.mu.Unlock()
}

// Publish sends data to every linked peer. Each receiver decodes it with
// its DecodeDelta before delivery, refusing it on error, and gets the
// deltas of one publisher in order.
func (t *Transport) Publish(_ context.Context, data []byte) error {
	for _, p := range t.peers() {
		o, ok := t.net.linked(t.id, p)
		if !ok {
			continue
		}
		h := o.handlers()
		if h == nil {
			continue
		}
		msg := slices.Clone(data)
		o.deliver(func() {
			d, err := h.DecodeDelta(msg)
			if err != nil {
				return // refused, like a pub/sub validator would
			}
			h.Delta(t.id, d)
		})
	}
	return nil
}

// Flush returns at once: Publish hands data to the receivers' queues before
// it returns.
func (t *Transport) Flush(context.Context) error { return nil }

// OpenSync connects to peer's sync handler through an in-memory pipe.
func (t *Transport) OpenSync(_ context.Context, peer string) (crdtstore.Stream, error) {
	o, ok := t.net.linked(t.id, peer)
	if !ok {
		return nil, fmt.Errorf("crdttest: %s cannot reach %s", t.id, peer)
	}
	o.mu.Lock()
	if o.closed || o.h == nil {
		o.mu.Unlock()
		return nil, fmt.Errorf("crdttest: %s cannot reach %s", t.id, peer)
	}
	h := o.h
	o.wg.Add(1)
	o.mu.Unlock()
	a, b := net.Pipe()
	go func() {
		defer o.wg.Done()
		h.Sync(t.id, pipeStream{b})
	}()
	return pipeStream{a}, nil
}

// peers lists the other transports of the network, sorted.
func (t *Transport) peers() []string {
	t.net.mu.Lock()
	ids := make([]string, 0, len(t.net.nodes))
	for id := range t.net.nodes {
		if id != t.id {
			ids = append(ids, id)
		}
	}
	t.net.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// Close detaches the transport: its peers see it leave. It waits for the
// handler calls in progress, served syncs included.
func (t *Transport) Close() error {
	t.close.Do(func() {
		t.net.mu.Lock()
		if t.net.nodes[t.id] == t {
			delete(t.net.nodes, t.id)
		}
		t.net.mu.Unlock()
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		for _, p := range t.peers() {
			t.net.mu.Lock()
			o := t.net.nodes[p]
			t.net.mu.Unlock()
			if o != nil {
				o.peerChange(t.id, false) // if it saw t up
			}
		}
		close(t.done)
		t.wg.Wait()
	})
	return nil
}

// pipeStream adapts a net.Conn to crdtstore.Stream.
type pipeStream struct{ net.Conn }

// Reset closes the pipe: the other end's reads and writes fail.
func (s pipeStream) Reset() error { return s.Conn.Close() }
