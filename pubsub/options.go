package pubsub

// Option adjusts one Subscribe or Publish call.
type Option func(*options)

type options struct {
	reserved bool
	queue    int
	decode   func([]byte) (any, error)
	header   Header
	group    string
}

func applyOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// AllowReserved permits a topic name starting with ReservedPrefix. Reflect's
// own packages use it; applications should not need it.
func AllowReserved() Option { return func(o *options) { o.reserved = true } }

// WithQueueLength sets this subscription's queue length (Subscribe only),
// overriding Config.QueueLength.
func WithQueueLength(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.queue = n
		}
	}
}

// WithValidator makes every message received on the topic from another
// node pass check before it is delivered or relayed (Subscribe only). A
// batch holding a message that fails is rejected as a whole: not delivered
// to any subscription, not forwarded, and counted in Stats.Invalid (its
// author is a member that sent garbage). The last validator or decoder
// given for a topic applies to all its subscriptions. check runs on the
// receiving path of every message: keep it fast and free of blocking calls.
func WithValidator(check func(data []byte) error) Option {
	if check == nil {
		return nil
	}
	return WithDecoder(func(data []byte) (any, error) { return nil, check(data) })
}

// WithDecoder is WithValidator for messages the handlers would decode
// anyway (Subscribe only): decode runs once per message this node
// receives (and per message it delivers to itself with Config.Echo), before
// delivery or relaying; an error refuses the message's batch as
// WithValidator's check does; what it returns reaches every handler of the
// topic as Message.Decoded, so a message is decoded once, not once for
// validation and again in each handler.
func WithDecoder(decode func(data []byte) (any, error)) Option {
	return func(o *options) { o.decode = decode }
}

// WithHeader attaches headers to the message (Publish, Broadcast, Send and
// Request). Receivers find them in Message.Header.
func WithHeader(h Header) Option { return func(o *options) { o.header = h } }

// WithQueueGroup makes a subscription (Subscribe) or a responder (Handle) a
// member of a queue group on its topic: each message published on the
// topic, and each request, reaches one member of the group (chosen by the
// publisher, in turn among the live members of every node, this one
// included), while plain subscriptions get every message. A member gets
// nothing but its group's share.
func WithQueueGroup(name string) Option { return func(o *options) { o.group = name } }
