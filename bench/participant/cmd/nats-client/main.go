// Command nats-client is one NATS client connection of the bench's -procs
// mode, with nats.go defaults (as the bench's in-process nats system),
// verifying the server's certificate against -ca when it is given
// (nats-tls), driven by the bench over stdin and stdout (package
// participant).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/reflectmesh/reflect/bench/participant"
)

func main() { os.Exit(participant.Main("nats-client", open)) }

type member struct {
	participant.Base
	nc         *nats.Conn
	sub        *nats.Subscription
	slow, disc atomic.Uint64
}

func open(_ context.Context, f participant.Flags) (participant.Member, error) {
	if f.URL == "" {
		return nil, fmt.Errorf("%w: nats-client needs -url", participant.ErrFlags)
	}
	m := &member{}
	opts := []nats.Option{
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				m.slow.Add(1)
			}
		}),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { m.disc.Add(1) }),
	}
	if f.CA != "" {
		opts = append(opts, nats.RootCAs(f.CA))
	}
	nc, err := nats.Connect(f.URL, opts...)
	if err != nil {
		return nil, err
	}
	m.nc = nc
	return m, nil
}

func (m *member) Subscribe(ctx context.Context, deliver func([]byte)) error {
	s, err := m.nc.Subscribe(participant.Topic, func(msg *nats.Msg) { deliver(msg.Data) })
	if err != nil {
		return err
	}
	m.sub = s
	// The server has the subscription once it answered a PING sent after it.
	return m.nc.FlushWithContext(ctx)
}

func (m *member) Publish(_ context.Context, data []byte) error {
	return m.nc.Publish(participant.Topic, data)
}

func (m *member) Drops() map[string]uint64 {
	var dropped uint64
	if m.sub != nil {
		if d, err := m.sub.Dropped(); err == nil {
			dropped = uint64(d)
		}
	}
	return map[string]uint64{"Subscription.Dropped": dropped, "ErrSlowConsumer": m.slow.Load(), "disconnects": m.disc.Load()}
}

func (m *member) Close() error {
	m.nc.Close()
	return nil
}
