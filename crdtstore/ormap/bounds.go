package ormap

import "fmt"

// Bounds limit what a Map keeps on behalf of its peers: the replica ids and
// context intervals it knows, and the deltas it holds back (see Map.Join).
// A zero field takes its default, so Bounds{} is the default set, which
// every new Map starts with.
type Bounds struct {
	// MaxReplicas bounds the replica ids the map knows, its own included.
	// A join that would make it know more fails with ErrBounds and changes
	// nothing. Default 4,096, the decoders' default Limits.MaxReplicas: the
	// map's Context, and a Diff for any requester, stay within what its
	// peers decode.
	MaxReplicas int
	// MaxIntervals bounds the intervals of the map's causal context, as
	// MaxReplicas does the replicas. Default 1,048,576, the decoders'
	// default Limits.MaxIntervals; it bounds the context's memory to 16 MiB.
	MaxIntervals int
	// MaxPending bounds the deltas held back. Default MaxPending.
	MaxPending int
	// MaxPendingBytes bounds the memory of the held deltas, as estimated
	// by their footprint (see Map.PendingStats), all sources together.
	// Default 64 MiB.
	MaxPendingBytes int
	// MaxSourceBytes bounds it per source (see Map.JoinFrom); a delta
	// larger than this alone is not held. Default 16 MiB: more than any
	// delta within the default pub/sub message size holds.
	MaxSourceBytes int
}

// Default bounds.
const (
	DefaultMaxReplicas     = 4096
	DefaultMaxIntervals    = 1 << 20
	DefaultMaxPendingBytes = 64 << 20
	DefaultMaxSourceBytes  = 16 << 20
)

func (b Bounds) withDefaults() Bounds {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&b.MaxReplicas, DefaultMaxReplicas)
	def(&b.MaxIntervals, DefaultMaxIntervals)
	def(&b.MaxPending, MaxPending)
	def(&b.MaxPendingBytes, DefaultMaxPendingBytes)
	def(&b.MaxSourceBytes, DefaultMaxSourceBytes)
	return b
}

// SetBounds replaces m's bounds (zero fields: the defaults). It drops held
// deltas beyond the new pending bounds at once; replicas and intervals
// already known stay, and only further growth is refused.
func (m *Map) SetBounds(b Bounds) {
	m.bounds = b.withDefaults()
	m.trimPending("")
}

// Bounds returns m's bounds, defaults filled in.
func (m *Map) Bounds() Bounds { return m.bounds }

// Replicas returns how many replica ids m knows, its own included: at most
// Bounds.MaxReplicas.
func (m *Map) Replicas() int { return len(m.reps) }

// Knows reports whether m knows replica r (has seen a dot of it, or is it).
func (m *Map) Knows(r ReplicaID) bool {
	_, ok := m.repIdx[r]
	return ok
}

// Contiguous reports whether m has every dot of replica r up to the
// highest it knows: none of r's writes is missing below one m has seen
// (true for a replica m does not know). HasGap reports a delta that breaks
// it; the Join that brings the missing dots restores it.
func (m *Map) Contiguous(r ReplicaID) bool {
	i, ok := m.repIdx[r]
	if !ok {
		return true
	}
	row := m.ctx[i]
	return len(row) == 0 || len(row) == 1 && row[0].Lo == 1
}

// Intervals returns the number of intervals of m's causal context: at most
// Bounds.MaxIntervals.
func (m *Map) Intervals() int { return m.nIv }

// checkBounds returns an error wrapping ErrBounds if joining d would make m
// know more replicas or context intervals than its bounds allow.
func (m *Map) checkBounds(d Delta) error {
	newReps, upper := 0, 0
	for _, r := range d.ctx.rows {
		if _, ok := m.repIdx[r.r]; !ok {
			newReps++
		}
		upper += len(r.iv)
	}
	if newReps > 0 && len(m.reps)+newReps > m.bounds.MaxReplicas {
		return fmt.Errorf("%w: %d new replicas, %d known (limit %d)", ErrBounds, newReps, len(m.reps), m.bounds.MaxReplicas)
	}
	if m.nIv+upper <= m.bounds.MaxIntervals {
		return nil // the usual case: no need to count exactly
	}
	grow := 0
	for _, r := range d.ctx.rows {
		var ours ivs
		if i, ok := m.repIdx[r.r]; ok {
			ours = m.ctx[i]
		}
		grow += unionLen(ours, r.iv) - len(ours)
	}
	if m.nIv+grow > m.bounds.MaxIntervals {
		return fmt.Errorf("%w: %d more context intervals, %d held (limit %d)", ErrBounds, grow, m.nIv, m.bounds.MaxIntervals)
	}
	return nil
}

// unionLen returns len(unionIvs(a, b)) without building it.
func unionLen(a, b ivs) int {
	n := 0
	var hi uint64
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var next Interval
		if j >= len(b) || (i < len(a) && a[i].Lo <= b[j].Lo) {
			next = a[i]
			i++
		} else {
			next = b[j]
			j++
		}
		if n > 0 && hi >= next.Lo-1 {
			hi = max(hi, next.Hi)
		} else {
			n++
			hi = next.Hi
		}
	}
	return n
}
