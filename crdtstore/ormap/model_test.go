package ormap

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The reference model is as naive as possible: a replica keeps every
// operation it has ever heard of, with the dots that operation overwrote.
// Its visible state is the fold: the Sets that no known operation
// overwrote; its context, every dot mentioned. Replicas exchange sets of
// operations by union; a set that overwrote dots the replica has never
// heard of waits until it has (causal delivery).

type modelOp struct {
	dot     Dot
	key     string
	set     bool
	val     string
	ts      Timestamp
	removes []Dot
}

type modelReplica struct {
	id      ReplicaID
	ops     map[Dot]modelOp
	n       uint64
	pending [][]modelOp
}

func (r *modelReplica) learn(ops []modelOp) {
	for _, op := range ops {
		r.ops[op.dot] = op
	}
}

// known returns every dot r has heard of.
func (r *modelReplica) known() map[Dot]bool {
	k := r.removed()
	for d := range r.ops {
		k[d] = true
	}
	return k
}

// ready reports whether r has heard of every dot that ops overwrote,
// other than the dots of ops themselves.
func (r *modelReplica) ready(ops []modelOp) bool {
	known := r.known()
	for _, op := range ops {
		for _, d := range op.removes {
			if !known[d] && !slices.ContainsFunc(ops, func(o modelOp) bool { return o.dot == d }) {
				return false
			}
		}
	}
	return true
}

// deliver learns ops when ready, or holds them; then retries what it holds.
func (r *modelReplica) deliver(ops []modelOp) {
	if !r.ready(ops) {
		for _, p := range r.pending {
			if sameOps(p, ops) {
				return // already held
			}
		}
		r.pending = append(r.pending, ops)
		return
	}
	r.learn(ops)
	for progress := true; progress; {
		progress = false
		var kept [][]modelOp
		for _, p := range r.pending {
			if r.ready(p) {
				r.learn(p)
				progress = true
			} else {
				kept = append(kept, p)
			}
		}
		r.pending = kept
	}
}

func (r *modelReplica) removed() map[Dot]bool {
	rm := make(map[Dot]bool)
	for _, op := range r.ops {
		for _, d := range op.removes {
			rm[d] = true
		}
	}
	return rm
}

// visible returns the entries of key, in Get's order; rm is r.removed().
func (r *modelReplica) visible(key string, rm map[Dot]bool) []Entry {
	var out []Entry
	for _, op := range r.ops {
		if op.set && op.key == key && !rm[op.dot] {
			out = append(out, Entry{Dot: op.dot, Time: op.ts, Value: []byte(op.val)})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		if c := strings.Compare(string(b.Dot.Replica), string(a.Dot.Replica)); c != 0 {
			return c
		}
		return cmp.Compare(b.Dot.Counter, a.Dot.Counter)
	})
	return out
}

func (r *modelReplica) context() Context {
	var dots []Dot
	for _, op := range r.ops {
		dots = append(dots, op.dot)
		dots = append(dots, op.removes...)
	}
	return contextOf(dots)
}

type modelMsg struct {
	d   Delta
	ops []modelOp
}

