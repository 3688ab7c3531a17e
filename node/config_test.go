package node

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	webrtc "github.com/libp2p/go-libp2p/p2p/transport/webrtc"
	webtransport "github.com/libp2p/go-libp2p/p2p/transport/webtransport"

	"github.com/reflectmesh/reflect/pnet"
	"github.com/reflectmesh/reflect/pubsub"
)

func TestConfigValidate(t *testing.T) {
	net, err := pnet.FromKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	good := "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"key only", Config{Key: "k"}, true},
		{"network only", Config{Network: net}, true},
		{"nothing", Config{}, false},
		{"bad listen", Config{Key: "k", ListenAddrs: []string{"tcp/1"}}, false},
		{"bootstrap", Config{Key: "k", BootstrapPeers: []string{good}}, true},
		{"bootstrap without id", Config{Key: "k", BootstrapPeers: []string{"/ip4/127.0.0.1/tcp/4001"}}, true},
		{"bootstrap not dialable", Config{Key: "k", BootstrapPeers: []string{"/ip4/0.0.0.0/tcp/4001"}}, false},
		{"bootstrap not a multiaddr", Config{Key: "k", BootstrapPeers: []string{"192.168.1.10:4001"}}, false},
		{"negative timeout", Config{Key: "k", DialTimeout: -time.Second}, false},
		{"negative handshake timeout", Config{Key: "k", HandshakeTimeout: -time.Second}, false},
		{"min above max", Config{Key: "k", ReconnectMin: time.Minute, ReconnectMax: time.Second}, false},
		{"negative peers", Config{Key: "k", MaxPeers: -1}, false},
		{"bad pubsub", Config{Key: "k", PubSub: pubsub.Config{QueueLength: -1}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if c.ok && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !c.ok && !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
		})
	}
	if err := (Config{}).Validate(); !errors.Is(err, pnet.ErrEmptySecret) {
		t.Fatalf("empty key: %v does not wrap pnet.ErrEmptySecret", err)
	}
}

func TestTransportsThatRefuseAPSK(t *testing.T) {
	for name, opt := range map[string]libp2p.Option{
		"quic":         libp2p.Transport(quic.NewTransport),
		"webtransport": libp2p.Transport(webtransport.New),
		"webrtc":       libp2p.Transport(webrtc.New),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := localConfig(testKey)
			cfg.Libp2pOptions = []libp2p.Option{opt}
			n, err := New(cfg)
			if err == nil {
				closeNode(t, n)
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, ErrTransport) {
				t.Fatalf("got %v, want ErrTransport", err)
			}
		})
	}
}
