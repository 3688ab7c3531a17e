package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
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
