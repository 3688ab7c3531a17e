package pubsub

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Request/reply.
//
// A responder (Handle) registers on its topic (registry.go), with or
// without a queue group. A request goes to every node with a responder
// that answers all requests (group ""), and to one node of each queue
// group in turn (if that node cannot take it, busy or gone, to the group's
// next); each such node hands it to one of its responders, whose
// answer goes straight back to the requester on the direct stream
// (calls.go), never through the topic. Request returns the first answer,
// RequestAll gathers them. A node asked that has no responder any more, or
// whose responder's queue is full, says so at once, so a requester waits
// only for nodes that are working on its request, and learns
// ErrNoResponders without waiting when nobody is. A responder that leaves
// the mesh counts as an answer of that kind.

// Responder answers one request: its result is the reply's body, its
// error reaches the requester as an error wrapping ErrRemote (with the
// error's text). ctx ends when the requester's deadline passes (when the
// request had one) or the PubSub closes. A responder runs on its
// subscription's goroutine, one request at a time: a slow one delays the
// requests queued behind it (up to the queue's bound; beyond it, requests
// are refused with ErrBusy).
type Responder func(ctx context.Context, req Message) ([]byte, error)

// Reply is one answer gathered by RequestAll: the responder's message, or
// the error it returned (wrapping ErrRemote) or met (ErrBusy).
type Reply struct {
	Message
	Err error
}

// inCall identifies the request a Message carries, for its answer.
type inCall struct {
	from     peer.ID
	id       uint64
	deadline time.Time // zero: none
}

// calls are this node's requests waiting for answers.
type calls struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]*call
}

// call is one request in flight.
type call struct {
	topic   string
	waiting map[peer.ID]struct{} // asked, not answered yet (under calls.mu)
	answers chan answer          // buffered for every node that may be asked

	// The request, for asking another member of a queue group whose first
	// pick could not take it; used by the requester's goroutine only.
	id        uint64
	wire      string
	w         batchWriter
	timeoutMs uint64
	deadline  time.Time            // zero: none
	groupOf   map[peer.ID]string   // each node asked for a group: which
	alts      map[string][]peer.ID // the group members not asked yet, in turn
}

// answer is one node's answer to a call.
type answer struct {
	from   peer.ID
	status byte
	text   string
	b      *batch // replyOK
}

// Handle makes r answer requests on topic (Request, RequestAll) on this
// node, until the returned Subscription's Unsubscribe. With
// WithQueueGroup, each request reaches one member of the group; without,
// every node's responder gets each request. WithQueueLength bounds the
// requests waiting for r.
func (p *PubSub) Handle(topic string, r Responder, opts ...Option) (*Subscription, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil responder", ErrConfig)
	}
	o := applyOptions(opts)
	if err := checkGroup(o.group); err != nil {
		return nil, err
	}
	t, err := p.topic(topic, o.reserved)
	if err != nil {
		return nil, err
	}
	return t.subscribe(func(m Message) { p.answer(r, m) }, memberKey{regResponder, o.group}, o)
}

// WaitResponders blocks until at least n other nodes answer requests on
// topic (with or without a queue group), or ctx ends. On a partial mesh the
// nodes beyond the neighbours are learnt from their announcements, which
// may take up to about a second.
func (p *PubSub) WaitResponders(ctx context.Context, topic string, n int) error {
	if err := checkTopic(topic, true); err != nil {
		return err
	}
	return p.waitMembers(ctx, regResponder, topic, "", n)
}

// ListResponders returns the other nodes that answer requests on topic,
// with or without a queue group, sorted.
func (p *PubSub) ListResponders(topic string) []peer.ID {
	var out []peer.ID
	for _, nodes := range p.members(regResponder, topic) {
		for _, q := range nodes {
			if !slices.Contains(out, q) {
				out = append(out, q)
			}
		}
	}
	slices.Sort(out)
	return out
}

// waitMembers waits until n other nodes have entries of kind on topic: of
// group, or (responders, group "") of any group.
func (p *PubSub) waitMembers(ctx context.Context, kind, topic, group string, n int) error {
	for {
		changed, updated := p.topics.changes(), p.topo.updates()
		var have int
		if kind == regResponder {
			have = len(p.ListResponders(topic))
		} else {
			have = len(p.members(kind, topic)[group])
		}
		if have >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pubsub: waiting for %d nodes on %q, have %d: %w", n, topic, have, ctx.Err())
		case <-p.ctx.Done():
			return ErrClosed
		case <-changed:
		case <-updated:
		}
	}
}

