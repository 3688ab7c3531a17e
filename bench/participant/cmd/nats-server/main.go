// Command nats-server is the NATS server of the bench's -procs mode: the
// nats-server library the bench embeds in its in-process mode, defaults,
// 127.0.0.1 and a random port, with TLS only when given -cert and
// -cert-key, with JetStream (StoreDir in a temporary directory) with -kv.
// It answers the bench's addr (its client URL), drops (its slow
// consumers) and quit over stdin and stdout (package participant).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/reflectmesh/reflect/bench/participant"
)

func main() { os.Exit(participant.Main("nats-server", open)) }

type member struct {
	participant.Base
	srv *server.Server
	dir string // JetStream's StoreDir, or ""
}

func open(_ context.Context, f participant.Flags) (participant.Member, error) {
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true}
	if f.Cert != "" {
		kp, err := tls.LoadX509KeyPair(f.Cert, f.CertKey)
		if err != nil {
			return nil, err
		}
		opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
		opts.TLSTimeout = 5
	}
	var dir string
	if f.KV {
		var err error
		if dir, err = os.MkdirTemp("", "bench-jetstream-"); err != nil {
			return nil, err
		}
		opts.JetStream, opts.StoreDir = true, dir
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, errors.New("did not start")
	}
	return &member{srv: srv, dir: dir}, nil
}

func (m *member) Addr() (string, error) { return m.srv.ClientURL(), nil }

func (m *member) Drops() map[string]uint64 {
	var slow uint64
	if v, err := m.srv.Varz(nil); err == nil {
		slow = uint64(v.SlowConsumers)
	}
	return map[string]uint64{"server slow consumers": slow}
}

func (m *member) Close() error {
	m.srv.Shutdown()
	m.srv.WaitForShutdown()
	if m.dir != "" {
		return os.RemoveAll(m.dir)
	}
	return nil
}
