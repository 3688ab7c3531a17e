package main

import "context"

// CallSystem is a System with request/reply and queue groups (the calls
// suite, suite_calls.go): Reflect (Handle/Request, WithQueueGroup) and NATS
// (Request/Respond, QueueSubscribe). Redis has neither; raw libp2p neither.
type CallSystem interface {
	System
	// DescribeCalls says in one line what runs for the calls scenarios.
	DescribeCalls() string
	// OpenRequest starts n participants, each with its own connection
	// (Reflect: its own node, connected as opts says; NATS: a client of
	// one server). Participant n−1 answers every request on one subject
	// with the request's own bytes; participant 0 asks. It returns once a
	// request from participant 0 reaches the responder.
	OpenRequest(ctx context.Context, n int, opts OpenOptions) (RequestCluster, error)
	// OpenQueue starts n participants: participant 0 publishes (Publish
	// of the returned cluster), participants 1..n−1 are members of one
	// queue group on its topic and call deliver(i, data) for each message
	// they get. Whether the publisher knows every member yet is for the
	// caller to find out (Reflect has no call that waits for queue-group
	// members; see runQueue's warm-up).
	OpenQueue(ctx context.Context, n int, opts OpenOptions, deliver func(member int, data []byte)) (PubSubCluster, error)
}

// RequestCluster is a running requester and responder.
type RequestCluster interface {
	// Request sends data from participant 0 and returns the reply (valid
	// until the next call). ctx bounds the wait; the implementations
	// pass its deadline to the system as its request timeout.
	Request(ctx context.Context, data []byte) ([]byte, error)
	// Close stops every participant and server, waiting for them.
	Close() error
}

// HeaderPublisher is a PubSubCluster that can publish with headers (the
// headers scenario): Reflect (pubsub.WithHeader) and NATS (nats.Header).
type HeaderPublisher interface {
	// PublishHeader is Publish with benchHeader attached.
	PublishHeader(ctx context.Context, data []byte) error
}

// benchHeader is the small header of the headers scenario: two keys, as a
// trace id and a content type would be (71 bytes of keys and values).
var benchHeader = map[string]string{
	"trace-id":     "4bf92f3577b34da6a3ce929d0e0e4736",
	"content-type": "application/x-bench",
}

// headerCluster publishes every message of a cluster with benchHeader.
type headerCluster struct {
	PubSubCluster
	hp HeaderPublisher
}

func (c headerCluster) Publish(ctx context.Context, data []byte) error {
	return c.hp.PublishHeader(ctx, data)
}
