package ormap

import (
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

	live := make([][]uint64, len(m.reps)) // live dots the requester knows
	var ents []dentry
	var keys []string
	var ends []int
	visit := func(e entry) {
		r := e.rep &^ multiBit
		if known[r].contains(e.ctr) {
			live[r] = append(live[r], e.ctr)
		} else {
			ents = append(ents, dentry{rep: m.reps[r], ctr: e.ctr, val: e.val, ts: e.ts()})
		}
	}
	m.tree.ascend("", func(it *item) bool {
		n := len(ents)
		if it.e.rep&multiBit == 0 {
			visit(it.e)
		} else {
			for _, e := range m.multi[it.key] {
				visit(e)
			}
		}
		if len(ents) > n {
			keys = append(keys, it.key)
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
		if len(iv) == 0 {
			continue
		}
		var row ivs
		if len(live[i]) == 0 {
			row = slices.Clone(iv)
		} else {
			slices.Sort(live[i])
			row = diffIvs(iv, runs(live[i]))
		}
		if len(row) > 0 {
			d.ctx.rows = append(d.ctx.rows, ctxRow{m.reps[i], row})
		}
	}
	slices.SortFunc(d.ctx.rows, func(a, b ctxRow) int { return strings.Compare(string(a.r), string(b.r)) })
	return d
}
