package ormap

import (
	"math/bits"
	"slices"
	"strings"
)

// Diff answers a sync request: c is the requester's context, and the result
// is what the requester lacks, to be joined with Join. It is the projection
// of m's state onto
//
//	D = C \ (dots(S) ∩ c)      (C, S: m's context and entries)
//
// that is, the entries whose dot c does not cover, and a context D that
// covers them, every dot of m unknown to the requester, and every dot m
// knows that is no longer live — so the requester drops the entries m
// removed — but none of the live entries the requester already has: those
// are skipped and must not be removed. (Sending the skipped entries' dots,
// e.g. all of C, would make the requester delete every entry it shares with
// m: see "The sync trap" in the package documentation.)
//
// For any replica whose context is c, or later grew from c, joining the
// result equals joining m's full state. If C ⊆ c the result is empty. Diff
// of the empty Context is a full snapshot, for a new replica.
//
// Cost: one pass over m's entries. D has one interval per run of m's dots
// that are not live-and-known-to-the-requester: proportional to the
// difference after a typical reconnect, but in the worst case (keys
// overwritten many times, so live dots are scattered among dead ones) up to
// one interval per live key of m.
func (m *Map) Diff(c Context) Delta {
	known := make([]ivs, len(m.reps))
	for _, r := range c.rows {
		if i, ok := m.repIdx[r.r]; ok {
			known[i] = r.iv
		}
	}
	covered := true
	for i, iv := range m.ctx {
		if !subsetIvs(iv, known[i]) {
			covered = false
			break
		}
	}
	if covered {
		return Delta{origin: m.reps[0], global: true}
	}

	// The live dots the requester knows, per replica.
	live := m.liveSets()
	var ents []dentry
	var keys []string
	var ends []int
	visit := func(e entry) {
		r := e.ri()
		if known[r].contains(e.ctr) {
			live[r].add(e.ctr)
		} else {
			ents = append(ents, dentry{rep: m.reps[r], ctr: e.ctr, val: e.val, ts: e.ts(), exp: m.expiry(e)})
		}
	}
	m.tree.ascend("", func(key string, cur *entry) bool {
		n := len(ents)
		if cur.rep&multiBit == 0 {
			visit(*cur)
		} else {
			for _, e := range m.multi[key] {
				visit(e)
			}
		}
		if len(ents) > n {
			keys = append(keys, key)
			ends = append(ends, len(ents))
		}
		return true
	})
	d := Delta{origin: m.reps[0], global: true, groups: make([]group, len(keys))}
	start := 0
	for i, k := range keys {
		d.groups[i] = group{k, ents[start:ends[i]:ends[i]]}
		start = ends[i]
	}
	for i, iv := range m.ctx {
		if row := live[i].subtractFrom(iv); len(row) > 0 {
			d.ctx.rows = append(d.ctx.rows, ctxRow{m.reps[i], row})
		}
	}
	slices.SortFunc(d.ctx.rows, func(a, b ctxRow) int { return strings.Compare(string(a.r), string(b.r)) })
	return d
}

// liveSet collects counters of one replica: in bits (bit c-base) if set up,
// else in list.
type liveSet struct {
	base uint64
	bits []uint64
	list []uint64
}

func (l *liveSet) add(c uint64) {
	if l.bits != nil {
		o := c - l.base
		l.bits[o/64] |= 1 << (o % 64)
	} else {
		l.list = append(l.list, c)
	}
}

// testAndSet adds c to a bitmap set and reports whether it was there.
func (l *liveSet) testAndSet(c uint64) bool {
	o := c - l.base
	w, b := &l.bits[o/64], uint64(1)<<(o%64)
	had := *w&b != 0
	*w |= b
	return had
}

// subtractFrom returns iv minus the collected counters, in a fresh slice.
func (l *liveSet) subtractFrom(iv ivs) ivs {
	switch {
	case len(iv) == 0:
		return nil
	case l.bits == nil && len(l.list) == 0:
		return slices.Clone(iv)
	case l.bits == nil:
		slices.Sort(l.list)
		return diffIvs(iv, runs(l.list))
	}
	var out ivs
	for _, x := range iv {
		for c := x.Lo; c <= x.Hi; {
			c = l.next(c, x.Hi, false) // skip live counters
			if c > x.Hi {
				break
			}
			e := l.next(c, x.Hi, true)
			out = append(out, Interval{c, e - 1})
			c = e
		}
	}
	return out
}

// next returns the first counter in [from, hi] whose bit is set (want) or
// clear (!want), or hi+1.
func (l *liveSet) next(from, hi uint64, want bool) uint64 {
	for c := from; c <= hi; {
		o := c - l.base
		w := l.bits[o/64]
		if !want {
			w = ^w
		}
		if w >>= o % 64; w != 0 {
			return min(c+uint64(bits.TrailingZeros64(w)), hi+1)
		}
		c += 64 - o%64
	}
	return hi + 1
}

// liveSets returns an empty set of dots per replica of m, each a bitmap
// over the replica's counter span when that is no bigger than a list of
// m's live keys would be, else a list (sorted when read).
func (m *Map) liveSets() []liveSet {
	live := make([]liveSet, len(m.reps))
	budget := uint64(m.tree.len) + 1024 // words: 8 bytes per live key at most
	for i, iv := range m.ctx {
		if len(iv) > 0 {
			live[i].base = iv[0].Lo
			if words := (iv.max()-iv[0].Lo)/64 + 1; words <= budget {
				live[i].bits = make([]uint64, words)
			}
		}
	}
	return live
}