// Request sends data to the responders of topic and returns the first
// answer: the reply, or the responder's error (wrapping ErrRemote). It
// fails at once with ErrNoResponders when no node answers requests on
// topic, and when every node asked turns out to have none; with ErrBusy
// when the responders asked were too busy (a queue group's busy member
// hands the request to the group's next one first); with ctx's error
// when no answer came in time. ctx's deadline also bounds the responders'
// work.
func (p *PubSub) Request(ctx context.Context, topic string, data []byte, opts ...Option) (Message, error) {
	c, err := p.startCall(ctx, topic, data, opts)
	if err != nil {
		return Message{}, err
	}
	defer p.endCall(c.id)
	var last error = ErrNoResponders
	for pending := len(c.groupOf); pending > 0; pending-- {
		a, err := p.await(ctx, c)
		if err != nil {
			return Message{}, err
		}
		m, err := p.answerMessage(c, a)
		switch {
		case err == nil || errors.Is(err, ErrRemote):
			return m, err
		case p.askAnother(ctx, c, a.from):
			pending++ // another member of its queue group takes its place
		case errors.Is(err, ErrBusy) || !errors.Is(last, ErrBusy):
			last = err // busy says more than "no responder"
		}
	}
	return Message{}, fmt.Errorf("pubsub: request on %q: %w", topic, last)
}

// RequestAll sends data to the responders of topic, as Request does, and
// gathers every answer until each node asked has answered or ctx ends
// (which is then not an error). It fails with ErrNoResponders as Request
// does; nodes that had no responder after all are left out of the replies.
func (p *PubSub) RequestAll(ctx context.Context, topic string, data []byte, opts ...Option) ([]Reply, error) {
	c, err := p.startCall(ctx, topic, data, opts)
	if err != nil {
		return nil, err
	}
	defer p.endCall(c.id)
	var out []Reply
	for pending := len(c.groupOf); pending > 0; pending-- {
		a, err := p.await(ctx, c)
		if err != nil {
			if errors.Is(err, ErrClosed) && len(out) == 0 {
				return nil, err
			}
			break
		}
		m, err := p.answerMessage(c, a)
		if err != nil && !errors.Is(err, ErrRemote) && p.askAnother(ctx, c, a.from) {
			pending++
			continue
		}
		if errors.Is(err, ErrNoResponders) {
			continue
		}
		out = append(out, Reply{Message: m, Err: err})
	}
	if len(out) == 0 && ctx.Err() == nil {
		return nil, fmt.Errorf("pubsub: request on %q: %w", topic, ErrNoResponders)
	}
	return out, nil
}

// startCall sends a request to the nodes that answer on topic.
func (p *PubSub) startCall(ctx context.Context, topic string, data []byte, opts []Option) (*call, error) {
	o := applyOptions(opts)
	t, hdr, err := p.prepare(topic, data, o)
	if err != nil {
		return nil, err
	}
	targets, alts := t.requestTargets()
	if len(targets) == 0 {
		return nil, fmt.Errorf("pubsub: request on %q: %w", topic, ErrNoResponders)
	}
	c := &call{topic: topic, wire: t.wire, waiting: map[peer.ID]struct{}{}, groupOf: map[peer.ID]string{}, alts: alts}
	c.w.addHeader(hdr, slices.Clone(data))
	if deadline, ok := ctx.Deadline(); ok {
		c.deadline = deadline
		// Rounded up: the responder's deadline never comes before ours.
		c.timeoutMs = uint64(max((time.Until(deadline)+time.Millisecond-1)/time.Millisecond, 1))
	}
	room := len(targets)
	for _, a := range alts {
		room += len(a)
	}
	c.answers = make(chan answer, room)
	p.calls.mu.Lock()
	if p.calls.m == nil {
		p.calls.m = map[uint64]*call{}
	}
	p.calls.next++
	c.id = p.calls.next
	p.calls.m[c.id] = c
	p.calls.mu.Unlock()
	for _, tg := range targets {
		p.ask(ctx, c, tg)
	}
	return c, nil
}

// ask sends the call's request to one node (this one directly); a node
// that cannot be reached answers "no responder" at once.
func (p *PubSub) ask(ctx context.Context, c *call, tg callTarget) {
	c.groupOf[tg.p] = tg.group
	p.calls.mu.Lock()
	c.waiting[tg.p] = struct{}{}
	p.calls.mu.Unlock()
	if tg.p == p.host.ID() {
		in := &inCall{from: tg.p, id: c.id, deadline: c.deadline}
		p.dispatchRequest(in, &callFrame{kind: frameRequest, wire: c.wire, group: tg.group, id: c.id, b: c.w.local(p.router.author, 0)})
		return
	}
	frame := encodeRequestFrame(c.wire, tg.group, c.id, c.timeoutMs, p.router.author, &c.w)
	if err := p.sendFrame(ctx, tg.p, c.wire, frame); err != nil {
		p.log.Debug("pubsub: request not sent", "topic", c.topic, "to", tg.p, "err", err)
		p.complete(tg.p, c.id, answer{from: tg.p, status: replyNoResponder, text: err.Error()})
	}
}

