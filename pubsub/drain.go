package pubsub

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	msmux "github.com/multiformats/go-multistream"
)

// closeFlush bounds how long Close waits for queued messages to be written
// (Flush), closeDrain how long it then waits for the peers to receive them.
const (
	closeFlush = 2 * time.Second
	closeDrain = time.Second
)

// drain makes sure the peers receive what pub/sub has written before it
// stops, waiting until ctx ends at most.
//
// Flush returns once the last messages are written to the multiplexer, but
// a yamux write only queues frames for the session's send loop, and closing
// the host right after drops what is still queued. And a peer whose
// connection closes discards what its streams had received but its pub/sub
// reader had not read yet, unless the stream was closed for writing first:
// then the data stays readable until the end. So drain half-closes our
// pub/sub streams (GossipSub's and the direct ones), then runs one round
// trip of libp2p's ping protocol on every connection: frames of one
// connection leave in order, so when the echo comes back the peer holds
// everything, ending in a clean end of stream.
func (p *PubSub) drain(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range p.host.Network().Conns() {
		for _, s := range c.GetStreams() {
			if s.Stat().Direction == network.DirOutbound && isPubsubProtocol(s.Protocol()) {
				_ = s.CloseWrite()
			}
		}
		wg.Go(func() {
			if err := pingConn(ctx, c); err != nil {
				p.log.Debug("pubsub: no round trip before closing", "peer", c.RemotePeer(), "err", err)
			}
		})
	}
	wg.Wait()
}

// isPubsubProtocol reports whether id is one of pub/sub's stream
// protocols: GossipSub's (and the FloodSub it falls back to) or the direct
// streams'.
func isPubsubProtocol(id protocol.ID) bool {
	return strings.HasPrefix(string(id), "/meshsub/") || strings.HasPrefix(string(id), "/floodsub/") ||
		id == directProtocol
}

var errWrongEcho = errors.New("pubsub: ping: wrong echo")

// pingConn runs one exchange of libp2p's ping protocol on c itself (not on
// whichever connection the host would choose).
func pingConn(ctx context.Context, c network.Conn) (err error) {
	s, err := c.NewStream(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = s.Reset()
		}
	}()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := msmux.SelectProtoOrFail(ping.ID, s); err != nil {
		return err
	}
	if err := s.SetProtocol(ping.ID); err != nil {
		return err
	}
	out := make([]byte, ping.PingSize)
	_, _ = rand.Read(out)
	if _, err := s.Write(out); err != nil {
		return err
	}
	in := make([]byte, ping.PingSize)
	if _, err := io.ReadFull(s, in); err != nil {
		return err
	}
	if !bytes.Equal(in, out) {
		return errWrongEcho
	}
	return s.Close()
}
