package crdtstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	msmux "github.com/multiformats/go-multistream"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/internal/testutil"
	"github.com/reflectmesh/reflect/node"
)

// A store of this release and one of a release before SyncV2 (which
// speaks only SyncV1) sync with each other both ways, over the protocol
// version they share, and converge; a SyncV2 stream to the old one is
// not supported.
func TestSyncWithAnOlderRelease(t *testing.T) {
	old := startNode(t, node.Config{})
	oldStore, err := crdtstore.OpenV1(old.n, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, oldStore) })
	old.s = oldStore
	cur := startStoreNode(t)
	fill(t, old.s, "old", 300)
	fill(t, cur.s, "new", 300)
	connect(t, cur, old)
	testutil.Eventually(t, 20*time.Second, "the two to converge", func() bool {
		return converged([]*crdtstore.Store{old.s, cur.s})
	})
	if n := cur.s.Len(); n != 2*(300-30) {
		t.Fatalf("%d keys, want %d", n, 2*(300-30))
	}
	for _, x := range []testNode{old, cur} {
		if st := x.s.Stats(); st.SyncFailures != 0 {
			t.Fatalf("%d sync failures", st.SyncFailures)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = cur.n.Host().NewStream(ctx, old.n.ID(), crdtstore.SyncProtocol(cur.s))
	if !errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) {
		t.Fatalf("a SyncV2 stream to the old release: %v, want not supported", err)
	}
	// Each starts a sync with the other: both directions of the
	// negotiation.
	for _, pair := range [][2]testNode{{old, cur}, {cur, old}} {
		if err := crdtstore.SyncNow(pair[0].s, string(pair[1].n.ID())); err != nil && !errors.Is(err, crdtstore.ErrSyncRunning) {
			t.Fatalf("sync: %v", err)
		}
	}
}

// Over libp2p, a join far larger than a sync frame goes in chunks.
func TestLoopbackJoinInChunks(t *testing.T) {
	a := startStoreNodeWith(t, node.Config{}, smallFrames())
	fill(t, a.s, "k", 3000)
	c := startStoreNodeWith(t, node.Config{}, smallFrames())
	connect(t, c, a)
	waitSynced(t, c.s)
	if !converged([]*crdtstore.Store{a.s, c.s}) {
		t.Fatalf("c has %d keys, a %d", c.s.Len(), a.s.Len())
	}
	// The join's bytes, counted over every sync: a second sync of the
	// pair (each side may start one: peerUp) may end after the join and
	// leave LastSyncBytes at a round trip's 30 bytes (seen under -race).
	st := c.s.PeerSyncStatus()
	in := c.s.Stats().SyncBytesIn
	if len(st) != 1 || in < uint64(crdtstore.SnapshotBytes(a.s)) || st[0].LastSyncError != "" {
		t.Fatalf("c read %d bytes syncing; its sync status: %+v (snapshot %d bytes)", in, st, crdtstore.SnapshotBytes(a.s))
	}
}
