package pubsub

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
)

// The registry.
//
// Request/reply, queue groups and wildcards need to know which peer
// answers requests on a topic, which peers belong to which queue group, and
// which wildcard patterns a peer follows. GossipSub already tells every
// neighbour which topics a node subscribes to (the subscription mirror,
// peertopics.go), at once and again to each new peer; so a node registers
// by subscribing to a reserved topic whose name says what it offers. No
// message is ever published on these topics.
//
//	_reflect/rr/<len(topic)>:<topic><group>   answers requests on topic
//	                                           (group "" answers them all)
//	_reflect/q/<len(topic)>:<topic><group>    queue-group member on topic
//	_reflect/w/<pattern>                      follows a wildcard pattern
//	_reflect/pub/<topic>                      publishes on topic (announced
//	                                           to peers whose pattern matches)
//	_reflect/rl/<topic>                       relays topic without
//	                                           subscribing to it (relay.go)
//
// The length prefix keeps any topic and group name unambiguous.

// Registry kinds: the path element after ReservedPrefix.
const (
	regResponder = "rr/"
	regQueue     = "q/"
	regPattern   = "w/"
	regPublisher = "pub/"
	regRelay     = "rl/"
	// regSubscriber is no registry topic: a node's plain subscriptions
	// are listed under it in its peer announcements (routes.go).
	regSubscriber = "s/"
)

// registryName is the reserved topic name (without Config.TopicPrefix)
// that registers group on topic for a kind with a group (regResponder,
// regQueue), or topic alone for the others.
func registryName(kind, topic, group string) string {
	switch kind {
	case regResponder, regQueue:
		return ReservedPrefix + kind + strconv.Itoa(len(topic)) + ":" + topic + group
	default:
		return ReservedPrefix + kind + topic
	}
}

// parseRegistry splits a reserved topic name made by registryName.
func parseRegistry(name string) (kind, topic, group string, ok bool) {
	rest, ok := strings.CutPrefix(name, ReservedPrefix)
	if !ok {
		return "", "", "", false
	}
	for _, k := range []string{regResponder, regQueue, regPattern, regPublisher, regRelay} {
		r, ok := strings.CutPrefix(rest, k)
		if !ok {
			continue
		}
		if k == regPattern || k == regPublisher || k == regRelay {
			return k, r, "", r != ""
		}
		lenStr, r, ok := strings.Cut(r, ":")
		n, err := strconv.Atoi(lenStr)
		if !ok || err != nil || n <= 0 || n > len(r) || strconv.Itoa(n) != lenStr {
			return "", "", "", false
		}
		return k, r[:n], r[n:], true
	}
	return "", "", "", false
}

// memberKey says what a member subscription is: a queue-group member
// (kind regQueue) or a responder (regResponder), of a group.
type memberKey struct{ kind, group string }

// checkGroup validates a queue group name.
func checkGroup(name string) error {
	if len(name) > maxTopicLen/2 || !utf8.ValidString(name) {
		return fmt.Errorf("%w: queue group %q", ErrTopic, name)
	}
	return nil
}

// registration is this node's subscription to a registry topic, shared by
// the local subscriptions that need it.
type registration struct {
	gt    *lp2pps.Topic
	sub   *lp2pps.Subscription // nil while unregistered
	count int
}

// register subscribes to the registry topic name (a user-level reserved
// name), or counts one more user of it.
func (p *PubSub) register(name string) error {
	p.regMu.Lock()
	defer p.regMu.Unlock()
	r := p.registered[name]
	if r == nil {
		gt, err := p.gs.Join(p.cfg.TopicPrefix + name)
		if err != nil {
			return fmt.Errorf("pubsub: register %q: %w", name, err)
		}
		r = &registration{gt: gt}
		p.registered[name] = r
	}
	if r.count == 0 {
		sub, err := r.gt.Subscribe(lp2pps.WithBufferSize(1), lp2pps.WithMessageFilter(func(*lp2pps.Message) bool { return false }))
		if err != nil {
			return fmt.Errorf("pubsub: register %q: %w", name, err)
		}
		r.sub = sub
	}
	r.count++
	if announcedReg(name) {
		p.topo.poke() // announced too (routes.go)
	}
	return nil
}

// announcedReg reports whether the registry name is one a node lists in
// its peer announcements (responders and queue groups: routes.go).
func announcedReg(name string) bool {
	kind, _, _, ok := parseRegistry(name)
	return ok && (kind == regResponder || kind == regQueue)
}

// unregister undoes one register.
func (p *PubSub) unregister(name string) {
	p.regMu.Lock()
	defer p.regMu.Unlock()
	r := p.registered[name]
	if r == nil || r.count == 0 {
		return
	}
	if r.count--; r.count == 0 {
		r.sub.Cancel()
		r.sub = nil
		if announcedReg(name) {
			p.topo.poke()
		}
	}
}
