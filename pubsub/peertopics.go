package pubsub

import (
	"slices"
	"strings"
	"sync"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// peerTopics mirrors GossipSub's view of which peer subscribes to which
// topic, from the same subscription RPCs, seen by the tracer just before
// GossipSub applies them. GossipSub sends a topic's batches to these peers
// and flow control waits for them; the direct streams, ListPeers and
// WaitSubscribers leave out those registered as relays of the topic
// (relay.go).
// GossipSub's own view is behind its event loop: asking it for every batch
// would cost a round trip through that loop.
//
// It also remembers which peers are ready (ready.go): a subscriber counts
// for WaitSubscribers only once a Publish can reach it.
//
// Registry topics (registry.go) are indexed as well: by kind and topic,
// the groups and their members (responders, queue groups); patterns and
// announced topics by kind.
type peerTopics struct {
	prefix string // Config.TopicPrefix

	mu      sync.Mutex
	subs    map[string]map[peer.ID]struct{}               // wire topic → subscribed peers
	counts  map[peer.ID]int                               // peer → topics it subscribes to (≤ maxTopicsPerPeer)
	reg     map[kindTopic]map[string]map[peer.ID]struct{} // registry: kind and topic → group → peers
	ready   map[peer.ID]struct{}                          // peers whose pub/sub is ready
	changed chan struct{}                                 // closed and replaced at every change
}

// kindTopic is a registry kind with a user topic (or pattern).
type kindTopic struct{ kind, topic string }

// regKey is one registry entry: a kind, a user topic (or pattern) and a
// group.
type regKey struct{ kind, topic, group string }

func newPeerTopics(prefix string) *peerTopics {
	return &peerTopics{
		prefix:  prefix,
		subs:    map[string]map[peer.ID]struct{}{},
		counts:  map[peer.ID]int{},
		reg:     map[kindTopic]map[string]map[peer.ID]struct{}{},
		ready:   map[peer.ID]struct{}{},
		changed: make(chan struct{}),
	}
}

// regOf returns the registry entry a wire topic stands for.
func (pt *peerTopics) regOf(wire string) (regKey, bool) {
	name, ok := strings.CutPrefix(wire, pt.prefix)
	if !ok {
		return regKey{}, false
	}
	kind, topic, group, ok := parseRegistry(name)
	return regKey{kind, topic, group}, ok
}

// setReady records that p's pub/sub is ready.
func (pt *peerTopics) setReady(p peer.ID) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.ready[p] = struct{}{}
	pt.changedLocked()
}

// changedLocked wakes the waiters of count; pt.mu held.
func (pt *peerTopics) changedLocked() {
	close(pt.changed)
	pt.changed = make(chan struct{})
}

// learn applies a peer's subscription changes. It refuses, and returns the
// number of, subscriptions beyond maxTopicsPerPeer topics for the peer or
// to a topic name no node of ours could use (longer than maxWireTopic):
// GossipSub ignores them too (subFilter), so a peer cannot make this node
// keep unbounded state.
func (pt *peerTopics) learn(p peer.ID, subs []*pb.RPC_SubOpts) (refused int) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	defer pt.changedLocked()
	for _, so := range subs {
		t := so.GetTopicid()
		if so.GetSubscribe() {
			m := pt.subs[t]
			if _, ok := m[p]; ok {
				continue
			}
			if len(t) > len(pt.prefix)+maxWireTopic || pt.counts[p] >= maxTopicsPerPeer {
				refused++
				continue
			}
			if m == nil {
				m = map[peer.ID]struct{}{}
				pt.subs[t] = m
			}
			m[p] = struct{}{}
			pt.counts[p]++
			if k, ok := pt.regOf(t); ok {
				kt := kindTopic{k.kind, k.topic}
				gs := pt.reg[kt]
				if gs == nil {
					gs = map[string]map[peer.ID]struct{}{}
					pt.reg[kt] = gs
				}
				r := gs[k.group]
				if r == nil {
					r = map[peer.ID]struct{}{}
					gs[k.group] = r
				}
				r[p] = struct{}{}
			}
		} else if m := pt.subs[t]; m != nil {
			if _, ok := m[p]; !ok {
				continue
			}
			delete(m, p)
			if len(m) == 0 {
				delete(pt.subs, t)
			}
			if pt.counts[p]--; pt.counts[p] == 0 {
				delete(pt.counts, p)
			}
			if k, ok := pt.regOf(t); ok {
				pt.dropRegLocked(k, p)
			}
		}
	}
	return refused
}

