package pubsub

import "errors"

// Errors returned by this package. Match them with errors.Is; the returned
// errors wrap them with details.
var (
	// ErrClosed is returned by every method once the PubSub is closed.
	ErrClosed = errors.New("pubsub: closed")
	// ErrTooLarge is returned by Publish and Broadcast for a message larger
	// than Config.MaxMessageSize. Nothing is sent.
	ErrTooLarge = errors.New("pubsub: message too large")
	// ErrTopic is returned for an empty, overlong or non-UTF-8 topic name.
	ErrTopic = errors.New("pubsub: invalid topic name")
	// ErrReservedTopic is returned for topic names that start with
	// ReservedPrefix unless the call passes AllowReserved.
	ErrReservedTopic = errors.New("pubsub: reserved topic name")
	// ErrMalformed reports network bytes that do not decode.
	ErrMalformed = errors.New("pubsub: malformed message")
	// ErrVersion reports a message encoded by an unknown protocol version.
	ErrVersion = errors.New("pubsub: unsupported message version")
	// ErrConfig reports an invalid Config field.
	ErrConfig = errors.New("pubsub: invalid config")
	// ErrHeader is returned for headers with an empty or non-UTF-8 key, a
	// non-UTF-8 value, or more than MaxHeaderBytes in all. Nothing is sent.
	ErrHeader = errors.New("pubsub: invalid header")
	// ErrNoRoute is returned by Send (and counted for queue groups and
	// requests) when the peer is neither connected nor reachable through
	// announced links, its stream cannot be opened, or its stream's queue
	// is full (the peer has not read for a while).
	ErrNoRoute = errors.New("pubsub: peer not reachable")
	// ErrNoSubscriber is returned by Send when the peer does not
	// subscribe to the topic (as far as this node knows).
	ErrNoSubscriber = errors.New("pubsub: peer does not subscribe to the topic")
	// ErrNoResponders is returned by Request and RequestAll at once when no
	// node answers requests on the topic, and when every node asked
	// turned out to have no responder (any more).
	ErrNoResponders = errors.New("pubsub: no responders")
	// ErrRemote wraps the error text a responder returned; Request
	// returns it as the reply.
	ErrRemote = errors.New("pubsub: responder failed")
	// ErrBusy reports a responder whose queue was full: the request was
	// not handled there.
	ErrBusy = errors.New("pubsub: responder busy")
)
