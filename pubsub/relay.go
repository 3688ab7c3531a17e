package pubsub

import (
	"slices"
	"time"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Relaying on a partial mesh.
//
// GossipSub passes a topic's messages on only through the nodes in the
// topic's mesh: those that subscribe to it or relay it. In a full mesh that
// is enough (every subscriber hears the publisher), but once some nodes are
// not connected to each other (a bounded degree: node.Config.MaxPeers, a
// bootstrap peer, a broken link), a topic that a few scattered nodes
// subscribe to would not reach those whose neighbours do not subscribe.
//
// So every node lists its plain subscriptions in its peer announcements
// (routes.go), and while the mesh is partial (some node it knows of does
// not announce sending to every other: relayPartial) every node relays
// every topic a reachable node announces subscribing to, unless it
// subscribes itself: GossipSub's Relay joins the topic's mesh without
// delivering anything here. The topic's messages then reach every
// subscriber of the connected mesh, whoever publishes, and the
// topology-aware forwarding (topology.go) still keeps the copies to those
// a peer misses. A relay starts once the mesh has been partial for
// relayAfter (a full mesh that forms is partial for a moment, and needs
// no relays), and stops relayLinger after the topic is no longer needed
// (nobody subscribes, or the mesh is full again): a mesh that loses and
// regains a link does not make every node leave and rejoin every topic.
//
// GossipSub has one kind of subscription: its neighbours see a relay as a
// subscriber. So a node registers _reflect/rl/<topic> (registry.go) before
// it relays the topic, and the subscription mirror (peertopics.go) counts
// a peer holding both as a carrier of the topic, not a subscriber:
// ListPeers, WaitSubscribers, Send and the direct way (router.go) leave it
// out, while GossipSub and flow control include it. A node that relays a
// topic and then subscribes to it drops the registration (its
// subscription carries the topic from then on), and one that unsubscribes
// registers before it relays again.
//
// A subscriber beyond the neighbours counts for WaitSubscribers once its
// announcement has stood for relayGraft and a neighbour carries the
// topic: every node starts relaying the topic when it learns the
// announcement, which travels outwards from the subscriber, and GossipSub
// has grafted the relays by then. A message that overtakes a relay's
// start is still offered by GossipSub's gossip (its IHAVE to the relay)
// for a few seconds, but arrives after the messages that followed it.

const (
	// relayAfter: the mesh must have been partial this long before this
	// node starts relaying.
	relayAfter = 2 * time.Second
	// relayLinger: a topic no longer needed is relayed this much longer.
	relayLinger = 10 * time.Second
	// maxRelayed bounds the topics one node relays.
	maxRelayed = maxAnnouncedRegs
	// relayGraft: a subscriber beyond the neighbours counts for
	// WaitSubscribers once its announcement has stood this long, a
	// GossipSub heartbeat and a little more. The nodes between start to
	// relay the topic as the announcement reaches them, and GossipSub
	// grafts a new subscriber into its neighbours' meshes for the topic
	// when it subscribes, or at their next heartbeat: in a mesh of 100
	// whose 99 nodes subscribed at once, the first broadcasts after the
	// announcements missed a subscriber.
	relayGraft = 1200 * time.Millisecond
)

// relayed is a topic this node relays.
type relayed struct {
	cancel lp2pps.RelayCancelFunc
	idle   time.Time // when it stopped being needed (zero: needed)
}

// relayState is relayLoop's, read by Stats and tests under relayMu.
type relayState struct {
	topics       map[string]*relayed // by user name
	partialSince time.Time           // zero: the mesh is full (or unknown)
}

// subscriptionsChanged follows a plain subscription's start or end: it is
// announced (routes.go) and changes what this node relays.
func (p *PubSub) subscriptionsChanged() {
	p.topo.poke()
	select {
	case p.relayWake <- struct{}{}:
	default:
	}
}

// subscribedTopics returns the user topics this node has plain
// subscriptions to (the peer announcements' own topic left out: every
// node subscribes to it).
func (p *PubSub) subscribedTopics() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for name, t := range p.joined {
		if name != peersTopic && t.subscribed.Load() {
			out = append(out, name)
		}
	}
	return out
}

// subscribedHere reports whether this node has a plain subscription to
// the user topic.
func (p *PubSub) subscribedHere(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.joined[name]
	return t != nil && t.subscribed.Load()
}

// relayLoop keeps the relayed topics up to date with the announcements,
// the mesh's shape and this node's subscriptions.
func (p *PubSub) relayLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		updated := p.topo.updates()
		timer.Reset(p.syncRelays(time.Now()))
		select {
		case <-p.ctx.Done():
			return
		case <-updated:
		case <-p.relayWake:
		case <-timer.C:
		}
	}
}