// has reports whether the mirror holds p's subscription to wire topic t.
func (pt *peerTopics) has(t string, p peer.ID) bool {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	_, ok := pt.subs[t][p]
	return ok
}

// dropRegLocked removes p from a registry entry; pt.mu held.
func (pt *peerTopics) dropRegLocked(k regKey, p peer.ID) {
	kt := kindTopic{k.kind, k.topic}
	gs := pt.reg[kt]
	if r := gs[k.group]; r != nil {
		delete(r, p)
		if len(r) == 0 {
			delete(gs, k.group)
		}
	}
	if len(gs) == 0 {
		delete(pt.reg, kt)
	}
}

// forget drops a peer's subscriptions, as GossipSub does when its stream
// to the peer closes (which also ends the peer's readiness).
func (pt *peerTopics) forget(p peer.ID) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	defer pt.changedLocked()
	delete(pt.ready, p)
	if pt.counts[p] == 0 {
		return
	}
	delete(pt.counts, p)
	for t, m := range pt.subs {
		delete(m, p)
		if len(m) == 0 {
			delete(pt.subs, t)
		}
	}
	for kt, gs := range pt.reg {
		for g := range gs {
			pt.dropRegLocked(regKey{kt.kind, kt.topic, g}, p)
		}
	}
}

// groups returns, for a kind with groups (regResponder, regQueue) and a
// user topic, the ready peers of each group, each list sorted.
func (pt *peerTopics) groups(kind, topic string) map[string][]peer.ID {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	var out map[string][]peer.ID
	for g, r := range pt.reg[kindTopic{kind, topic}] {
		for p := range r {
			if _, ok := pt.ready[p]; !ok {
				continue
			}
			if out == nil {
				out = map[string][]peer.ID{}
			}
			out[g] = append(out[g], p)
		}
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}

// entries calls fn for every registry entry of kind (patterns, announced
// topics) with its peers; pt.mu is held: fn must not call back.
func (pt *peerTopics) entries(kind string, fn func(name string, peers map[peer.ID]struct{})) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for kt, gs := range pt.reg {
		if kt.kind == kind {
			fn(kt.topic, gs[""])
		}
	}
}

// wireTopics appends every wire topic some peer subscribes to.
func (pt *peerTopics) wireTopics(buf []string) []string {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for t := range pt.subs {
		buf = append(buf, t)
	}
	return buf
}

// changes returns a channel closed at the next change.
func (pt *peerTopics) changes() <-chan struct{} {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.changed
}

// of appends the peers subscribed to the wire topic to buf: its
// subscribers and its relays (relay.go), the peers GossipSub sends it to.
func (pt *peerTopics) of(topic string, buf []peer.ID) []peer.ID {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for p := range pt.subs[topic] {
		buf = append(buf, p)
	}
	return buf
}

// relaysLocked returns the peers that registered as relays of the wire
// topic (nil for none); pt.mu held.
func (pt *peerTopics) relaysLocked(wire string) map[peer.ID]struct{} {
	name, ok := strings.CutPrefix(wire, pt.prefix)
	if !ok {
		return nil
	}
	return pt.reg[kindTopic{regRelay, name}][""]
}

// subscribers appends the peers subscribed to the wire topic that are
// not only relaying it to buf.
func (pt *peerTopics) subscribers(wire string, buf []peer.ID) []peer.ID {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	relays := pt.relaysLocked(wire)
	for p := range pt.subs[wire] {
		if _, relay := relays[p]; !relay {
			buf = append(buf, p)
		}
	}
	return buf
}

// withoutRelays appends to buf the peers of ps that are not only relaying
// the wire topic.
func (pt *peerTopics) withoutRelays(wire string, ps, buf []peer.ID) []peer.ID {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	relays := pt.relaysLocked(wire)
	for _, p := range ps {
		if _, relay := relays[p]; !relay {
			buf = append(buf, p)
		}
	}
	return buf
}

// readySubscribers returns the ready peers subscribed to the wire topic
// (relays left out), how many ready peers carry it (relays included), and
// a channel closed at the next change.
func (pt *peerTopics) readySubscribers(wire string) (subs []peer.ID, carriers int, changed <-chan struct{}) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	relays := pt.relaysLocked(wire)
	for p := range pt.subs[wire] {
		if _, ok := pt.ready[p]; !ok {
			continue
		}
		carriers++
		if _, relay := relays[p]; !relay {
			subs = append(subs, p)
		}
	}
	return subs, carriers, pt.changed
}
