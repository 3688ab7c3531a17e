package pubsub

import (
	"encoding/json"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Message is one application message as delivered to a subscriber.
type Message struct {
	// Topic is the topic name as the application gave it (without the
	// per-mesh prefix).
	Topic string
	// From is the node that published the message.
	From peer.ID
	// Data is the message body. It is shared with other subscriptions of
	// the same topic: treat it as read-only.
	Data []byte
	// Header holds the headers the publisher gave (WithHeader); nil for
	// none. Shared like Data.
	Header Header
	// Decoded is what the topic's WithDecoder function made of Data (nil
	// without one). It is shared like Data.
	Decoded any

	call *inCall // the request a responder answers (request.go)
}

// Decode unmarshals the JSON body into v.
func (m Message) Decode(v any) error {
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("%w: topic %q from %s: %w", ErrMalformed, m.Topic, m.From, err)
	}
	return nil
}