// syncRelays starts and stops relays, and returns when it must look
// again at the latest.
func (p *PubSub) syncRelays(now time.Time) time.Duration {
	p.relaySync.Lock()
	defer p.relaySync.Unlock()
	topics, partial := p.topo.relayable()
	p.relayMu.Lock()
	st := &p.relays
	switch {
	case !partial:
		st.partialSince = time.Time{}
		topics = nil
	case st.partialSince.IsZero():
		st.partialSince = now
	}
	wait := time.Hour
	if partial {
		if left := st.partialSince.Add(relayAfter).Sub(now); left > 0 {
			// Not yet: the relays already running stay as they are.
			wait, topics = left, make(map[string]struct{}, len(st.topics))
			for name := range st.topics {
				topics[name] = struct{}{}
			}
		}
	}
	var start, stop []string
	for name := range topics {
		if st.topics[name] == nil && len(st.topics)+len(start) < maxRelayed && !p.subscribedHere(name) {
			start = append(start, name)
		}
	}
	for name, r := range st.topics {
		_, needed := topics[name]
		switch {
		case p.subscribedHere(name):
			stop = append(stop, name) // its subscription carries it
		case needed:
			r.idle = time.Time{}
		case r.idle.IsZero():
			r.idle = now
			wait = min(wait, relayLinger)
		case now.Sub(r.idle) >= relayLinger:
			stop = append(stop, name)
		default:
			wait = min(wait, r.idle.Add(relayLinger).Sub(now))
		}
	}
	p.relayMu.Unlock()

	// Joining and registering wait for GossipSub's event loop: not under
	// relayMu (Stats takes it).
	slices.Sort(start)
	for _, name := range start {
		cancel, err := p.startRelay(name)
		if err != nil {
			if p.ctx.Err() == nil {
				p.log.Debug("pubsub: cannot relay a topic", "topic", name, "err", err)
			}
			continue
		}
		p.relayMu.Lock()
		p.relays.topics[name] = &relayed{cancel: cancel}
		p.relayMu.Unlock()
	}
	for _, name := range stop {
		p.relayMu.Lock()
		r := p.relays.topics[name]
		delete(p.relays.topics, name)
		p.relayMu.Unlock()
		r.cancel()
		p.unregister(registryName(regRelay, name, ""))
	}
	return wait
}

// startRelay joins a topic's GossipSub mesh without subscribing to it,
// registered as a relay first so that no neighbour takes it for a
// subscriber.
func (p *PubSub) startRelay(name string) (lp2pps.RelayCancelFunc, error) {
	t, err := p.topic(name, true)
	if err != nil {
		return nil, err
	}
	reg := registryName(regRelay, name, "")
	if err := p.register(reg); err != nil {
		return nil, err
	}
	cancel, err := t.gt.Relay()
	if err != nil {
		p.unregister(reg)
		return nil, err
	}
	return cancel, nil
}

// relaying returns the topics this node relays, sorted.
func (p *PubSub) relaying() []string {
	p.relayMu.Lock()
	defer p.relayMu.Unlock()
	out := make([]string, 0, len(p.relays.topics))
	for name := range p.relays.topics {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// relayable returns the user topics that the reachable nodes other than
// this one announce subscribing to, and whether the mesh is partial: some
// reachable node (this one included) does not announce sending to every
// other. A node that announces everyone needs no relay itself, but a
// publisher whose link to a subscriber broke needs one of them to relay.
func (t *topology) relayable() (map[string]struct{}, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	hops := t.hopsLocked()
	n := len(hops) // the nodes other than this one we reach
	partial := len(t.ready) < n
	for q := range hops {
		if partial {
			break
		}
		theirs, ok := t.theirs[q]
		if !ok {
			continue // not announced yet
		}
		links := len(theirs)
		if _, self := theirs[t.self]; !self {
			partial = true
		}
		partial = partial || links < n
	}
	if !partial {
		return nil, false
	}
	topics := map[string]struct{}{}
	for q, r := range t.regs {
		if _, ok := hops[q]; !ok || q == t.self {
			continue
		}
		for _, e := range r.entries {
			if e.kind == regSubscriber && e.topic != peersTopic {
				topics[e.topic] = struct{}{}
			}
		}
	}
	return topics, true
}

// farSubscribers returns the reachable nodes beyond the neighbours that
// announce subscribing to the user topic.
func (t *topology) farSubscribers(topic string) []peer.ID {
	return t.remoteMembers(regSubscriber, topic)[""]
}

// settledFarSubscribers returns the reachable nodes beyond the neighbours
// whose announcement of a subscription to the user topic has stood for
// relayGraft, and how long until the next of the others has (0: none).
func (t *topology) settledFarSubscribers(topic string, now time.Time) ([]peer.ID, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []peer.ID
	var next time.Duration
	hops := t.hopsLocked()
	for q, r := range t.regs {
		if _, near := t.mine[q]; near || q == t.self {
			continue
		}
		if _, ok := hops[q]; !ok || !slices.Contains(r.entries, regKey{kind: regSubscriber, topic: topic}) {
			continue
		}
		if left := r.since.Add(relayGraft).Sub(now); left > 0 {
			if next == 0 || left < next {
				next = left
			}
			continue
		}
		out = append(out, q)
	}
	return out, next
}
