package pubsub

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Routes beyond the neighbours.
//
// What is meant for one peer (calls.go) goes on the direct stream to it.
// On a partial mesh (bootstrap peers, a firewall) a responder or a queue
// group's member may not be a neighbour: GossipSub's subscription messages
// tell only neighbours about it, and there is no stream to it. So every
// node's peer announcement (topology.go), which GossipSub carries to the
// whole mesh, also lists its registry entries (responders and queue-group
// memberships) and its plain subscriptions (for the relays: relay.go),
// and a node keeps, besides whom each node sends to, what each node
// offers. A call to a node that is not a neighbour goes, wrapped
// in a frameForward naming its origin and its target, to the next hop on a
// shortest path through the announced links; each hop forwards it the same
// way (at most maxHops), and the target handles the inner frame as if it
// came from the origin. Nodes that no announced path reaches are neither
// asked nor given shares; what a relay cannot forward is dropped and
// counted (Stats.Unroutable; OutboundDropped when the next hop's queue is
// full).
//
//	frameForward  origin, target (length-prefixed peer ids), hops left
//	              (byte), signature (length-prefixed), then the inner
//	              frame's kind and content
//
// The origin signs the target and the inner frame with its node's key
// (forwardSigned); the target checks the signature against the origin's
// peer id before it handles the frame, so a relay can neither forge an
// origin nor alter or redirect a frame (a refused one counts in
// Stats.Forged). Relays do not check it: a forgery costs them only its
// forwarding. A relay can still drop, delay or replay a frame it passes on.

const (
	frameForward = 6
	// maxHops bounds a forwarded frame's path.
	maxHops = 8
	// maxAnnouncedRegs bounds the registry entries in one announcement.
	maxAnnouncedRegs = 1024
)

// Registry kinds in an announcement.
const (
	regCodeResponder  = 1
	regCodeQueue      = 2
	regCodeSubscriber = 3 // a plain subscription (relay.go); no group
)

// regCodes and regKinds map the kinds announced to their codes and back.
var (
	regCodes = map[string]byte{regResponder: regCodeResponder, regQueue: regCodeQueue, regSubscriber: regCodeSubscriber}
	regKinds = map[byte]string{regCodeResponder: regResponder, regCodeQueue: regQueue, regCodeSubscriber: regSubscriber}
)

// announcedRegs is a node's announced registry entries. Only reachable
// nodes' are used; a node's are forgotten with the rest of what it
// announced once it is out of reach for forgetAfter (forgetGone).
type announcedRegs struct {
	entries []regKey
	since   time.Time // announced unchanged since
}

// appendRegs appends registry entries to an announcement: count, then
// (kind code, topic, group) each. Nothing for none, as before entries
// existed.
func appendRegs(b []byte, regs []regKey) []byte {
	if len(regs) == 0 {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(regs)))
	for _, r := range regs {
		b = append(b, regCodes[r.kind])
		b = appendString(b, r.topic)
		b = appendString(b, r.group)
	}
	return b
}

// decodeRegs decodes appendRegs's entries at the start of b (the rest of
// an announcement), and returns what follows them: the link ages
// (linkage.go), which the entries' count 0 may precede.
func decodeRegs(b []byte) ([]regKey, []byte, error) {
	if len(b) == 0 {
		return nil, nil, nil
	}
	n, b, err := readUvarint(b, "registry entry count")
	if err != nil {
		return nil, nil, err
	}
	if n == 0 {
		return nil, b, nil
	}
	if n > maxAnnouncedRegs || n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: %d registry entries", ErrMalformed, n)
	}
	out := make([]regKey, 0, n)
	for range n {
		if len(b) == 0 || regKinds[b[0]] == "" {
			return nil, nil, fmt.Errorf("%w: registry entry kind", ErrMalformed)
		}
		r := regKey{kind: regKinds[b[0]]}
		if r.topic, b, err = readString(b[1:], maxTopicLen, "registry topic"); err != nil {
			return nil, nil, err
		}
		if r.group, b, err = readString(b, maxTopicLen/2, "registry group"); err != nil {
			return nil, nil, err
		}
		if r.topic == "" || (r.kind == regQueue && r.group == "") || (r.kind == regSubscriber && r.group != "") {
			return nil, nil, fmt.Errorf("%w: registry entry", ErrMalformed)
		}
		out = append(out, r)
	}
	return out, b, nil
}

