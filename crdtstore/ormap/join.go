package ormap

import (
	"math"
	"slices"
	"strings"
)

// Change reports a key whose visible value (Get's result) changed in a Join
// or an Expire.
type Change struct {
	Key     string
	Entry   Entry // the new visible entry; zero if Deleted
	Deleted bool  // the key no longer has a value
	Expired bool  // from Expire: entries of the key expired
}

// Join merges d into m: for each key, an entry survives if both sides hold
// it, or one side holds it and the other side's context does not cover its
// dot (the other side has not seen it, so cannot have removed it); the
// contexts are united. The same rule serves deltas, sync replies and full
// states; it is commutative, associative and idempotent, so deltas may
// arrive late, twice or out of order.
//
// Causal readiness: a keyed delta (from Set, Delete or Merge) is applied
// only once m's context holds its deps (the dots it overwrote), so that m
// never learns of an overwrite before what it overwrote — otherwise m could
// hold an entry that a dot in its context removed, and equal contexts would
// no longer mean equal states. A keyed delta with an origin must also claim
// no dot of another replica that m has not seen: every row of its context
// but the origin's must be in m's context. Honest deltas always pass this
// second test once they pass the first (their context outside the origin's
// row is their deps); it keeps a delta from removing other replicas' entries,
// or hiding their future writes, by claiming their dots. The origin's own row
// may claim anything: it can only hide its own writes. Until it is ready
// the delta waits in m, within Bounds (see JoinFrom), and is applied by the
// Join that brings what it needs; HasGap reports such a delta, so the
// caller can pull a sync if the wait lasts. Sync replies (Diff) are always
// ready.
//
// Join returns the keys whose visible value changed, sorted by key (once
// per key, with the final value), including changes from held deltas it
// applied. It returns ErrForeignDot, and changes nothing, if d claims dots
// of m's own replica that m never minted, and ErrBounds if joining d would
// make m know more replicas or context intervals than its Bounds allow. A
// held delta that turns out to exceed the bounds once ready is dropped
// (PendingStats.Dropped). Join does not observe timestamps: pass
// d.MaxTime() to the caller's HLC.
func (m *Map) Join(d Delta) ([]Change, error) { return m.JoinFrom(d, math.MinInt64, "") }

// JoinAt is Join at wall time now: an entry d brings that has expired at now
// (Entry.Expired) and that m does not hold is not stored — its dot joins the
// context as if m had held it and Expire had removed it since, so it
// appears in no Change. Everything else is as Join, which is JoinAt at the
// beginning of time (nothing has expired).
func (m *Map) JoinAt(d Delta, now int64) ([]Change, error) { return m.JoinFrom(d, now, "") }

