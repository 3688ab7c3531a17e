package pubsub

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Broadcast sends msg, encoded as JSON, to every other node subscribed to
// topic: the map form of PublishJSON, for programs that pass JSON objects
// around. See Publish for the semantics.
func (p *PubSub) Broadcast(ctx context.Context, topic string, msg map[string]any) error {
	return PublishJSON(ctx, p, topic, msg)
}

// SubscribeMap calls handler with each message on topic decoded as a JSON
// object into a map, the pair of Broadcast. Messages that are not JSON
// objects are skipped and logged at debug level.
func (p *PubSub) SubscribeMap(topic string, handler func(map[string]any), opts ...Option) (*Subscription, error) {
	if handler == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrConfig)
	}
	return SubscribeJSON(p, topic, func(m map[string]any, _ Message) { handler(m) }, opts...)
}

// PublishJSON sends v encoded as JSON on topic.
func PublishJSON[T any](ctx context.Context, p *PubSub, topic string, v T, opts ...Option) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("pubsub: encode message for %q: %w", topic, err)
	}
	return p.publish(ctx, topic, data, opts)
}

// SubscribeJSON calls handler with each message on topic decoded from JSON
// into a T, together with the message (for its sender). Messages that do not
// decode into a T are skipped and logged at debug level.
func SubscribeJSON[T any](p *PubSub, topic string, handler func(T, Message), opts ...Option) (*Subscription, error) {
	if handler == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrConfig)
	}
	return p.Subscribe(topic, func(m Message) {
		var v T
		if err := m.Decode(&v); err != nil {
			p.log.Debug("pubsub: skipping message", "topic", topic, "from", m.From, "err", err)
			return
		}
		handler(v, m)
	}, opts...)
}

// SendJSON sends v encoded as JSON to one peer's subscriptions of topic
// (see Send).
func SendJSON[T any](ctx context.Context, p *PubSub, to peer.ID, topic string, v T, opts ...Option) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("pubsub: encode message for %q: %w", topic, err)
	}
	return p.Send(ctx, to, topic, data, opts...)
}

// RequestJSON sends req encoded as JSON to the responders of topic and
// decodes the first answer into a Resp (see Request).
func RequestJSON[Req, Resp any](ctx context.Context, p *PubSub, topic string, req Req, opts ...Option) (Resp, error) {
	var resp Resp
	data, err := json.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("pubsub: encode request for %q: %w", topic, err)
	}
	m, err := p.Request(ctx, topic, data, opts...)
	if err != nil {
		return resp, err
	}
	err = m.Decode(&resp)
	return resp, err
}

// HandleJSON answers requests on topic with handle, decoding each request
// from JSON into a Req and encoding the answer as JSON (see Handle). A
// request that does not decode is answered with an error.
func HandleJSON[Req, Resp any](p *PubSub, topic string, handle func(ctx context.Context, req Req, m Message) (Resp, error), opts ...Option) (*Subscription, error) {
	if handle == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrConfig)
	}
	return p.Handle(topic, func(ctx context.Context, m Message) ([]byte, error) {
		var req Req
		if err := m.Decode(&req); err != nil {
			return nil, err
		}
		resp, err := handle(ctx, req, m)
		if err != nil {
			return nil, err
		}
		return json.Marshal(resp)
	}, opts...)
}
