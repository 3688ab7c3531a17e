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
)
