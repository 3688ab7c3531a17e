package pubsub

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// randomMesh fills t with a random mesh of n nodes besides t.self, each
// announcing about degree links of random ages (some links one-way, as an
// announcement in flight leaves them), t.self ready to its first few.
func randomMesh(t *topology, rng *rand.Rand, n, degree int, now time.Time) {
	ids := make([]peer.ID, n)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprintf("node-%03d", i))
	}
	for _, q := range ids[:min(n, 4)] {
		t.ready[q] = now
		t.mine[q] = struct{}{}
	}
	for _, u := range ids {
		sends := map[peer.ID]struct{}{}
		since := map[peer.ID]time.Time{}
		for range degree {
			v := ids[rng.IntN(n)]
			if rng.IntN(20) == 0 {
				v = t.self // some announce us
			}
			if v == u {
				continue
			}
			sends[v] = struct{}{}
			switch rng.IntN(4) {
			case 0: // no time recorded: stood from the start
			default:
				since[v] = now.Add(-time.Duration(rng.IntN(5000)) * time.Millisecond)
			}
		}
		if rng.IntN(10) == 0 {
			continue // not announced yet
		}
		t.theirs[u] = sends
		t.since[u] = since
	}
}

// reachSinceRelaxed is reachSinceLocked as it was: relax every link until
// nothing improves. The reference the faster search must agree with.
func reachSinceRelaxed(t *topology) map[peer.ID]time.Time {
	best := make(map[peer.ID]time.Time, len(t.theirs)+len(t.ready))
	for q := range t.ready {
		best[q] = time.Time{}
	}
	for changed := true; changed; {
		changed = false
		for u, bu := range best {
			for v := range t.theirs[u] {
				if v == t.self {
					continue
				}
				s := t.since[u][v]
				if s.Before(bu) {
					s = bu
				}
				if bv, ok := best[v]; !ok || s.Before(bv) {
					best[v] = s
					changed = true
				}
			}
		}
	}
	return best
}

// TestReachSinceAgrees: on random meshes (fixed seeds), reachSinceLocked
// gives every reachable node the time of its best path, as relaxing every
// link until nothing improves does.
func TestReachSinceAgrees(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		topo := newTopology("self")
		randomMesh(topo, rng, 2+rng.IntN(120), 1+rng.IntN(12), now)
		got, want := topo.reachSinceLocked(), reachSinceRelaxed(topo)
		if !maps.EqualFunc(got, want, time.Time.Equal) {
			keys := slices.Sorted(maps.Keys(want))
			for _, k := range keys {
				if !got[k].Equal(want[k]) {
					t.Errorf("seed %d: %s reached since %v, want %v", seed, k, got[k], want[k])
				}
			}
			t.Fatalf("seed %d: %d nodes reached, want %d", seed, len(got), len(want))
		}
	}
}

// BenchmarkReachSince: the members beyond the neighbours are recomputed
// from this after every change of the topology (node's followMesh, at most
// every 50 ms), on every node of a forming mesh: alone, as the relaxation
// it replaced, and within Announced (the routes recomputed too, as a
// change drops them).
func BenchmarkReachSince(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	for _, n := range []int{20, 100, 400} {
		topo := newTopology("self")
		randomMesh(topo, rand.New(rand.NewPCG(1, 2)), n, 10, now)
		for _, c := range []struct {
			name string
			f    func()
		}{
			{"search", func() { topo.reachSinceLocked() }},
			{"relaxed", func() { reachSinceRelaxed(topo) }},
			{"announced", func() { topo.hops = nil; topo.announcedByOthers() }},
		} {
			b.Run(fmt.Sprintf("%s/nodes=%d", c.name, n), func(b *testing.B) {
				for b.Loop() {
					c.f()
				}
			})
		}
	}
}
