package pubsub

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Topology-aware forwarding.
//
// GossipSub forwards every message it accepts to its mesh peers. With flood
// publishing, in a mesh where every node is connected to every other (what
// mDNS discovery builds), each subscriber already got the message from its
// author, so every forwarded copy is a duplicate: with 5 nodes the network
// carried 4.6 bytes per byte delivered, with 20 nodes 11.7.
//
// So nodes tell each other whom they are connected to: each publishes its
// list of connected peers on a reserved topic whenever it changes (and every
// announceRefresh). A node accepts a message for forwarding only if one of
// its peers has not announced a connection to the message's author; when
// all of them have, they all received it from the author directly, and the
// node delivers the message to its own subscribers without forwarding it
// (GossipSub's ValidationIgnore). A partial mesh (bootstrap peers, a link
// down) keeps GossipSub's relaying. Until announcements arrive, everything
// is forwarded as before.

const (
	// peersTopic carries the announcements.
	peersTopic = ReservedPrefix + "peers"
	// announceDelay debounces announcements after connection changes.
	announceDelay = 20 * time.Millisecond
	// announceRefresh re-announces periodically, in case one was lost.
	announceRefresh = 15 * time.Second
	// maxAnnounced bounds the peers in one announcement.
	maxAnnounced = 4096
)

// topology is what this node knows of who is connected to whom.
type topology struct {
	self peer.ID

	mu      sync.Mutex
	mine    map[peer.ID]struct{}             // our connected peers
	theirs  map[peer.ID]map[peer.ID]struct{} // each peer's last announcement
	covered map[peer.ID]bool                 // cache: author → all our peers connect to it
	closure int8                             // cache of closed(): 0 unknown, 1 yes, -1 no
	changed chan struct{}                    // signalled when mine changes
}

func newTopology(self peer.ID) *topology {
	return &topology{
		self:    self,
		mine:    map[peer.ID]struct{}{},
		theirs:  map[peer.ID]map[peer.ID]struct{}{},
		covered: map[peer.ID]bool{},
		changed: make(chan struct{}, 1),
	}
}

// setConnected records a change of our connection to p.
func (t *topology) setConnected(p peer.ID, connected bool) {
	t.mu.Lock()
	if connected {
		t.mine[p] = struct{}{}
	} else {
		delete(t.mine, p)
	}
	t.invalidateLocked()
	t.mu.Unlock()
	t.poke()
}

// invalidateLocked drops the cached answers; t.mu held.
func (t *topology) invalidateLocked() {
	clear(t.covered)
	t.closure = 0
}

// poke schedules an announcement.
func (t *topology) poke() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// learn records p's announcement.
func (t *topology) learn(p peer.ID, peers []peer.ID) {
	set := make(map[peer.ID]struct{}, len(peers))
	for _, q := range peers {
		set[q] = struct{}{}
	}
	t.mu.Lock()
	t.theirs[p] = set
	t.invalidateLocked()
	t.mu.Unlock()
}

// forget drops what p announced (it disconnected: a later announcement
// will tell again).
func (t *topology) forget(p peer.ID) {
	t.mu.Lock()
	delete(t.theirs, p)
	t.invalidateLocked()
	t.mu.Unlock()
}

// allConnectedTo reports whether every peer we are connected to (other
// than author) has announced a connection to author: then each of them got
// author's messages directly and forwarding them is useless.
func (t *topology) allConnectedTo(author peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.covered[author]; ok {
		return c
	}
	c := true
	for p := range t.mine {
		if p == author {
			continue
		}
		if _, ok := t.theirs[p][author]; !ok {
			c = false
			break
		}
	}
	t.covered[author] = c
	return c
}

// closed reports whether every peer we are connected to has announced its
// connections, and each of them is connected only to us and to our other
// peers. Then the nodes we can reach are exactly our peers (a node further
// away would be connected to one of them), and a message we send to each of
// them directly reaches everyone: nobody needs a relay.
func (t *topology) closed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closure != 0 {
		return t.closure > 0
	}
	c := true
peers:
	for p := range t.mine {
		theirs, ok := t.theirs[p]
		if !ok {
			c = false
			break
		}
		for q := range theirs {
			if _, mine := t.mine[q]; !mine && q != t.self {
				c = false
				break peers
			}
		}
	}
	t.closure = -1
	if c {
		t.closure = 1
	}
	return c
}

// connected returns our connected peers, sorted.
func (t *topology) connected() []peer.ID {
	t.mu.Lock()
	out := make([]peer.ID, 0, len(t.mine))
	for p := range t.mine {
		out = append(out, p)
	}
	t.mu.Unlock()
	slices.Sort(out)
	return out
}

// encodePeers encodes an announcement: count, then length-prefixed ids.
func encodePeers(ps []peer.ID) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ps)))
	for _, p := range ps {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// decodePeers decodes an announcement, bounding everything by the input.
func decodePeers(b []byte) ([]peer.ID, error) {
	n, k := uvarint(b)
	if k <= 0 || n > maxAnnounced || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: peer announcement count", ErrMalformed)
	}
	b = b[k:]
	out := make([]peer.ID, 0, n)
	for range n {
		l, k := uvarint(b)
		if k <= 0 || l == 0 || l > maxAuthorLen || l > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: peer announcement entry", ErrMalformed)
		}
		out = append(out, peer.ID(b[k:k+int(l)]))
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in a peer announcement", ErrMalformed, len(b))
	}
	return out, nil
}

// startTopology follows the host's connections, announces ours and learns
// the others'. It runs until p closes.
func (p *PubSub) startTopology() error {
	sub, err := p.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return fmt.Errorf("pubsub: event bus: %w", err)
	}
	for _, q := range p.host.Network().Peers() {
		p.topo.setConnected(q, true)
	}
	if _, err := p.Subscribe(peersTopic, func(m Message) {
		ps, err := decodePeers(m.Data)
		if err != nil {
			p.log.Debug("pubsub: bad peer announcement", "from", m.From, "err", err)
			return
		}
		p.topo.learn(m.From, ps)
	}, AllowReserved()); err != nil {
		sub.Close()
		return err
	}
	p.goOwned(func() {
		defer sub.Close()
		for {
			select {
			case <-p.ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				ev := e.(event.EvtPeerConnectednessChanged)
				up := ev.Connectedness == network.Connected
				p.topo.setConnected(ev.Peer, up)
				if !up {
					p.topo.forget(ev.Peer)
					p.dir.disconnected(ev.Peer)
				}
			}
		}
	})
	p.goOwned(p.announceLoop)
	return nil
}

// announceLoop publishes our connections shortly after they change or a
// peer becomes ready to receive them, and every announceRefresh.
func (p *PubSub) announceLoop() {
	refresh := time.NewTicker(announceRefresh)
	defer refresh.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.topo.changed:
			debounce.Reset(announceDelay)
			continue
		case <-debounce.C:
		case <-refresh.C:
		}
		data := encodePeers(p.topo.connected())
		if err := p.publish(p.ctx, peersTopic, data, []Option{AllowReserved()}); err != nil && p.ctx.Err() == nil {
			p.log.Debug("pubsub: peer announcement not sent", "err", err)
		}
	}
}
