package main

import (
	"context"
	"fmt"
	"time"
)

// handle is the pub/sub suite's current cluster and its recorder. A trial
// that leaves a backlog behind (a system that queued far more than it can
// deliver keeps delivering it long after the trial) would poison the next
// one, so when the deliveries do not stop within quiesceMax the cluster is
// closed and a fresh one opened before the next trial.
type handle struct {
	sys      System
	n        int
	env      *Env
	rec      *recorder
	c        PubSubCluster
	reopened int
	// header makes begin hand out the cluster publishing with
	// benchHeader (the headers scenario).
	header bool
}

// open starts a cluster and warms it up; it returns the warm-up delivery %.
func (h *handle) open(ctx context.Context) (float64, error) {
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := h.sys.OpenPubSub(octx, h.n, h.env.Open, h.rec.deliver)
	if err != nil {
		return 0, err
	}
	h.c = c
	return warmup(ctx, c, h.rec, h.env.P), nil
}

// close stops the current cluster.
func (h *handle) close() error {
	if h.c == nil {
		return nil
	}
	err := h.c.Close()
	h.c = nil
	return err
}

// begin starts a trial on a quiet cluster, reopening it if it does not
// quiet down. keepLatency is as for recorder.begin.
func (h *handle) begin(ctx context.Context, keepLatency int) (*trial, PubSubCluster, error) {
	if !h.rec.quiesce(ctx, h.env.P.DrainIdle, quiesceMax) && ctx.Err() == nil {
		h.env.Logf("      still delivering an earlier trial's backlog after %v: reopening the cluster", quiesceMax)
		if err := h.close(); err != nil {
			return nil, nil, fmt.Errorf("close for reopen: %w", err)
		}
		if _, err := h.open(ctx); err != nil {
			return nil, nil, fmt.Errorf("reopen: %w", err)
		}
		h.reopened++
	}
	if h.c == nil {
		return nil, nil, fmt.Errorf("no cluster")
	}
	c := h.c
	if hp, ok := c.(HeaderPublisher); ok && h.header {
		c = headerCluster{c, hp}
	}
	return h.rec.begin(keepLatency), c, ctx.Err()
}
