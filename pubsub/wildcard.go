package pubsub

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Wildcards.
//
// A subscription to a pattern (NATS syntax: tokens separated by '.', '*'
// stands for one token, '>' as the last token for one or more) is a
// subscription to every concrete topic that matches it: the node
// subscribes to each such topic as it learns of it, and the topic delivers
// to the pattern's subscriptions as to its own. So wildcard traffic takes
// the same ways as any topic's, relays included, with the same ordering
// and drop accounting; Message.Topic is the concrete topic.
//
// A node learns of a topic when a neighbour subscribes to it (the
// subscription mirror), or when a neighbour announces that it publishes
// on it: a node registers its patterns (registry.go), and a node
// announces each topic it has joined (to publish on it, or to wait for its
// subscribers) that some neighbour's pattern matches; so WaitSubscribers
// on a concrete topic also waits for the pattern subscribers. Before the first batch of a topic, a publisher waits (at most
// patternWait) until its neighbours with a matching pattern have
// subscribed, so a new topic's first messages are not lost to them. On a
// partial mesh, a relay learns the topic from the publisher the same way
// when it follows a matching pattern or subscribes to the topic, and the
// nodes beyond it learn it from the relay's subscription; as with any
// topic, a relay forwards only topics it subscribes to itself.
//
// A topic followed for a pattern, or announced to one, stays joined until
// Close (as every topic a node has used does): patterns suit a bounded set
// of topics (regions, services, device types), not one topic per order id;
// beyond maxFollowed joined topics, patterns follow no new one.

// maxFollowed bounds the topics a node joins, beyond which its patterns
// follow no new topic (a warning says so).
const maxFollowed = 10000

// patternWait bounds a publisher's wait for pattern subscribers of a new
// topic. A neighbour answers within a round trip and an event-loop turn;
// the bound matters only for one that never does, and on a loaded machine
// (2 cores, a test suite in parallel) 2 s proved short.
const patternWait = 5 * time.Second

// isPattern reports whether a subscription name is a wildcard pattern.
func isPattern(name string) bool {
	for tok := range strings.SplitSeq(name, ".") {
		if tok == "*" || tok == ">" {
			return true
		}
	}
	return false
}

// checkPattern validates a pattern: no empty token, '>' only last.
func checkPattern(pattern string) error {
	toks := strings.Split(pattern, ".")
	for i, tok := range toks {
		if tok == "" || (tok == ">" && i != len(toks)-1) {
			return fmt.Errorf("%w: wildcard pattern %q", ErrTopic, pattern)
		}
	}
	return nil
}

// matchPattern reports whether topic matches pattern. Reserved topics
// match no pattern.
func matchPattern(pattern, topic string) bool {
	if strings.HasPrefix(topic, ReservedPrefix) {
		return false
	}
	for {
		ptok, prest, pmore := strings.Cut(pattern, ".")
		ttok, trest, tmore := strings.Cut(topic, ".")
		switch {
		case ptok == ">": // one or more tokens, none empty
			return topic != "" && !strings.HasPrefix(topic, ".") && !strings.HasSuffix(topic, ".") && !strings.Contains(topic, "..")
		case ttok == "" || (ptok != "*" && ptok != ttok):
			return false
		case !pmore || !tmore:
			return pmore == tmore
		}
		pattern, topic = prest, trest
	}
}

// subscribePattern adds a wildcard subscription.
func (p *PubSub) subscribePattern(pattern string, handler func(Message), o options) (*Subscription, error) {
	if err := checkPattern(pattern); err != nil {
		return nil, err
	}
	if o.reserved || strings.HasPrefix(pattern, ReservedPrefix) {
		return nil, fmt.Errorf("%w: %q", ErrReservedTopic, pattern)
	}
	if o.decode != nil {
		// A validator or decoder belongs to a topic, and a pattern's
		// topics have their own (or none).
		return nil, fmt.Errorf("%w: WithValidator or WithDecoder on the pattern %q", ErrConfig, pattern)
	}
	// Each pattern subscription registers the pattern once and unregisters
	// it once (registrations are counted), before anyone can see it.
	regName := registryName(regPattern, pattern, "")
	if err := p.register(regName); err != nil {
		return nil, err
	}
	qlen := o.queue
	if qlen == 0 {
		qlen = p.cfg.QueueLength
	}
	// The subscription's own topic is never joined: it carries the
	// pattern's name and counts for the subscription.
	s := newSubscription(newTopic(p, pattern), handler, qlen, p.cfg.QueueBytes)
	s.pattern = pattern
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.unregister(regName)
		return nil, ErrClosed
	}
	p.patterns[pattern] = append(p.patterns[pattern], s)
	p.goOwned(s.run) // under p.mu: Close, which waits for it, has not begun
	var topics []*topic
	for name, t := range p.joined {
		if matchPattern(pattern, name) {
			topics = append(topics, t)
		}
	}
	p.mu.Unlock()
	// Attached without p.mu (see topic); a topic joined meanwhile attaches
	// s itself, and attaching twice is harmless.
	for _, t := range topics {
		if err := t.attach(s); err != nil {
			s.Unsubscribe()
			return nil, err
		}
	}
	p.followPatterns() // topics already known
	return s, nil
}

