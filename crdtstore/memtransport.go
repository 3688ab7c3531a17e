package crdtstore

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
)

// MemNetwork is an in-memory Transport network for tests: stores opened on
// its transports replicate through it without sockets. Links can be cut and
// restored to test partitions.
type MemNetwork struct {
	mu    sync.Mutex
	nodes map[string]*MemTransport
	cut   map[[2]string]bool
}

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{nodes: map[string]*MemTransport{}, cut: map[[2]string]bool{}}
}

// Transport returns a new transport named id, connected to every other.
func (n *MemNetwork) Transport(id string) *MemTransport {
	t := &MemTransport{net: n, id: id, inbox: make(chan func(), 4096), done: make(chan struct{})}
	n.mu.Lock()
	n.nodes[id] = t
	n.mu.Unlock()
	return t
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Disconnect cuts the link between a and b (both report PeerDown).
func (n *MemNetwork) Disconnect(a, b string) { n.setLink(a, b, false) }

// Connect restores the link between a and b (both report PeerUp).
func (n *MemNetwork) Connect(a, b string) { n.setLink(a, b, true) }

func (n *MemNetwork) setLink(a, b string, up bool) {
	n.mu.Lock()
	was := !n.cut[pair(a, b)]
	if up {
		delete(n.cut, pair(a, b))
	} else {
		n.cut[pair(a, b)] = true
	}
	ta, tb := n.nodes[a], n.nodes[b]
	n.mu.Unlock()
	if was == up || ta == nil || tb == nil {
		return
	}
	ta.peerChange(b, up)
	tb.peerChange(a, up)
}

// linked reports whether a and b are both started and not cut apart.
func (n *MemNetwork) linked(a, b string) (*MemTransport, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.nodes[b]
	if a == b || t == nil || n.cut[pair(a, b)] || !t.started() {
		return nil, false
	}
	return t, true
}

// MemTransport is one node's end of a MemNetwork.
type MemTransport struct {
	net   *MemNetwork
	id    string
	inbox chan func() // deliveries, run in order by one goroutine
	done  chan struct{}

	mu    sync.Mutex
	h     *Handlers
	wg    sync.WaitGroup
	close sync.Once
}

func (t *MemTransport) started() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.h != nil
}

// Self returns the transport's id.
func (t *MemTransport) Self() string { return t.id }

// Start installs h and reports every reachable started peer as up.
func (t *MemTransport) Start(h Handlers) error {
	t.mu.Lock()
	t.h = &h
	t.mu.Unlock()
	t.wg.Add(1)
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
	for _, p := range t.Peers() {
		t.peerChange(p, true)
		if o, ok := t.net.linked(t.id, p); ok {
			o.peerChange(t.id, true)
		}
	}
	return nil
}

func (t *MemTransport) deliver(f func()) {
	select {
	case t.inbox <- f:
	case <-t.done:
	}
}

func (t *MemTransport) peerChange(p string, up bool) {
	t.mu.Lock()
	h := t.h
	t.mu.Unlock()
	if h == nil {
		return
	}
	t.deliver(func() {
		if up {
			h.PeerUp(p)
		} else {
			h.PeerDown(p)
		}
	})
}

// Publish delivers data to every linked peer, in order per receiver.
func (t *MemTransport) Publish(_ context.Context, data []byte) error {
	for _, p := range t.Peers() {
		o, ok := t.net.linked(t.id, p)
		if !ok {
			continue
		}
		o.mu.Lock()
		h := o.h
		o.mu.Unlock()
		msg := slices.Clone(data)
		o.deliver(func() { h.Delta(t.id, msg) })
	}
	return nil
}

// OpenSync connects to peer's sync handler through an in-memory pipe.
func (t *MemTransport) OpenSync(_ context.Context, p string) (Stream, error) {
	o, ok := t.net.linked(t.id, p)
	if !ok {
		return nil, fmt.Errorf("memtransport: %s cannot reach %s", t.id, p)
	}
	a, b := net.Pipe()
	o.mu.Lock()
	h := o.h
	o.mu.Unlock()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		h.Sync(t.id, pipeStream{b})
	}()
	return pipeStream{a}, nil
}

// Peers lists the linked, started peers.
func (t *MemTransport) Peers() []string {
	t.net.mu.Lock()
	ids := make([]string, 0, len(t.net.nodes))
	for id := range t.net.nodes {
		ids = append(ids, id)
	}
	t.net.mu.Unlock()
	var out []string
	for _, id := range ids {
		if _, ok := t.net.linked(t.id, id); ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Close detaches the transport; its peers see it go down.
func (t *MemTransport) Close() error {
	t.close.Do(func() {
		peers := t.Peers()
		t.net.mu.Lock()
		delete(t.net.nodes, t.id)
		t.net.mu.Unlock()
		for _, p := range peers {
			t.net.mu.Lock()
			o := t.net.nodes[p]
			t.net.mu.Unlock()
			if o != nil {
				o.peerChange(t.id, false)
			}
		}
		close(t.done)
		t.wg.Wait()
	})
	return nil
}

// pipeStream adapts a net.Conn to Stream.
type pipeStream struct{ net.Conn }

func (s pipeStream) Reset() error { return s.Conn.Close() }