// askAnother asks the next member of the queue group that node was asked
// for, when it could not take the request (busy, no responder, gone); it
// reports whether it asked one.
func (p *PubSub) askAnother(ctx context.Context, c *call, node peer.ID) bool {
	g := c.groupOf[node]
	if g == "" || len(c.alts[g]) == 0 || ctx.Err() != nil {
		return false
	}
	next := c.alts[g][0]
	c.alts[g] = c.alts[g][1:]
	p.ask(ctx, c, callTarget{next, g})
	return true
}

// callTarget is one node asked, for a group ("" for all-requests
// responders).
type callTarget struct {
	p     peer.ID
	group string
}

// requestTargets returns the nodes to ask: every node with a responder of
// group "", and one node of each queue group in turn, with the group's
// other members in turn order (asked if the first cannot take it). A node
// is asked once: a group whose members are all asked anyway adds nobody.
func (t *topic) requestTargets() ([]callTarget, map[string][]peer.ID) {
	p := t.ps
	remote := p.members(regResponder, t.name)
	local := *t.members.Load()
	groups := map[string][]peer.ID{}
	for g, nodes := range remote {
		groups[g] = slices.Clone(nodes)
	}
	for k := range local {
		if k.kind == regResponder {
			groups[k.group] = append(groups[k.group], p.host.ID())
		}
	}
	var out []callTarget
	asked := map[peer.ID]bool{}
	for _, n := range groups[""] {
		out = append(out, callTarget{n, ""})
		asked[n] = true
	}
	names := slices.Sorted(maps.Keys(groups))
	alts := map[string][]peer.ID{}
	for _, g := range names {
		if g == "" {
			continue
		}
		nodes := groups[g]
		slices.Sort(nodes)
		start := int(t.picks.Add(1) % uint64(len(nodes)))
		var order []peer.ID
		for i := range nodes {
			if n := nodes[(start+i)%len(nodes)]; !asked[n] {
				order = append(order, n)
			}
		}
		if len(order) == 0 {
			continue
		}
		out = append(out, callTarget{order[0], g})
		asked[order[0]] = true
		alts[g] = order[1:]
	}
	return out, alts
}

// await returns the call's next answer.
func (p *PubSub) await(ctx context.Context, c *call) (answer, error) {
	select {
	case a := <-c.answers:
		return a, nil
	case <-ctx.Done():
		return answer{}, fmt.Errorf("pubsub: request on %q: no answer: %w", c.topic, ctx.Err())
	case <-p.ctx.Done():
		return answer{}, ErrClosed
	}
}

// answerMessage turns an answer into Request's result.
func (p *PubSub) answerMessage(c *call, a answer) (Message, error) {
	switch a.status {
	case replyOK:
		return Message{Topic: c.topic, From: a.from, Data: a.b.msgs[0], Header: a.b.header(0)}, nil
	case replyError:
		return Message{Topic: c.topic, From: a.from}, fmt.Errorf("%w: %s: %s", ErrRemote, a.from, a.text)
	case replyBusy:
		return Message{Topic: c.topic, From: a.from}, fmt.Errorf("%w: %s", ErrBusy, a.from)
	default:
		return Message{Topic: c.topic, From: a.from}, ErrNoResponders
	}
}

// endCall forgets a call; late answers are dropped.
func (p *PubSub) endCall(id uint64) {
	p.calls.mu.Lock()
	delete(p.calls.m, id)
	p.calls.mu.Unlock()
}

// complete records a node's answer to call id, if that node was asked and
// has not answered yet.
func (p *PubSub) complete(from peer.ID, id uint64, a answer) {
	p.calls.mu.Lock()
	defer p.calls.mu.Unlock()
	c := p.calls.m[id]
	if c == nil {
		return
	}
	if _, ok := c.waiting[from]; !ok {
		return
	}
	delete(c.waiting, from)
	c.answers <- a // buffered for every node asked, each answers once
}

// callsUnreachable answers, for every node a call waits for that is no
// longer reachable (it left, or its last path did), "no responder".
func (p *PubSub) callsUnreachable() {
	type waiter struct {
		id uint64
		q  peer.ID
	}
	var gone []waiter
	p.calls.mu.Lock()
	for id, c := range p.calls.m {
		for q := range c.waiting {
			if q != p.host.ID() && !p.topo.reachable(q) {
				gone = append(gone, waiter{id, q})
			}
		}
	}
	p.calls.mu.Unlock()
	for _, w := range gone {
		p.complete(w.q, w.id, answer{from: w.q, status: replyNoResponder, text: "left"})
	}
}