// removePattern drops a wildcard subscription from its topics.
func (p *PubSub) removePattern(s *Subscription) {
	p.mu.Lock()
	s.detached.Store(true) // before looking at the topics: see attachLocked
	subs := p.patterns[s.pattern]
	if !slices.Contains(subs, s) {
		p.mu.Unlock()
		return
	}
	subs = slices.DeleteFunc(slices.Clone(subs), func(x *Subscription) bool { return x == s })
	if len(subs) == 0 {
		delete(p.patterns, s.pattern)
	} else {
		p.patterns[s.pattern] = subs
	}
	var topics []*topic
	for _, t := range p.joined {
		topics = append(topics, t)
	}
	p.mu.Unlock()
	for _, t := range topics {
		t.remove(s)
	}
	p.unregister(registryName(regPattern, s.pattern, ""))
}

// patternSubsLocked returns the wildcard subscriptions whose pattern
// matches the topic name; p.mu held.
func (p *PubSub) patternSubsLocked(name string) []*Subscription {
	var out []*Subscription
	for pattern, subs := range p.patterns {
		if matchPattern(pattern, name) {
			out = append(out, subs...)
		}
	}
	return out
}

// followPatterns subscribes to every known topic that a local pattern
// matches and is not followed yet, and announces the topics this node has
// joined (to publish, subscribe or wait for subscribers) that a
// neighbour's pattern matches.
func (p *PubSub) followPatterns() {
	p.mu.Lock()
	havePatterns := len(p.patterns) > 0
	p.mu.Unlock()
	if havePatterns {
		var names []string
		for _, wire := range p.topics.wireTopics(nil) {
			if name, ok := strings.CutPrefix(wire, p.cfg.TopicPrefix); ok && !strings.HasPrefix(name, ReservedPrefix) {
				names = append(names, name)
			}
		}
		p.topics.entries(regPublisher, func(name string, _ map[peer.ID]struct{}) { names = append(names, name) })
		for _, name := range names {
			p.mu.Lock()
			_, joined := p.joined[name]
			match := !joined && len(p.patternSubsLocked(name)) > 0
			full := len(p.joined) >= maxFollowed
			p.mu.Unlock()
			if !match {
				continue
			}
			if full {
				if p.followFull.CompareAndSwap(false, true) {
					p.log.Warn("pubsub: too many topics joined; wildcard patterns follow no new topic", "limit", maxFollowed)
				}
				continue
			}
			if _, err := p.topic(name, false); err != nil && p.ctx.Err() == nil {
				p.log.Debug("pubsub: cannot follow a topic a pattern matches", "topic", name, "err", err)
			}
		}
	}
	p.mu.Lock()
	var published []*topic
	for _, t := range p.joined {
		if !t.announced.Load() {
			published = append(published, t)
		}
	}
	p.mu.Unlock()
	for _, t := range published {
		if len(p.patternPeers(t.name)) > 0 && t.announced.CompareAndSwap(false, true) {
			if err := p.register(registryName(regPublisher, t.name, "")); err != nil {
				t.announced.Store(false)
				p.log.Debug("pubsub: cannot announce a topic", "topic", t.name, "err", err)
			}
		}
	}
}

// patternPeers returns the neighbours with a pattern matching topic.
func (p *PubSub) patternPeers(topic string) []peer.ID {
	var out []peer.ID
	p.topics.entries(regPattern, func(pattern string, peers map[peer.ID]struct{}) {
		if matchPattern(pattern, topic) {
			for q := range peers {
				if !slices.Contains(out, q) {
					out = append(out, q)
				}
			}
		}
	})
	return out
}

// awaitPatternSubscribers waits, before a topic's first batch, until the
// neighbours with a pattern matching it have subscribed to it (at most
// patternWait, or until stop is closed).
func (t *topic) awaitPatternSubscribers(stop <-chan struct{}) {
	p := t.ps
	var timer *time.Timer
	for {
		changed := p.topics.changes()
		peers := p.patternPeers(t.name)
		if len(peers) == 0 {
			return
		}
		subs := p.topics.of(t.wire, nil)
		missing := false
		for _, q := range peers {
			if !slices.Contains(subs, q) {
				missing = true
				break
			}
		}
		if !missing {
			return
		}
		p.followPatterns() // announce the topic
		if timer == nil {
			timer = time.NewTimer(patternWait)
			defer timer.Stop()
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		case <-stop:
			return
		}
	}
}

// patternLoop follows the subscription mirror and the topics joined here
// for the wildcards.
func (p *PubSub) patternLoop() {
	changed := p.topics.changes()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-changed:
		case <-p.joinedTopic:
		}
		// Taken before following: a change while followPatterns runs
		// wakes the next turn.
		changed = p.topics.changes()
		p.followPatterns()
	}
}