// localRegs returns this node's responder and queue-group registrations
// and its plain subscriptions (relay.go), for its announcements.
//
// Beyond maxAnnouncedRegs entries, responders and queue groups come first,
// then subscriptions, each in order: the same ones every time, so that an
// unchanged refresh is seen as one (knownRefresh).
func (p *PubSub) localRegs() []regKey {
	p.regMu.Lock()
	var out []regKey
	for name, r := range p.registered {
		if r.count == 0 {
			continue
		}
		if kind, topic, group, ok := parseRegistry(name); ok && (kind == regResponder || kind == regQueue) {
			out = append(out, regKey{kind, topic, group})
		}
	}
	p.regMu.Unlock()
	slices.SortFunc(out, cmpRegs)
	out = out[:min(len(out), maxAnnouncedRegs)]
	subs := p.subscribedTopics()
	slices.Sort(subs)
	for _, name := range subs[:min(len(subs), maxAnnouncedRegs-len(out))] {
		out = append(out, regKey{kind: regSubscriber, topic: name})
	}
	slices.SortFunc(out, cmpRegs)
	return out
}

func cmpRegs(a, b regKey) int {
	return cmpStrings(a.kind+"\x00"+a.topic+"\x00"+a.group, b.kind+"\x00"+b.topic+"\x00"+b.group)
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// learnRegsLocked records p's registry entries; t.mu held.
func (t *topology) learnRegsLocked(p peer.ID, regs []regKey) {
	if len(regs) == 0 {
		delete(t.regs, p)
		return
	}
	since := time.Now()
	if old, ok := t.regs[p]; ok && slices.Equal(old.entries, regs) {
		since = old.since
	}
	t.regs[p] = announcedRegs{entries: regs, since: since}
}

// hopsLocked returns, for every node reachable through announced links,
// the neighbour a frame to it goes to first; t.mu held.
func (t *topology) hopsLocked() map[peer.ID]peer.ID {
	if t.hops != nil {
		return t.hops
	}
	hops := map[peer.ID]peer.ID{}
	var queue []peer.ID
	for q := range t.ready { // our links: the peers we send to
		hops[q] = q
		queue = append(queue, q)
	}
	slices.Sort(queue) // a stable choice among equal paths
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		next := make([]peer.ID, 0, len(t.theirs[u]))
		for v := range t.theirs[u] {
			if _, seen := hops[v]; !seen && v != t.self {
				next = append(next, v)
			}
		}
		slices.Sort(next)
		for _, v := range next {
			hops[v] = hops[u]
			queue = append(queue, v)
		}
	}
	t.hops = hops
	return hops
}

// nextHop returns the neighbour to send a frame for target to, and whether
// target is reachable at all.
func (t *topology) nextHop(target peer.ID) (peer.ID, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.hopsLocked()[target]
	return h, ok
}

// neighbour reports whether q is connected to this node.
func (t *topology) neighbour(q peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.mine[q]
	return ok
}

// remoteMembers returns, for a kind with groups and a user topic, the
// reachable nodes that are not neighbours and announce entries of it, by
// group (each list sorted).
func (t *topology) remoteMembers(kind, topic string) map[string][]peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.regs) == 0 {
		return nil
	}
	hops := t.hopsLocked()
	var out map[string][]peer.ID
	for q, r := range t.regs {
		if _, near := t.mine[q]; near || q == t.self {
			continue
		}
		if _, ok := hops[q]; !ok {
			continue
		}
		for _, e := range r.entries {
			if e.kind == kind && e.topic == topic {
				if out == nil {
					out = map[string][]peer.ID{}
				}
				out[e.group] = append(out[e.group], q)
			}
		}
	}
	for _, qs := range out {
		slices.Sort(qs)
	}
	return out
}

// reachable reports whether q is a neighbour or reachable through
// announced links.
func (t *topology) reachable(q peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.mine[q]; ok {
		return true
	}
	_, ok := t.hopsLocked()[q]
	return ok
}

// members returns the nodes with entries of kind on topic: neighbours
// (from their subscriptions) and, on a partial mesh, the nodes beyond them
// (from their announcements), by group.
func (p *PubSub) members(kind, topic string) map[string][]peer.ID {
	near := p.topics.groups(kind, topic)
	far := p.topo.remoteMembers(kind, topic)
	if len(far) == 0 {
		return near
	}
	if near == nil {
		near = map[string][]peer.ID{}
	}
	for g, qs := range far {
		for _, q := range qs {
			if !slices.Contains(near[g], q) {
				near[g] = append(near[g], q)
			}
		}
		slices.Sort(near[g])
	}
	return near
}

// encodeForward wraps a call frame (with its length prefix) for target,
// signed by this node.
func (p *PubSub) encodeForward(target peer.ID, frame []byte) ([]byte, error) {
	_, n := uvarint(frame)
	inner := frame[n:]
	sig, err := p.key.Sign(forwardSigned(p.host.ID(), target, inner))
	if err != nil {
		return nil, fmt.Errorf("pubsub: sign a forwarded frame: %w", err)
	}
	return wrapForward(p.host.ID(), target, maxHops-1, sig, inner), nil
}

