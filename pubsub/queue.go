package pubsub

import (
	"context"
	"maps"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Queue groups.
//
// A member subscription (WithQueueGroup) registers its group on the topic
// (registry.go); the publisher learns every node's groups from the
// subscription mirror. After a batch has gone to the plain subscribers
// (router.go), the publisher hands each message to one member of each
// group: the nodes with members take turns, message by message (this
// node too, when it has members), so the shares are even; a node with
// several members takes turns among them. A member node's share goes on
// its direct stream as a frameSend (calls.go); a node whose stream cannot
// take it (gone, or its queue full) is skipped and its share goes to the
// others. Nothing reaches two members of a group: a message is handed to
// exactly one node, and that node to exactly one of its members. On a
// partial mesh, member nodes beyond the neighbours are known from their
// announcements and get their shares through relays (routes.go). A member
// node that has just left may lose what was in flight to it (counted in
// Stats.InboundNoSubscriber there, or as a failed send here).

// groupTarget is one node's share of a batch for a queue group.
type groupTarget struct {
	p peer.ID
	w batchWriter
}

// sendGroups hands each message of the writer's batch to one member of
// each queue group on the topic. Only the publisher goroutine calls it.
func (t *topic) sendGroups(w *batchWriter) {
	p := t.ps
	remote := p.members(regQueue, t.name)
	local := *t.members.Load()
	groups := slices.Collect(maps.Keys(remote))
	for k := range local {
		if k.kind == regQueue && !slices.Contains(groups, k.group) {
			groups = append(groups, k.group)
		}
	}
	if len(groups) == 0 {
		return
	}
	slices.Sort(groups)
	self := p.host.ID()
	for _, g := range groups {
		nodes := remote[g]
		if len(local[memberKey{regQueue, g}]) > 0 {
			nodes = append(slices.Clone(nodes), self)
			slices.Sort(nodes)
		}
		t.spread(g, nodes, w)
	}
}

// spread gives the writer's messages to the nodes of group g in turn.
func (t *topic) spread(g string, nodes []peer.ID, w *batchWriter) {
	p := t.ps
	if t.route.turns == nil {
		t.route.turns = map[string]uint64{}
	}
	targets := make([]groupTarget, len(nodes))
	for i, n := range nodes {
		targets[i].p = n
	}
	// Each message to the next node in turn; a node whose stream does not
	// open in time is taken out and its messages go to the others.
	live := make([]bool, len(nodes))
	for i, n := range nodes {
		switch {
		case n == p.host.ID():
			live[i] = true
		case p.topo.neighbour(n):
			live[i] = t.groupStream(n) != nil
		default: // beyond the neighbours (routes.go)
			live[i] = p.topo.reachable(n)
		}
	}
	for i, m := range w.msgs {
		j, ok := t.nextLive(g, live)
		if !ok {
			t.stats.sendFailed.Add(uint64(len(w.msgs) - i))
			p.log.Warn("pubsub: queue group unreachable, messages dropped", "topic", t.name, "group", g, "messages", len(w.msgs)-i)
			return
		}
		targets[j].w.addHeader(w.hdrs[i], m)
	}
	for j := range targets {
		tg := &targets[j]
		if tg.w.count == 0 {
			continue
		}
		if tg.p == p.host.ID() {
			t.deliverGroup(g, tg.w.local(p.router.author, 0))
			continue
		}
		if !t.sendGroupShare(g, tg) {
			// Gone meanwhile: the others take its share, once.
			live[j] = false
			t.respread(g, nodes, live, &tg.w)
		}
	}
}

// respread hands a failed node's share to the other live nodes.
func (t *topic) respread(g string, nodes []peer.ID, live []bool, w *batchWriter) {
	p := t.ps
	for i, m := range w.msgs {
		j, ok := t.nextLive(g, live)
		if !ok {
			t.stats.sendFailed.Add(uint64(len(w.msgs) - i))
			return
		}
		var one batchWriter
		one.addHeader(w.hdrs[i], m)
		if nodes[j] == p.host.ID() {
			t.deliverGroup(g, one.local(p.router.author, 0))
		} else if !t.sendGroupShare(g, &groupTarget{p: nodes[j], w: one}) {
			live[j] = false
			t.stats.sendFailed.Add(1)
		}
	}
}

// nextLive returns the index of the next live node of group g in turn.
func (t *topic) nextLive(g string, live []bool) (int, bool) {
	for range live {
		j := int(t.route.turns[g] % uint64(len(live)))
		t.route.turns[g]++
		if live[j] {
			return j, true
		}
	}
	return 0, false
}

// groupStream returns q's open direct stream, waiting (at most
// WindowWait) for one that is opening.
func (t *topic) groupStream(q peer.ID) *directPeer {
	p := t.ps
	if s := p.dir.openStream(q); s != nil {
		return s
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.WindowWait)
	defer cancel()
	s, err := p.dir.stream(ctx, q)
	if err != nil {
		return nil
	}
	return s
}

// sendGroupShare queues one node's share as a frameSend (through the next
// hop for a node beyond the neighbours), after waiting for room in the
// window for the topic.
func (t *topic) sendGroupShare(g string, tg *groupTarget) bool {
	p := t.ps
	to, frame := tg.p, encodeSendFrame(t.wire, g, p.router.author, &tg.w)
	if !p.topo.neighbour(to) {
		next, ok := p.topo.nextHop(to)
		if !ok {
			return false
		}
		fw, err := p.encodeForward(to, frame)
		if err != nil {
			return false
		}
		frame, to = fw, next
	}
	s := p.dir.openStream(to)
	if s == nil {
		return false
	}
	flow := callFlow(t.wire)
	p.flows.wait(flow, []peer.ID{to}, t.stop, p.cfg.WindowWait)
	return s.enqueue(frame, flow)
}

// deliverGroup hands each message of b to one local member of queue group
// g on the topic, in turn; with none left, the messages are dropped and
// counted.
func (t *topic) deliverGroup(g string, b *batch) {
	t.stats.received.Add(uint64(len(b.msgs)))
	t.stats.recvBytes.Add(b.payloadBytes())
	from := peerID(b.author)
	for i, data := range b.msgs {
		m := Message{Topic: t.name, From: from, Data: data, Header: b.header(i)}
		if b.vals != nil {
			m.Decoded = b.vals[i]
		}
		members := (*t.members.Load())[memberKey{regQueue, g}]
		if len(members) == 0 {
			t.ps.count.noSubscriber.Add(1)
			t.ps.log.Debug("pubsub: queue-group message for a group with no member here", "topic", t.name, "group", g, "from", from)
			continue
		}
		if s := members[t.picks.Add(1)%uint64(len(members))]; !s.offer(m) && s.stopped() {
			t.ps.count.noSubscriber.Add(1)
		}
	}
}
