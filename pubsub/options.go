package pubsub

// Option adjusts one Subscribe or Publish call.
type Option func(*options)

type options struct {
	reserved bool
	queue    int
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