// receiveReply takes an answer from a direct stream.
func (p *PubSub) receiveReply(from peer.ID, c *callFrame) {
	p.complete(from, c.id, answer{from: from, status: c.status, text: c.text, b: c.b})
}

// receiveRequest takes a request from a direct stream.
func (p *PubSub) receiveRequest(from peer.ID, c *callFrame) {
	call := &inCall{from: from, id: c.id}
	if c.timeoutMs > 0 {
		call.deadline = time.Now().Add(time.Duration(min(c.timeoutMs, uint64(24*time.Hour/time.Millisecond))) * time.Millisecond)
	}
	p.dispatchRequest(call, c)
}

// dispatchRequest hands a request to one of this node's responders of the
// group on the topic, or answers at once that there is none, or that it
// is busy (from a goroutine of its own for a remote requester: this runs
// on a direct stream's reader, which must not wait for a write).
func (p *PubSub) dispatchRequest(call *inCall, c *callFrame) {
	from := call.from
	t := p.joinedWire(c.wire)
	var members []*Subscription
	if t != nil {
		members = (*t.members.Load())[memberKey{regResponder, c.group}]
	}
	if len(members) == 0 {
		p.replySoon(call, replyNoResponder, "no responder")
		return
	}
	if err := t.vet(c.b); err != nil {
		p.replySoon(call, replyError, "invalid request: "+err.Error())
		return
	}
	m := Message{Topic: t.name, From: from, Data: c.b.msgs[0], Header: c.b.header(0), call: call}
	if c.b.vals != nil {
		m.Decoded = c.b.vals[0]
	}
	if s := members[t.picks.Add(1)%uint64(len(members))]; !s.offer(m) {
		if s.stopped() {
			p.replySoon(call, replyNoResponder, "responder stopped")
		} else {
			p.replySoon(call, replyBusy, "busy")
		}
	}
}

// replySoon sends an answer without data: directly to this node's own
// call, from a goroutine of its own to another node.
func (p *PubSub) replySoon(call *inCall, status byte, text string) {
	if call.from == p.host.ID() {
		p.reply(call, status, nil, nil, text)
		return
	}
	p.goOwned(func() { p.reply(call, status, nil, nil, text) })
}

// answer runs a responder on one request and sends its answer back.
func (p *PubSub) answer(r Responder, m Message) {
	call := m.call
	if call == nil {
		return
	}
	ctx := p.ctx
	if !call.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, call.deadline)
		defer cancel()
	}
	rh := &replyHeader{}
	data, err := r(context.WithValue(ctx, replyHeaderKey{}, rh), m)
	switch {
	case err != nil && !call.deadline.IsZero() && !time.Now().Before(call.deadline):
		// The requester's deadline has passed too: it has its own
		// timeout, which says more than the responder's "deadline
		// exceeded".
		return
	case err != nil:
		p.reply(call, replyError, nil, nil, err.Error())
	case len(data) > p.cfg.MaxMessageSize:
		p.reply(call, replyError, nil, nil, fmt.Sprintf("reply of %d bytes over the limit of %d", len(data), p.cfg.MaxMessageSize))
	default:
		hdr, err := encodeHeader(rh.h)
		if err != nil {
			p.reply(call, replyError, nil, nil, err.Error())
			return
		}
		p.reply(call, replyOK, data, hdr, "")
	}
}

// replyHeaderKey keys a responder's context's reply headers.
type replyHeaderKey struct{}

// replyHeader holds the headers a responder gives its reply.
type replyHeader struct{ h Header }

// ReplyHeader returns the headers of the reply a Responder is preparing,
// to fill in before it returns (as net/http's ResponseWriter.Header): ctx
// must be the Responder's. Outside a Responder it returns a Header that
// goes nowhere.
func ReplyHeader(ctx context.Context) Header {
	rh, ok := ctx.Value(replyHeaderKey{}).(*replyHeader)
	if !ok {
		return Header{}
	}
	if rh.h == nil {
		rh.h = Header{}
	}
	return rh.h
}

// reply sends an answer to the requester (this node's own call directly);
// hdr is the reply's encoded headers.
func (p *PubSub) reply(call *inCall, status byte, data, hdr []byte, text string) {
	var w batchWriter
	if status == replyOK {
		w.addHeader(hdr, data)
	}
	if call.from == p.host.ID() {
		a := answer{from: call.from, status: status, text: truncateText(text, maxErrorText)}
		if status == replyOK {
			a.b = w.local(p.router.author, 0)
		}
		p.complete(call.from, call.id, a)
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, directOpenTimeout)
	defer cancel()
	if err := p.sendFrame(ctx, call.from, "", encodeReplyFrame(call.id, status, p.router.author, &w, text)); err != nil {
		p.log.Debug("pubsub: reply not sent", "to", call.from, "err", err)
	}
}
