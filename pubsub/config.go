package pubsub

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/reflectmesh/reflect/internal/warnlog"
)

// Defaults used for zero Config fields.
const (
	// DefaultMaxMessageSize bounds one application message (1 MiB).
	DefaultMaxMessageSize = 1 << 20
	// DefaultQueueLength and DefaultQueueBytes bound what each subscription
	// holds while its handler is busy (the queue grows only then). Beyond
	// either bound, new messages for that subscription are dropped and
	// counted.
	DefaultQueueLength = 1 << 16
	DefaultQueueBytes  = 32 << 20
	// DefaultMaxBatchBytes bounds how many bytes of small messages are packed
	// into one batch under load.
	DefaultMaxBatchBytes = 128 << 10
	// DefaultPublishQueue and DefaultPublishQueueBytes bound what a topic
	// buffers between Publish and the network before Publish blocks
	// (backpressure).
	DefaultPublishQueue      = 4096
	DefaultPublishQueueBytes = 8 << 20
	// DefaultWindow is how many batches of one topic may be queued towards
	// one peer before the topic's publisher waits for them to be written
	// (flow control, flow.go).
	DefaultWindow = 8
	// DefaultWindowWait bounds how long a publisher waits for a slow peer's
	// queue to drain before sending anyway.
	DefaultWindowWait = 2 * time.Second
	// DefaultStallTimeout is how long a peer's window may stay full (it
	// reads none of what is queued towards it) before the peer is
	// disconnected (stall.go).
	DefaultStallTimeout = 15 * time.Second
)

// ReservedPrefix starts topic names that Reflect uses internally (the store).
const ReservedPrefix = "_reflect/"

// maxTopicLen bounds a topic name in bytes.
const maxTopicLen = 512

// Config configures a PubSub. The zero value is usable: every zero field
// takes the default documented on it.
type Config struct {
	// TopicPrefix is prepended to every topic name on the wire, so meshes
	// with different secrets never share GossipSub topics. The node sets it
	// from the secret (pnet.Network.TopicPrefix). Default: none.
	TopicPrefix string

	// MaxMessageSize bounds one application message in bytes. Publish of a
	// larger message fails with ErrTooLarge; a received larger message is
	// rejected. Default DefaultMaxMessageSize.
	MaxMessageSize int

	// Echo makes a node's own broadcasts reach its own subscribers. Default
	// false: a broadcast goes to every other node, as in the original
	// library ("sends that message to all the other apps").
	Echo bool

	// QueueLength and QueueBytes bound each subscription's queue, in
	// messages and in bytes. Defaults DefaultQueueLength, DefaultQueueBytes.
	QueueLength, QueueBytes int

	// MaxBatchBytes bounds the bytes of small messages packed into one
	// batch. Default DefaultMaxBatchBytes.
	MaxBatchBytes int

	// PublishQueue and PublishQueueBytes bound the per-topic queue between
	// Publish and the network, in messages and in bytes. Defaults
	// DefaultPublishQueue, DefaultPublishQueueBytes.
	PublishQueue, PublishQueueBytes int

	// Window is the flow-control window in batches, per peer and topic.
	// Default DefaultWindow. Negative disables flow control.
	Window int

	// WindowWait bounds one wait for the window. Default DefaultWindowWait.
	// A peer whose window has been full that long is not waited for again
	// until it reads (flow.go).
	WindowWait time.Duration

	// StallTimeout disconnects a peer whose window for some topic stays
	// full this long: it has read nothing of that topic meanwhile (a
	// process that stopped reading, or a hostile member). Counted in
	// Stats.StalledPeers. Default DefaultStallTimeout; negative: never.
	StallTimeout time.Duration

	// Sign sends every broadcast batch through GossipSub, never on the
	// direct streams.
	//
	// Deprecated: authorship no longer needs it. Every message that goes
	// through GossipSub is signed and verified, and direct streams
	// authenticate their peer (package documentation, Authorship); Sign
	// only makes broadcasts slower.
	Sign bool

	// Logger receives debug and warning logs. Default: warnings and errors
	// go to slog.Default(), debug and info records are dropped. A node sets
	// it to the node's logger.
	Logger *slog.Logger
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.QueueLength == 0 {
		c.QueueLength = DefaultQueueLength
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.PublishQueueBytes == 0 {
		c.PublishQueueBytes = DefaultPublishQueueBytes
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.PublishQueue == 0 {
		c.PublishQueue = DefaultPublishQueue
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.WindowWait == 0 {
		c.WindowWait = DefaultWindowWait
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.Logger == nil {
		c.Logger = warnlog.New()
	}
	return c
}

// Validate reports the first invalid field, wrapping ErrConfig.
func (c Config) Validate() error {
	switch {
	case c.MaxMessageSize < 0 || c.MaxMessageSize > 64<<20:
		return fmt.Errorf("%w: MaxMessageSize %d out of range [0, 64 MiB]", ErrConfig, c.MaxMessageSize)
	case c.QueueLength < 0 || c.QueueBytes < 0:
		return fmt.Errorf("%w: QueueLength %d or QueueBytes %d is negative", ErrConfig, c.QueueLength, c.QueueBytes)
	case c.PublishQueueBytes < 0:
		return fmt.Errorf("%w: PublishQueueBytes %d is negative", ErrConfig, c.PublishQueueBytes)
	case c.MaxBatchBytes < 0 || c.MaxBatchBytes > 16<<20:
		return fmt.Errorf("%w: MaxBatchBytes %d out of range [0, 16 MiB]", ErrConfig, c.MaxBatchBytes)
	case c.PublishQueue < 0:
		return fmt.Errorf("%w: PublishQueue %d is negative", ErrConfig, c.PublishQueue)
	case c.WindowWait < 0:
		return fmt.Errorf("%w: WindowWait %v is negative", ErrConfig, c.WindowWait)
	case len(c.TopicPrefix) > maxTopicLen:
		return fmt.Errorf("%w: TopicPrefix longer than %d bytes", ErrConfig, maxTopicLen)
	}
	return nil
}
