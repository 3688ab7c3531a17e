package pubsub

// Option adjusts one Subscribe or Publish call.
type Option func(*options)

type options struct {
	reserved bool
	queue    int
	validate func([]byte) error
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
// author is a member that sent garbage). The last validator given for a
// topic applies to all its subscriptions. check runs on GossipSub's
// validation path: keep it fast and free of blocking calls.
func WithValidator(check func(data []byte) error) Option {
	return func(o *options) { o.validate = check }
}