// JoinFrom is JoinAt for a delta received from source src (a peer, say): if
// d is not ready, it is held on src's account. The held deltas are bounded
// in count (Bounds.MaxPending) and in estimated memory (Delta.Footprint),
// per source (MaxSourceBytes) and in total (MaxPendingBytes); to make room
// the oldest delta of the same source goes first, then the oldest of the
// source holding the most, so a source that floods m with deltas that never
// become ready evicts only its own, as long as it holds the most.
func (m *Map) JoinFrom(d Delta, now int64, src string) ([]Change, error) {
	if row := d.ctx.row(m.reps[0]); row.max() > m.ctx[0].max() {
		return nil, ErrForeignDot
	}
	if !m.ready(d) {
		m.hold(d, src)
		return nil, nil
	}
	if err := m.checkBounds(d); err != nil {
		return nil, err
	}
	changes := m.apply(d, nil, now)
	if len(m.pending) == 0 {
		return changes, nil
	}
	for progress := true; progress; {
		progress = false
		for i := 0; i < len(m.pending); {
			p := m.pending[i]
			if !m.ready(p.d) {
				i++
				continue
			}
			m.unhold(i)
			progress = true
			if m.checkBounds(p.d) != nil {
				m.pendDropped++
				continue
			}
			changes = m.apply(p.d, changes, now)
		}
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

// Pending returns how many deltas wait for dots they need (see Join).
func (m *Map) Pending() int { return len(m.pending) }

// ready reports whether m's context holds every dependency of d and, for a
// keyed delta with an origin, every dot of its context outside the origin's
// row.
func (m *Map) ready(d Delta) bool {
	if d.global || d.origin == "" {
		return m.holds(d.deps, "")
	}
	// deps ⊆ ctx: outside the origin's row, the context test covers them.
	return m.holds(d.ctx, d.origin) && subsetIvs(d.deps.row(d.origin), m.rowOf(d.origin))
}

// holds reports whether every row of c but skip's is in m's context.
func (m *Map) holds(c Context, skip ReplicaID) bool {
	for _, r := range c.rows {
		if r.r == skip {
			continue
		}
		i, ok := m.repIdx[r.r]
		if !ok || !subsetIvs(r.iv, m.ctx[i]) {
			return false
		}
	}
	return true
}

// rowOf returns m's context row of replica r (nil if unknown).
func (m *Map) rowOf(r ReplicaID) ivs {
	if i, ok := m.repIdx[r]; ok {
		return m.ctx[i]
	}
	return nil
}

// apply joins a ready delta at wall time now, appending visible changes.
func (m *Map) apply(d Delta, changes []Change, now int64) []Change {
	if len(d.groups) > 64 && changes == nil && !m.noChanges {
		changes = make([]Change, 0, len(d.groups))
	}
	// The delta's context by local replica index (interning what is new).
	for _, r := range d.ctx.rows {
		m.intern(r.r)
	}
	var dctx localCtx
	overlap := false
	for _, r := range d.ctx.rows {
		i := m.repIdx[r.r]
		dctx.rows = append(dctx.rows, localRow{i, r.iv})
		overlap = overlap || overlapIvs(r.iv, m.ctx[i])
	}
	if len(dctx.rows) > 8 {
		dctx.dense = make([]ivs, len(m.reps))
		for _, r := range dctx.rows {
			dctx.dense[r.i] = r.iv
		}
	}

	var buf, out [4]entry
	var theirs []entry
	for _, g := range d.groups {
		theirs = theirs[:0]
		for _, e := range g.ents {
			t := entry{val: e.val, wall: e.ts.Wall, lg: e.ts.Logical, ctr: e.ctr, rep: m.repIdx[e.rep]}
			if e.exp != 0 {
				t.rep |= ttlBit
			}
			theirs = append(theirs, t)
		}
		it := m.tree.get(g.key)
		var ours []entry
		if it != nil {
			ours = m.entries(g.key, it, buf[:0])
		}
		kept := out[:0]
		changed := false
		inTheirs := newDotSet(theirs)
		for _, o := range ours {
			if i, both := inTheirs.index(o); both {
				// Same dot both sides: same write, unless a peer is broken;
				// then keep the greater payload, so joins still commute.
				t, texp := theirs[i], g.ents[i].exp
				if payloadLess(o, m.expiry(o), t, texp) {
					o, changed = t, true
					if texp != 0 {
						m.ttl.add(g.key, o.dk(), texp)
					}
				}
				kept = append(kept, o)
			} else if !dctx.get(o.ri()).contains(o.ctr) {
				kept = append(kept, o)
			} else {
				changed = true // removed by the sender
			}
		}
		for i, t := range theirs {
			if m.ctx[t.ri()].contains(t.ctr) { // not new to us (so in ours, or removed)
				continue
			}
			if exp := g.ents[i].exp; exp != 0 {
				if exp <= now {
					continue // expired already: as if stored and expired since
				}
				m.ttl.add(g.key, t.dk(), exp)
			}
			kept = append(kept, t)
			changed = true
		}
		if changed {
			changes = m.replace(changes, it, g.key, ours, kept)
		}
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
		m.tree.ascend("", func(key string, e *entry) bool {
			for gi < len(d.groups) && d.groups[gi].key < key {
				gi++
			}
			if gi < len(d.groups) && d.groups[gi].key == key {
				return true // joined above
			}
			if e.rep&multiBit == 0 {
				if dctx.get(e.ri()).contains(e.ctr) {
					updates = append(updates, update{key: key, ours: []entry{*e}})
				}
				return true
			}
			ours := m.multi[key]
			var kept []entry
			for _, o := range ours {
				if !dctx.get(o.ri()).contains(o.ctr) {
					kept = append(kept, o)
				}
			}
			if len(kept) < len(ours) {
				updates = append(updates, update{key, ours, kept})
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

	for _, r := range dctx.rows {
		i, iv := r.i, r.iv
		if m.dirty.rows != nil && !subsetIvs(iv, m.ctx[i]) {
			m.touchRow(i)
		}
		m.nIv -= len(m.ctx[i])
		switch {
		case len(m.ctx[i]) == 0:
			m.ctx[i] = slices.Clone(iv)
		case len(iv) <= 4:
			for _, x := range iv {
				m.ctx[i].add(x.Lo, x.Hi)
			}
		default:
			m.ctx[i] = unionIvs(m.ctx[i], iv)
		}
		m.nIv += len(m.ctx[i])
	}
	return changes
}

// replace makes kept the entries of key (it is key's entry in the tree or
// nil; ours its entries before) and appends a Change if the visible entry
// changed.
func (m *Map) replace(changes []Change, it *entry, key string, ours, kept []entry) []Change {
	if len(kept) == 0 {
		m.remove(key, it)
		if m.noChanges {
			return changes
		}
		return append(changes, Change{Key: key, Deleted: true})
	}
	m.sortEntries(kept)
	if len(ours) > 0 && ours[0] == kept[0] {
		m.store(it, key, kept) // the winner stays: no visible change
		return changes
	}
	m.store(it, key, kept)
	if m.noChanges {
		return changes
	}
	return append(changes, Change{Key: key, Entry: m.export(kept[0])})
}

// payloadLess orders two entries of the same dot, with their expiries, by
// timestamp, then value, then expiry.
func payloadLess(a entry, aexp int64, b entry, bexp int64) bool {
	if c := a.ts().Compare(b.ts()); c != 0 {
		return c < 0
	}
	if a.val != b.val {
		return a.val < b.val
	}
	return aexp < bexp
}

// dotSet answers "is this dot among these entries" in O(1) for the rare key
// with many siblings (a hostile frame may carry thousands) and by a linear
// scan for the usual few.
type dotSet struct {
	es []entry
	m  map[dotKey]int
}

type dotKey struct {
	rep uint32
	ctr uint64
}

func newDotSet(es []entry) dotSet {
	if len(es) <= 8 {
		return dotSet{es: es}
	}
	m := make(map[dotKey]int, len(es))
	for i, e := range es {
		m[e.dk()] = i
	}
	return dotSet{m: m}
}

// index returns the index of the entry with e's dot, if any.
func (s dotSet) index(e entry) (int, bool) {
	if s.m != nil {
		i, ok := s.m[e.dk()]
		return i, ok
	}
	for i, x := range s.es {
		if x.dk() == e.dk() {
			return i, true
		}
	}
	return 0, false
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

// localCtx is a delta's context by local replica index: a short list for
// the usual few rows, a dense slice too when there are many.
type localCtx struct {
	rows  []localRow
	dense []ivs
}

type localRow struct {
	i  uint32
	iv ivs
}

func (c *localCtx) get(i uint32) ivs {
	if c.dense != nil {
		return c.dense[i]
	}
	for _, r := range c.rows {
		if r.i == i {
			return r.iv
		}
	}
	return nil
}
