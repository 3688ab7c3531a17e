package pubsub

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
)

// flushTopic is a topic every node joins for Flush's barrier messages,
// which are published locally only and never leave the node.
const flushTopic = ReservedPrefix + "flush"

// Flush waits until every message published so far has been handed to
// GossipSub or the direct streams, routed, and written to the connections
// of the peers it was routed to, or until ctx ends. Close calls it (for at
// most closeFlush) so that a program that publishes and exits does not
// lose its last messages.
func (p *PubSub) Flush(ctx context.Context) error {
	// One Flush at a time (they share the barrier's subscription); waiting
	// for another respects ctx, so a Flush stuck on a peer that reads
	// nothing cannot hold Close up for longer than Close's own bound.
	select {
	case p.flushing <- struct{}{}:
		defer func() { <-p.flushing }()
	case <-ctx.Done():
		return fmt.Errorf("pubsub: flush: %w", ctx.Err())
	case <-p.ctx.Done():
		return ErrClosed
	}
	// 1. Every publisher has handed its batches to GossipSub's queue or
	// to the direct streams' queues.
	if err := p.queued.waitZero(ctx, p.ctx.Done()); err != nil {
		return err
	}
	// 2. GossipSub's event loop has routed them: it takes messages from
	// that queue in order, so once a local-only barrier message published
	// now comes out, everything before it has been routed to peers.
	if err := p.barrier(ctx); err != nil {
		return err
	}
	// 3. The routed batches have been written to the connections (flow
	// control counts what is queued both ways).
	for {
		empty, emptied := p.flows.empty()
		if empty {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pubsub: flush: %w", ctx.Err())
		case <-p.ctx.Done():
			return ErrClosed
		case <-emptied:
		}
	}
}

func (p *PubSub) joinFlushTopic() error {
	t, err := p.gs.Join(p.cfg.TopicPrefix + flushTopic)
	if err != nil {
		return fmt.Errorf("pubsub: join %s: %w", flushTopic, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		return fmt.Errorf("pubsub: subscribe %s: %w", flushTopic, err)
	}
	p.flush, p.flushSub = t, sub
	p.flushSeq.Store(uint64(time.Now().UnixNano()))
	return nil
}

// barrier publishes a local-only message and waits until it is delivered.
func (p *PubSub) barrier(ctx context.Context) error {
	seq := p.flushSeq.Add(1)
	if err := p.flush.Publish(ctx, encodeBatch([]byte(p.host.ID()), seq, nil), lp2pps.WithLocalPublication(true)); err != nil {
		return fmt.Errorf("pubsub: flush: %w", err)
	}
	for {
		m, err := p.flushSub.Next(ctx)
		if err != nil {
			return fmt.Errorf("pubsub: flush: %w", err)
		}
		var b batch
		if _, err := batchHeader(m.GetData(), &b); err == nil && b.seq == seq {
			return nil
		}
	}
}

// gauge is a count that can be waited on until it is zero. Adding is an
// atomic operation; the lock is taken only when the count reaches zero
// while someone waits.
type gauge struct {
	n       atomic.Int64
	waiters atomic.Int32
	mu      sync.Mutex
	zeroed  chan struct{} // closed and replaced when n reaches 0 with waiters
}

func (g *gauge) init() { g.zeroed = make(chan struct{}) }

func (g *gauge) add(d int64) {
	if g.n.Add(d) == 0 && g.waiters.Load() > 0 {
		g.mu.Lock()
		close(g.zeroed)
		g.zeroed = make(chan struct{})
		g.mu.Unlock()
	}
}

// waitZero waits until the count is zero, ctx ends or stop is closed.
func (g *gauge) waitZero(ctx context.Context, stop <-chan struct{}) error {
	g.waiters.Add(1)
	defer g.waiters.Add(-1)
	for {
		// Take the channel before reading the count: an add that reaches
		// zero after the read closes this channel or a later one (and a
		// later one exists only once this one is closed).
		g.mu.Lock()
		zeroed := g.zeroed
		g.mu.Unlock()
		if g.n.Load() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pubsub: flush: %w", ctx.Err())
		case <-stop:
			return ErrClosed
		case <-zeroed:
		}
	}
}
