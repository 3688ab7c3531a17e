package participant

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/reflectmesh/reflect/internal/netns"
)

// Flags are what every participant binary is started with.
type Flags struct {
	// Pub is the publisher's role (-role pub); otherwise a subscriber.
	Pub bool
	// URL is the server (NATS: nats:// URL; Redis: host:port).
	URL string
	// CA is the PEM file of the CA that signed the server's certificate
	// (NATS with TLS).
	CA string
	// Key is Reflect's network secret.
	Key string
	// Cert and CertKey are a server's certificate and key (nats-server
	// with TLS).
	Cert, CertKey string
	// KV makes the participant one of a store (KV), and nats-server run
	// JetStream.
	KV bool
}

// ErrFlags is a participant started with flags it cannot use.
var ErrFlags = errors.New("participant flags")

// ErrNotIsolated is returned outside a loopback-only network namespace.
var ErrNotIsolated = errors.New("participant: refusing to run outside a network namespace with only loopback (run it from the bench)")

// Main parses the flags, opens the member and serves the bench on stdin
// and stdout; it returns the exit code. Anything the member's libraries
// print to os.Stdout goes to stderr instead, so that stdout carries only
// replies.
func Main(name string, open func(ctx context.Context, f Flags) (Member, error)) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var f Flags
	role := fs.String("role", "sub", "pub or sub")
	fs.StringVar(&f.URL, "url", "", "the server: nats:// URL (NATS), host:port (Redis)")
	fs.StringVar(&f.CA, "ca", "", "PEM file of the CA that signed the server's certificate (NATS with TLS)")
	fs.StringVar(&f.Key, "key", "", "the network's secret (Reflect)")
	fs.StringVar(&f.Cert, "cert", "", "PEM certificate to serve TLS with (nats-server)")
	fs.StringVar(&f.CertKey, "cert-key", "", "PEM private key of -cert (nats-server)")
	fs.BoolVar(&f.KV, "kv", false, "a participant of the store (nats-server: with JetStream)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	f.Pub = *role == "pub"
	if !netns.OnlyLoopback() {
		fmt.Fprintln(os.Stderr, ErrNotIsolated)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := open(ctx, f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	upNS = Now()
	out := os.Stdout
	os.Stdout = os.Stderr
	if err := Serve(ctx, os.Stdin, out, m); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
