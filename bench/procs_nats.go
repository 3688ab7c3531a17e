package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// natsMember is one NATS client connection in a process of its own, with
// nats.go defaults (natsSystem), verifying the server's certificate
// against ca when it is set (nats-tls).
type natsMember struct {
	baseMember
	nc         *nats.Conn
	sub        *nats.Subscription
	slow, disc atomic.Uint64
}

func newNATSMember(url, ca string) (*natsMember, error) {
	m := &natsMember{}
	opts := []nats.Option{
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				m.slow.Add(1)
			}
		}),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { m.disc.Add(1) }),
	}
	if ca != "" {
		opts = append(opts, nats.RootCAs(ca))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	m.nc = nc
	return m, nil
}

func (m *natsMember) Subscribe(ctx context.Context, deliver func([]byte)) error {
	s, err := m.nc.Subscribe(topicName, func(msg *nats.Msg) { deliver(msg.Data) })
	if err != nil {
		return err
	}
	m.sub = s
	// The server has the subscription once it answered a PING sent after it.
	return m.nc.FlushWithContext(ctx)
}

func (m *natsMember) Publish(_ context.Context, data []byte) error {
	return m.nc.Publish(topicName, data)
}

func (m *natsMember) Drops() Drops {
	var dropped uint64
	if m.sub != nil {
		if d, err := m.sub.Dropped(); err == nil {
			dropped = uint64(d)
		}
	}
	return newDrops("Subscription.Dropped", dropped, "ErrSlowConsumer", m.slow.Load(), "disconnects", m.disc.Load())
}

func (m *natsMember) Close() error {
	m.nc.Close()
	return nil
}

// natsServerMember is nats-server in a process of its own (the same
// library natsSystem embeds, defaults, 127.0.0.1, a random port), with TLS
// when given a certificate. It answers addr (its client URL), drops (its
// slow consumers) and quit.
type natsServerMember struct {
	baseMember
	srv *server.Server
}

// runNATSServer runs the nats-server subcommand: `bench nats-server
// [-cert F -key F]`.
func runNATSServer(args []string, stdin io.Reader, stdout *os.File, stderr io.Writer) int {
	fs := flag.NewFlagSet(natsServerCmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cert := fs.String("cert", "", "PEM certificate: serve TLS only, with this certificate")
	key := fs.String("key", "", "PEM private key of -cert")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true}
	if *cert != "" {
		kp, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			fmt.Fprintln(stderr, "nats-server:", err)
			return 1
		}
		opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
		opts.TLSTimeout = 5
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(stderr, "nats-server:", err)
		return 1
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(stderr, "nats-server: did not start")
		srv.Shutdown()
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Stdout = os.Stderr
	if err := serve(ctx, stdin, stdout, &natsServerMember{srv: srv}); err != nil {
		fmt.Fprintln(stderr, "nats-server:", err)
		return 1
	}
	return 0
}

func (m *natsServerMember) Addr() (string, error) {
	u := m.srv.ClientURL()
	if m.srv.ClientURL() == "" {
		return "", errors.New("no client URL")
	}
	return u, nil
}

func (m *natsServerMember) Drops() Drops {
	var slow uint64
	if v, err := m.srv.Varz(nil); err == nil {
		slow = uint64(v.SlowConsumers)
	}
	return newDrops("server slow consumers", slow)
}

func (m *natsServerMember) Close() error {
	m.srv.Shutdown()
	m.srv.WaitForShutdown()
	return nil
}

// tlsFiles are a CA and a server certificate it signed for 127.0.0.1, as
// PEM files in dir (nats-tls).
type tlsFiles struct {
	dir, CA, Cert, Key string
}

// makeTLS generates a self-signed CA (ECDSA P-256) and a server
// certificate for 127.0.0.1 signed by it, valid for a day, in a new
// temporary directory.
func makeTLS() (*tlsFiles, error) {
	dir, err := os.MkdirTemp("", "bench-tls-")
	if err != nil {
		return nil, err
	}
	f := &tlsFiles{dir: dir, CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem")}
	if err := f.generate(); err != nil {
		f.remove()
		return nil, fmt.Errorf("TLS certificates: %w", err)
	}
	return f, nil
}

func (f *tlsFiles) generate() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	start := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "reflect bench CA"},
		NotBefore:             start,
		NotAfter:              start.Add(25 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    start,
		NotAfter:     start.Add(25 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return errors.Join(
		writePEM(f.CA, "CERTIFICATE", caDER),
		writePEM(f.Cert, "CERTIFICATE", der),
		writePEM(f.Key, "EC PRIVATE KEY", keyDER))
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func (f *tlsFiles) remove() { _ = os.RemoveAll(f.dir) }
