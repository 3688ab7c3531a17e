package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/reflectmesh/reflect/pubsub"
)

// Requests, responders and messages to one peer.

// Reasons of the error replies to req and send: what a script matches
// instead of the error's text.
const (
	reasonNoResponders = "no-responders" // nobody answers on the topic
	reasonTimeout      = "timeout"       // no answer (req) or no room (send) in time
	reasonRemote       = "remote"        // the responder returned an error
	reasonBusy         = "busy"          // the responders' queues were full
	reasonNoSubscriber = "no-subscriber" // send: the peer does not subscribe to the topic
	reasonNoRoute      = "no-route"      // send: the peer is not reachable
	reasonInvalid      = "invalid"       // bad topic, header or size: nothing sent
	reasonFailed       = "failed"        // anything else
)

// reasonOf classifies the error of Request or Send; ctx is the caller's
// context, before the command's own timeout.
func reasonOf(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, pubsub.ErrNoResponders):
		return reasonNoResponders
	case errors.Is(err, pubsub.ErrRemote):
		return reasonRemote
	case errors.Is(err, pubsub.ErrBusy):
		return reasonBusy
	case errors.Is(err, pubsub.ErrNoSubscriber):
		return reasonNoSubscriber
	case errors.Is(err, pubsub.ErrNoRoute):
		return reasonNoRoute
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return reasonTimeout
	case errors.Is(err, pubsub.ErrTopic), errors.Is(err, pubsub.ErrReservedTopic),
		errors.Is(err, pubsub.ErrHeader), errors.Is(err, pubsub.ErrTooLarge):
		return reasonInvalid
	}
	return reasonFailed
}

// request sends c's request and returns the first answer, or the error
// with its reason.
func (d *demo) request(ctx context.Context, c command) event {
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	m, err := d.node.PubSub().Request(tctx, c.topic, c.data, pubsub.WithHeader(c.header))
	if err == nil {
		return response(m)
	}
	from, reason := "", reasonOf(ctx, err)
	if deadline, _ := tctx.Deadline(); !time.Now().Before(deadline) && ctx.Err() == nil {
		// At the deadline the responders' contexts end too: one that gives
		// up then answers with its context's error, which can reach
		// Request before Request notices the deadline (pubsub's await
		// picks either). It is a timeout either way.
		reason = reasonTimeout
	}
	switch reason {
	case reasonTimeout:
		err = fmt.Errorf("no reply on %q within %v", c.topic, c.timeout)
	case reasonNoResponders:
		err = fmt.Errorf("no responders on %q", c.topic)
	case reasonRemote, reasonBusy:
		from = m.From.String()
	}
	return callFailure(c.name, err, reason, from)
}

// send sends c's message to one peer's subscribers.
func (d *demo) send(ctx context.Context, c command) event {
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := d.node.PubSub().Send(tctx, c.peer, c.topic, c.data, pubsub.WithHeader(c.header))
	if err == nil {
		return ok(c.name)
	}
	reason := reasonOf(ctx, err)
	if reason == reasonTimeout {
		err = fmt.Errorf("%s did not take the message within %v", c.peer, c.timeout)
	}
	return callFailure(c.name, err, reason, "")
}

// responder is a reply command's responder: its subscription and its
// answer, which a later reply on the same topic and group replaces.
type responder struct {
	sub    *pubsub.Subscription
	answer atomic.Pointer[fixedAnswer]
}

// fixedAnswer is what a responder answers every request with.
type fixedAnswer struct {
	data  []byte        // the reply, or with fail the error text
	fail  bool          // answer with an error
	delay time.Duration // wait this long first (or until the requester gives up)
}

// reply answers the requests on c's topic (and group) with c's message,
// printing each request.
func (d *demo) reply(c command) error {
	k := subKey{c.topic, c.group}
	a := &fixedAnswer{data: c.data, fail: c.fail, delay: c.timeout}
	if r := d.responders[k]; r != nil {
		r.answer.Store(a)
		return nil
	}
	r := &responder{}
	r.answer.Store(a)
	var opts []pubsub.Option
	if c.group != "" {
		opts = append(opts, pubsub.WithQueueGroup(c.group))
	}
	s, err := d.node.PubSub().Handle(c.topic, func(ctx context.Context, m pubsub.Message) ([]byte, error) {
		d.out.event(requested(m, c.group))
		a := r.answer.Load()
		if a.delay > 0 {
			t := time.NewTimer(a.delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done(): // the requester gives up, or the node closes
				// pubsub sends nothing back once the requester's deadline
				// has passed: the requester sees its own timeout.
				return nil, ctx.Err()
			}
		}
		if a.fail {
			return nil, errors.New(string(a.data))
		}
		return a.data, nil
	}, opts...)
	if err != nil {
		return err
	}
	r.sub = s
	d.responders[k] = r
	return nil
}

func (d *demo) unreply(topic, group string) error {
	k := subKey{topic, group}
	r := d.responders[k]
	if r == nil {
		return fmt.Errorf("not answering on %v", k)
	}
	r.sub.Unsubscribe()
	delete(d.responders, k)
	return nil
}

// waitResponders waits until n other nodes answer requests on topic.
func (d *demo) waitResponders(ctx context.Context, topic string, n int, timeout time.Duration) error {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := d.node.PubSub().WaitResponders(tctx, topic, n)
	if err != nil && tctx.Err() != nil && ctx.Err() == nil {
		have := len(d.node.PubSub().ListResponders(topic))
		return fmt.Errorf("%d of %d responders on %q after %v", have, n, topic, timeout)
	}
	return err
}