// forwardSigned is what the origin of a forwarded frame signs: a context
// string, the origin, the target and the inner frame.
func forwardSigned(origin, target peer.ID, inner []byte) []byte {
	out := make([]byte, 0, len(forwardContext)+strLen(string(origin))+strLen(string(target))+len(inner))
	out = append(out, forwardContext...)
	out = appendString(out, string(origin))
	out = appendString(out, string(target))
	return append(out, inner...)
}

// forwardContext keeps a forwarded frame's signature from meaning anything
// else signed with the node's key.
const forwardContext = "reflect/pubsub/forward/1\x00"

// maxSigLen bounds a forwarded frame's signature (Ed25519's is 64 bytes;
// RSA keys give longer ones).
const maxSigLen = 1024

// wrapForward wraps a call frame's kind and content for target.
func wrapForward(origin, target peer.ID, hops byte, sig, inner []byte) []byte {
	out := frameStart(1 + strLen(string(origin)) + strLen(string(target)) + 1 + strLen(string(sig)) + len(inner))
	out = append(out, frameForward)
	out = appendString(out, string(origin))
	out = appendString(out, string(target))
	out = append(out, hops)
	out = appendString(out, string(sig))
	return append(out, inner...)
}

// decodeForward decodes a frameForward's content after its kind.
func decodeForward(frame []byte) (origin, target peer.ID, hops byte, sig, inner []byte, err error) {
	var o, tg, s string
	if o, frame, err = readString(frame, maxAuthorLen, "forward origin"); err != nil {
		return
	}
	if tg, frame, err = readString(frame, maxAuthorLen, "forward target"); err != nil {
		return
	}
	if o == "" || tg == "" || len(frame) < 1 || frame[0] > maxHops {
		err = fmt.Errorf("%w: forward frame", ErrMalformed)
		return
	}
	hops = frame[0]
	if s, frame, err = readString(frame[1:], maxSigLen, "forward signature"); err != nil {
		return
	}
	if s == "" || len(frame) < 1 {
		err = fmt.Errorf("%w: forward frame", ErrMalformed)
		return
	}
	switch frame[0] {
	case frameSend, frameRequest, frameReply:
	default:
		err = fmt.Errorf("%w: forwarded frame kind %d", ErrMalformed, frame[0])
		return
	}
	return peer.ID(o), peer.ID(tg), hops, []byte(s), frame, nil
}

// verifyForward reports whether sig is origin's signature of a frame for
// target: the key comes from the origin's peer id (Ed25519 ids hold it),
// else from what the peerstore learnt on a connection.
func (p *PubSub) verifyForward(origin, target peer.ID, sig, inner []byte) bool {
	key, err := origin.ExtractPublicKey()
	if err != nil {
		if key = p.host.Peerstore().PubKey(origin); key == nil {
			return false
		}
	}
	ok, err := key.Verify(forwardSigned(origin, target, inner), sig)
	return err == nil && ok
}

// forward handles a frameForward from a neighbour: the inner frame is for
// this node, or goes on towards its target. A relay never waits: with no
// route, no hops left or a full queue, the frame is dropped and counted.
func (p *PubSub) forward(from peer.ID, frame []byte) error {
	origin, target, hops, sig, inner, err := decodeForward(frame)
	if err != nil {
		return err
	}
	self := p.host.ID()
	if target == self {
		if origin == self {
			return fmt.Errorf("%w: a forwarded frame from this node", ErrMalformed)
		}
		if !p.verifyForward(origin, target, sig, inner) {
			// Not the origin's: forged on the way, which need not be the
			// neighbour's doing, so its stream stays.
			p.count.invalid.Add(1)
			p.forged("", origin, from)
			return nil
		}
		// The inner frame is the origin's: a bad one is not the relay's
		// fault, so it does not end the relay's stream.
		if err := p.receiveCall(origin, inner[0], inner[1:]); err != nil {
			p.count.invalid.Add(1)
			p.log.Debug("pubsub: bad forwarded frame", "origin", origin, "via", from, "err", err)
		}
		return nil
	}
	next, ok := p.topo.nextHop(target)
	var s *directPeer
	if ok && hops > 0 && next != from {
		s = p.dir.openStream(next)
	}
	if s == nil {
		p.count.unroutable.Add(1)
		p.log.Debug("pubsub: cannot forward a frame", "origin", origin, "target", target, "via", from)
		return nil
	}
	s.enqueue(wrapForward(origin, target, hops-1, sig, inner), "") // a full queue counts in OutboundDropped
	return nil
}