func TestModel(t *testing.T) {
	const replicas, keys, steps = 3, 4, 40
	for seed := uint64(1); seed <= uint64(cases(1500)); seed++ {
		rng := rand.New(rand.NewPCG(seed, 77))
		var ms []*Map
		var model []*modelReplica
		for i := range replicas {
			ms = append(ms, New(replicaIDs[i]))
			model = append(model, &modelReplica{id: replicaIDs[i], ops: make(map[Dot]modelOp)})
		}
		var msgs []modelMsg
		for step := range steps {
			i := rng.IntN(replicas)
			m, r := ms[i], model[i]
			switch a := rng.IntN(20); {
			case a < 9 || len(msgs) == 0: // local write
				key := fmt.Sprintf("k%d", rng.IntN(keys))
				var removes []Dot
				for _, e := range r.visible(key, r.removed()) {
					removes = append(removes, e.Dot)
				}
				op := modelOp{key: key, removes: removes}
				var d Delta
				if rng.IntN(3) == 0 {
					var ok bool
					d, ok = m.Delete(key)
					if ok != (len(removes) > 0) {
						t.Fatalf("seed %d step %d: Delete ok=%v, model has %d entries", seed, step, ok, len(removes))
					}
					if !ok {
						continue
					}
				} else {
					op.set = true
					op.val = fmt.Sprintf("%s/%d", r.id, step)
					op.ts = ts(int64(rng.IntN(3)), uint32(rng.IntN(2)))
					d = m.Set(key, []byte(op.val), op.ts)
				}
				r.n++
				op.dot = Dot{r.id, r.n}
				if !d.deps.Equal(contextOf(slices.Clone(removes))) {
					t.Fatalf("seed %d step %d: delta deps %v, model overwrote %v", seed, step, d.deps, removes)
				}
				r.learn([]modelOp{op})
				msgs = append(msgs, modelMsg{d, []modelOp{op}})
			case a < 15: // deliver an old message, maybe a merged batch
				msg := msgs[rng.IntN(len(msgs))]
				if rng.IntN(3) == 0 {
					o := msgs[rng.IntN(len(msgs))]
					msg = modelMsg{msg.d.Merge(o.d), append(slices.Clone(msg.ops), o.ops...)}
					msgs = append(msgs, msg)
				}
				mustJoin(t, m, msg.d)
				r.deliver(msg.ops)
			default: // sync from another replica
				j := rng.IntN(replicas)
				mustJoin(t, m, ms[j].Diff(m.Context()))
				r.deliver(slices.Collect(mapValues(model[j].ops)))
			}
			compareModel(t, seed, step, m, r, keys) // the only replica that changed
		}
		// Full syncs: every held delta must be applied, all equal.
		for range 2 {
			for i := range replicas {
				j := (i + 1) % replicas
				mustJoin(t, ms[j], ms[i].Diff(ms[j].Context()))
				model[j].deliver(slices.Collect(mapValues(model[i].ops)))
			}
		}
		for k := range replicas {
			if ms[k].Pending() != 0 {
				t.Fatalf("seed %d: %d deltas still held after full syncs", seed, ms[k].Pending())
			}
			compareModel(t, seed, steps, ms[k], model[k], keys)
		}
	}
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// compareModel checks m against the model.
func compareModel(t *testing.T, seed uint64, step int, m *Map, r *modelReplica, keys int) {
	t.Helper()
	if m.Pending() != len(r.pending) {
		t.Fatalf("seed %d step %d %s: %d deltas held, model holds %d", seed, step, r.id, m.Pending(), len(r.pending))
	}
	if c := r.context(); !m.Context().Equal(c) {
		t.Fatalf("seed %d step %d %s: context %v, model %v", seed, step, r.id, m.Context(), c)
	}
	n := 0
	rm := r.removed()
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		want, got := r.visible(key, rm), m.GetAll(key)
		if len(want) > 0 {
			n++
		}
		if fmt.Sprint(want) != fmt.Sprint(got) {
			t.Fatalf("seed %d step %d %s: key %s = %v, model %v", seed, step, r.id, key, got, want)
		}
		if e, ok := m.Get(key); ok != (len(want) > 0) || ok && fmt.Sprint(e) != fmt.Sprint(want[0]) {
			t.Fatalf("seed %d step %d %s: Get(%s) = %v, model %v", seed, step, r.id, key, e, want)
		}
	}
	if m.Len() != n {
		t.Fatalf("seed %d step %d %s: Len %d, model %d", seed, step, r.id, m.Len(), n)
	}
}

func sameOps(a, b []modelOp) bool {
	set := func(ops []modelOp) map[Dot]bool {
		m := make(map[Dot]bool)
		for _, op := range ops {
			m[op.dot] = true
		}
		return m
	}
	x, y := set(a), set(b)
	if len(x) != len(y) {
		return false
	}
	for d := range x {
		if !y[d] {
			return false
		}
	}
	return true
}
