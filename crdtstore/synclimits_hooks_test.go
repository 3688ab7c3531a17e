package crdtstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// The checks of the sync limits' tests that need the limits' own counts
// and hooks (kept apart so that the attacks themselves also run against a
// store without them).

func resetPeak(s *crdtstore.Store) { crdtstore.ResetSyncBufferedPeak(s) }

// checkSyncBuffered checks that s's sync buffers held at most bound bytes
// and hold none now that the attack is over; it returns the most held.
func checkSyncBuffered(t *testing.T, s *crdtstore.Store, bound int64) int64 {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "every sync buffer released", func() bool {
		now, _ := crdtstore.SyncBuffered(s)
		return now == 0
	})
	_, peak := crdtstore.SyncBuffered(s)
	if peak > bound {
		t.Fatalf("sync readers held %d MB at once, over the bound of %d MB", peak>>20, bound>>20)
	}
	return peak
}

// checkRefusedAndLogged checks that frames were refused for their length,
// counted, and logged naming the peer.
func checkRefusedAndLogged(t *testing.T, s *crdtstore.Store, logs *logSink, p testNode, _ string) {
	t.Helper()
	if st := s.Stats(); st.SyncFramesTooLarge == 0 {
		t.Fatalf("no frame counted as too large: %+v", st)
	}
	if !refusedLogged(logs, p) {
		t.Fatalf("no Warn naming the attacker %s:\n%s", p.n.ID(), logs.String())
	}
}

// checkFlood checks that a flood of requests was refused by the peer's rate
// or budget, counted, and logged naming the peer.
func checkFlood(t *testing.T, s *crdtstore.Store, logs *logSink, p testNode) {
	t.Helper()
	st := s.Stats()
	t.Logf("victim: %d rate-limited, %d over budget, %d streams reset, %d served", st.SyncRateLimited, st.SyncBudgetLimited, st.SyncStreamsReset, st.SyncServed)
	if st.SyncBudgetLimited+st.SyncRateLimited == 0 {
		t.Fatalf("no request refused: %+v", st)
	}
	if !refusedLogged(logs, p) {
		t.Fatalf("no Warn naming the attacker %s:\n%s", p.n.ID(), logs.String())
	}
}

// limitsSummary describes what the limits of s refused.
func limitsSummary(s *crdtstore.Store) string {
	st := s.Stats()
	return fmt.Sprintf("%d streams reset, %d frames refused, %d waits for a slot", st.SyncStreamsReset, st.SyncFramesTooLarge, st.SyncReadWaits)
}
