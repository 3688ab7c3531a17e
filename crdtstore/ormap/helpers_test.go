package ormap

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// cases scales a random-case count down under -race.
func cases(n int) int {
	if raceEnabled {
		return max(n/10, 1)
	}
	return n
}

func ts(wall int64, logical uint32) Timestamp { return Timestamp{wall, logical} }

func mustJoin(t testing.TB, m *Map, d Delta) []Change {
	t.Helper()
	ch, err := m.Join(d)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if err := m.verify(); err != nil {
		t.Fatalf("after Join: %v", err)
	}
	return ch
}

// clone deep-copies m's state (same replica id), without the deltas it
// holds.
func clone(m *Map) *Map {
	c := New(m.reps[0])
	for _, r := range m.reps[1:] {
		c.intern(r)
	}
	for i, iv := range m.ctx {
		c.ctx[i] = slices.Clone(iv)
	}
	c.nIv, c.bounds, c.bytes = m.nIv, m.bounds, m.bytes // not the held deltas
	m.tree.ascend("", func(key string, e *entry) bool {
		c.tree.insert(item{key, *e})
		return true
	})
	for k, v := range m.multi {
		c.multi[k] = slices.Clone(v)
	}
	for _, it := range m.ttl.heap {
		c.ttl.add(it.key, it.dot, it.exp)
	}
	return c
}

// snapshot is m's full state as a delta.
func snapshot(m *Map) Delta { return m.Diff(Context{}) }

// joinAll returns a fresh observer map joined with the full states of ms.
func joinAll(t testing.TB, ms ...*Map) *Map {
	t.Helper()
	o := New("~observer")
	for _, m := range ms {
		mustJoin(t, o, snapshot(m))
	}
	return o
}

func requireSame(t testing.TB, seed uint64, what string, a, b *Map) {
	t.Helper()
	if err := sameState(a, b); err != nil {
		t.Fatalf("seed %d: %s: %v", seed, what, err)
	}
}

func deltaEqual(a, b Delta) bool { return bytes.Equal(EncodeDelta(a), EncodeDelta(b)) }

// world is a random reachable configuration: replicas that made random
// writes and exchanged a random subset of their deltas, in random order.
type world struct {
	rng    *rand.Rand
	ms     []*Map
	deltas []Delta // every delta made, in order
	keys   int
}

// replicaIDs is small and oddly ordered on purpose: "b" > "ab" > "a".
var replicaIDs = []ReplicaID{"b", "ab", "a", "c\x00", "zz"}

func newWorld(seed uint64, replicas, keys int) *world {
	w := &world{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), keys: keys}
	for i := 0; i < replicas; i++ {
		w.ms = append(w.ms, New(replicaIDs[i]))
	}
	return w
}

// op makes replica i write: Set (70 %, a fifth of them with a TTL) or
// Delete, with a timestamp from a tiny range so that ties are common. It returns the delta (zero if the
// Delete was a no-op).
func (w *world) op(i int) Delta {
	m := w.ms[i]
	key := fmt.Sprintf("k%d", w.rng.IntN(w.keys))
	if w.rng.IntN(10) < 3 {
		d, ok := m.Delete(key)
		if ok {
			w.deltas = append(w.deltas, d)
		}
		return d
	}
	val := fmt.Sprintf("%s.%d", m.Replica(), w.rng.IntN(1000))
	var ttl int64 // one Set in five expires, at 1 to 9
	if w.rng.IntN(5) == 0 {
		ttl = 1 + int64(w.rng.IntN(6))
	}
	d := m.SetTTL(key, []byte(val), ts(int64(w.rng.IntN(4)), uint32(w.rng.IntN(2))), ttl)
	w.deltas = append(w.deltas, d)
	return d
}

// step does one random thing: a write, a delivery of some earlier delta
// (late, duplicated, out of order), or a full sync between two replicas.
func (w *world) step(t testing.TB) {
	i := w.rng.IntN(len(w.ms))
	switch r := w.rng.IntN(20); {
	case r < 11 || len(w.deltas) == 0:
		w.op(i)
	case r < 19:
		mustJoin(t, w.ms[i], w.deltas[w.rng.IntN(len(w.deltas))])
	default:
		j := w.rng.IntN(len(w.ms))
		if i != j {
			mustJoin(t, w.ms[i], w.ms[j].Diff(w.ms[i].Context()))
		}
	}
}

func (w *world) run(t testing.TB, steps int) *world {
	for range steps {
		w.step(t)
	}
	return w
}

// withoutTTL returns d with no expiry on any entry: what a broken receiver
// would join (TestSimulationCatchesLostTTL).
func (d Delta) withoutTTL() Delta {
	out := d
	out.groups = make([]group, len(d.groups))
	for i, g := range d.groups {
		out.groups[i] = group{key: g.key, ents: slices.Clone(g.ents)}
		for k := range out.groups[i].ents {
			out.groups[i].ents[k].exp = 0
		}
	}
	return out
}
