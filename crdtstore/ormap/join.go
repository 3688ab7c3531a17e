package ormap

import (
	"slices"
	"strings"
)

// Change reports a key whose visible value (Get's result) changed in a Join.
type Change struct {
	Key     string
	Entry   Entry // the new visible entry; zero if Deleted
	Deleted bool  // the key no longer has a value
}

// Join merges d into m: for each key, an entry survives if both sides hold
// it, or one side holds it and the other side's context does not cover its
// dot (the other side has not seen it, so cannot have removed it); the
// contexts are united. The same rule serves deltas, sync replies and full
// states; it is commutative, associative and idempotent, so deltas may
// arrive late, twice or out of order.
//
// Causal readiness: a delta from Set or Delete is applied only once m's
// context holds its deps (the dots it overwrote), so that m never learns of
// an overwrite before what it overwrote — otherwise m could hold an entry
// that a dot in its context removed, and equal contexts would no longer
// mean equal states. Until then the delta waits in m (at most MaxPending of
// them) and is applied by the Join that completes its deps; HasGap reports
// such a delta, so the caller can pull a sync if the wait lasts. Sync
// replies (Diff) are always ready.
//
// Join returns the keys whose visible value changed, sorted by key (once
// per key, with the final value), including changes from held deltas it
// applied. It returns ErrForeignDot, and changes nothing, if d claims dots
// of m's own replica that m never minted. Join does not observe timestamps:
// pass d.MaxTime() to the caller's HLC.
func (m *Map) Join(d Delta) ([]Change, error) {
	if row := d.ctx.row(m.reps[0]); row.max() > m.ctx[0].max() {
		return nil, ErrForeignDot
	}
	if !m.ready(d) {
		if len(m.pending) == MaxPending {
			m.pending[0] = Delta{}
			m.pending = m.pending[1:]
		}
		m.pending = append(m.pending, d)
		return nil, nil
	}
	changes := m.apply(d, nil)
	if len(m.pending) == 0 {
		return changes, nil
	}
	for progress := true; progress; {
		progress = false
		kept := m.pending[:0]
		for _, p := range m.pending {
			if m.ready(p) {
				changes = m.apply(p, changes)
				progress = true
			} else {
				kept = append(kept, p)
			}
		}
		clear(m.pending[len(kept):])
		m.pending = kept
	}
	// One change per key, the last (final) one.
	slices.SortStableFunc(changes, func(a, b Change) int { return strings.Compare(a.Key, b.Key) })
	out := changes[:0]
	for i, c := range changes {
		if i+1 < len(changes) && changes[i+1].Key == c.Key {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// Pending returns how many deltas wait for their deps (see Join).
func (m *Map) Pending() int { return len(m.pending) }

// ready reports whether m's context holds every dependency of d.
func (m *Map) ready(d Delta) bool {
	for _, r := range d.deps.rows {
		i, ok := m.repIdx[r.r]
		if !ok || !subsetIvs(r.iv, m.ctx[i]) {
			return false
		}
	}
	return true
}

// apply joins a ready delta, appending visible changes.
func (m *Map) apply(d Delta, changes []Change) []Change {
	// The delta's context by local replica index (interning what is new).
	for _, r := range d.ctx.rows {
		m.intern(r.r)
	}
	dctx := make([]ivs, len(m.reps))
	overlap := false
	for _, r := range d.ctx.rows {
		i := m.repIdx[r.r]
		dctx[i] = r.iv
		overlap = overlap || overlapIvs(r.iv, m.ctx[i])
	}

	var buf, out [4]entry
	var theirs []entry
	for _, g := range d.groups {
		theirs = theirs[:0]
		for _, e := range g.ents {
			theirs = append(theirs, entry{val: e.val, wall: e.ts.Wall, lg: e.ts.Logical, ctr: e.ctr, rep: m.repIdx[e.rep]})
		}
		it := m.tree.get(g.key)
		var ours []entry
		if it != nil {
			ours = m.entries(it, buf[:0])
		}
		kept := out[:0]
		inTheirs := newDotSet(theirs)
		for _, o := range ours {
			if !dctx[o.rep&^multiBit].contains(o.ctr) || inTheirs.has(o) {
				kept = append(kept, o)
			}
		}
		for _, t := range theirs {
			if !m.ctx[t.rep].contains(t.ctr) { // new to us (so not in ours)
				kept = append(kept, t)
			}
		}
		changes = m.replace(changes, it, g.key, ours, kept)
	}

	if d.global && overlap {
		// Entries of keys the delta does not list, whose dots it covers,
		// were removed by the sender.
		type update struct {
			key  string
			ours []entry
			kept []entry
		}
		var updates []update
		gi := 0
		m.tree.ascend("", func(it *item) bool {
			for gi < len(d.groups) && d.groups[gi].key < it.key {
				gi++
			}
			if gi < len(d.groups) && d.groups[gi].key == it.key {
				return true // joined above
			}
			if it.e.rep&multiBit == 0 {
				if dctx[it.e.rep].contains(it.e.ctr) {
					updates = append(updates, update{key: it.key, ours: []entry{it.e}})
				}
				return true
			}
			ours := m.multi[it.key]
			var kept []entry
			for _, o := range ours {
				if !dctx[o.rep].contains(o.ctr) {
					kept = append(kept, o)
				}
			}
			if len(kept) < len(ours) {
				updates = append(updates, update{it.key, ours, kept})
			}
			return true
		})
		n := len(changes)
		for _, u := range updates {
			changes = m.replace(changes, m.tree.get(u.key), u.key, u.ours, u.kept)
		}
		if n > 0 && len(changes) > n {
			slices.SortStableFunc(changes, func(a, b Change) int { return strings.Compare(a.Key, b.Key) })
		}
	}

	for i, iv := range dctx {
		switch {
		case len(iv) == 0:
		case len(m.ctx[i]) == 0:
			m.ctx[i] = slices.Clone(iv)
		case len(iv) <= 4:
			for _, x := range iv {
				m.ctx[i].add(x.Lo, x.Hi)
			}
		default:
			m.ctx[i] = unionIvs(m.ctx[i], iv)
		}
	}
	return changes
}

// replace makes kept the entries of key (it is its item or nil; ours its
// entries before) and appends a Change if the visible entry changed.
func (m *Map) replace(changes []Change, it *item, key string, ours, kept []entry) []Change {
	if len(kept) == len(ours) && (len(ours) == 0 || sameDots(ours, kept)) {
		return changes
	}
	if len(kept) == 0 {
		m.remove(it)
		return append(changes, Change{Key: key, Deleted: true})
	}
	m.sortEntries(kept)
	if len(ours) > 0 && ours[0].rep&^multiBit == kept[0].rep&^multiBit && ours[0].ctr == kept[0].ctr {
		m.store(it, key, kept) // the winner stays: no visible change
		return changes
	}
	m.store(it, key, kept)
	return append(changes, Change{Key: key, Entry: m.export(kept[0])})
}

// sameDots reports whether kept (a subset of ours plus new entries, of the
// same length) holds exactly the dots of ours.
func sameDots(ours, kept []entry) bool {
	s := newDotSet(ours)
	for _, k := range kept {
		if !s.has(k) {
			return false
		}
	}
	return true
}

// dotSet answers "is this dot among these entries" in O(1) for the rare key
// with many siblings (a hostile frame may carry thousands) and by a linear
// scan for the usual few.
type dotSet struct {
	es []entry
	m  map[dotKey]struct{}
}

type dotKey struct {
	rep uint32
	ctr uint64
}

func newDotSet(es []entry) dotSet {
	if len(es) <= 8 {
		return dotSet{es: es}
	}
	m := make(map[dotKey]struct{}, len(es))
	for _, e := range es {
		m[dotKey{e.rep &^ multiBit, e.ctr}] = struct{}{}
	}
	return dotSet{m: m}
}

func (s dotSet) has(e entry) bool {
	if s.m != nil {
		_, ok := s.m[dotKey{e.rep &^ multiBit, e.ctr}]
		return ok
	}
	for _, x := range s.es {
		if x.rep&^multiBit == e.rep&^multiBit && x.ctr == e.ctr {
			return true
		}
	}
	return false
}

// HasGap reports whether d reveals that m is missing something: a dot of
// d's origin below the highest one d carries that neither m's context nor
// d's holds (a lost delta), or one of d's deps (d must wait, see Join). The
// caller should then pull a sync from a peer, at once or if the gap is
// still there a moment later (GossipSub drops what it could not deliver in
// time, and reorders). HasGap gives the same answer before and after
// Join(d).
func (m *Map) HasGap(d Delta) bool {
	if !m.ready(d) {
		return true
	}
	row := d.ctx.row(d.origin)
	if len(row) == 0 {
		return false
	}
	var ours ivs
	if i, ok := m.repIdx[d.origin]; ok {
		ours = m.ctx[i]
	}
	// Follow the contiguous prefix [1, p] of ours ∪ row.
	var p uint64
	for {
		q := p
		for _, s := range [2]ivs{ours, row} {
			if i := s.search(p + 1); i < len(s) && s[i].Lo <= p+1 {
				q = max(q, s[i].Hi)
			}
		}
		if q == p {
			return p < row.max()
		}
		p = q
	}
}
