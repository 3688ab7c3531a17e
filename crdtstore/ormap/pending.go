package ormap

import (
	"slices"
	"strings"
)

// held is a delta waiting for dots it needs (see Map.Join), with the source
// it came from and its estimated footprint.
type held struct {
	d    Delta
	src  string
	size int
}

// usage is what one source holds in pending.
type usage struct{ n, bytes int }

// PendingStats describes the deltas a Map holds back (see Map.Join).
type PendingStats struct {
	// Deltas and Bytes are what is held now: the count and the estimated
	// footprint (Delta.Footprint) of the held deltas.
	Deltas, Bytes int
	// Sources is the number of sources with held deltas.
	Sources int
	// Dropped counts the deltas dropped since New: evicted by the bounds,
	// refused as larger than Bounds.MaxSourceBytes, or found beyond
	// MaxReplicas or MaxIntervals once ready. A sync recovers what an
	// honest peer's dropped delta carried.
	Dropped uint64
}

// PendingStats returns what m holds back now and has dropped.
func (m *Map) PendingStats() PendingStats {
	return PendingStats{Deltas: len(m.pending), Bytes: m.pendBytes, Sources: len(m.pendUse), Dropped: m.pendDropped}
}

// PendingFrom returns how many deltas received from src m holds back now.
func (m *Map) PendingFrom(src string) int {
	if u := m.pendUse[src]; u != nil {
		return u.n
	}
	return 0
}

// Ready reports whether Join would apply d now rather than hold it: m's
// context holds what d needs (see Join).
func (m *Map) Ready(d Delta) bool { return m.ready(d) }

// hold adds a delta that is not ready to the held ones, within the bounds:
// the oldest delta of src is dropped first when src is over its share, and
// the oldest of the source holding the most when all together are over, so
// a source that floods evicts only its own deltas while it holds the most.
// A duplicate of a held delta is not held twice.
func (m *Map) hold(d Delta, src string) {
	for _, p := range m.pending {
		if p.d.origin == d.origin && p.d.ctx.Equal(d.ctx) && p.d.deps.Equal(d.deps) && len(p.d.groups) == len(d.groups) {
			return
		}
	}
	size := d.Footprint()
	if size > m.bounds.MaxSourceBytes {
		m.pendDropped++
		return
	}
	if m.pendUse == nil {
		m.pendUse = make(map[string]*usage)
	}
	m.pending = append(m.pending, held{d, src, size})
	u := m.pendUse[src]
	if u == nil {
		u = &usage{}
		m.pendUse[src] = u
	}
	u.n++
	u.bytes += size
	m.pendBytes += size
	m.trimPending(src)
}

// trimPending drops held deltas until the bounds hold: first the oldest of
// src while src is over MaxSourceBytes, then the oldest of the largest
// source (by bytes, or by count for MaxPending).
func (m *Map) trimPending(src string) {
	b := m.bounds
	for u := m.pendUse[src]; u != nil && u.bytes > b.MaxSourceBytes; u = m.pendUse[src] {
		m.dropOldest(src)
	}
	for m.pendBytes > b.MaxPendingBytes {
		m.dropOldest(m.largestSource(func(u *usage) int { return u.bytes }))
	}
	for len(m.pending) > b.MaxPending {
		m.dropOldest(m.largestSource(func(u *usage) int { return u.n }))
	}
}

// largestSource returns the source with the greatest by(usage); ties go to
// the least name, so the choice is deterministic.
func (m *Map) largestSource(by func(*usage) int) string {
	best, bestV := "", -1
	for s, u := range m.pendUse {
		if v := by(u); v > bestV || v == bestV && strings.Compare(s, best) < 0 {
			best, bestV = s, v
		}
	}
	return best
}

// dropOldest drops the oldest held delta of src.
func (m *Map) dropOldest(src string) {
	i := slices.IndexFunc(m.pending, func(p held) bool { return p.src == src })
	if i < 0 {
		return
	}
	m.unhold(i)
	m.pendDropped++
}

// unhold removes the held delta at index i, keeping the order.
func (m *Map) unhold(i int) {
	p := m.pending[i]
	m.release(p)
	copy(m.pending[i:], m.pending[i+1:])
	m.pending[len(m.pending)-1] = held{}
	m.pending = m.pending[:len(m.pending)-1]
}

// release takes p out of the per-source accounting.
func (m *Map) release(p held) {
	m.pendBytes -= p.size
	u := m.pendUse[p.src]
	u.n--
	u.bytes -= p.size
	if u.n == 0 {
		delete(m.pendUse, p.src)
	}
}

// Footprint estimates the memory d takes once decoded, in bytes: its keys,
// values and replica ids, plus the fixed size of each entry, key and
// context interval. Map bounds its held deltas by it (Bounds).
func (d Delta) Footprint() int {
	const (
		deltaSize    = 128 // the Delta and its slice headers
		groupSize    = 40  // key header + entry slice header
		dentrySize   = 64
		rowSize      = 40 // replica id header + interval slice header
		intervalSize = 16
	)
	n := deltaSize
	for _, c := range [2]Context{d.ctx, d.deps} {
		for _, r := range c.rows {
			n += rowSize + len(r.r) + intervalSize*len(r.iv)
		}
	}
	for _, g := range d.groups {
		n += groupSize + len(g.key) + dentrySize*len(g.ents)
		for _, e := range g.ents {
			n += len(e.val)
		}
	}
	return n
}
