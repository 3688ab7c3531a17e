package ormap

// ReplicaID names one replica (one incarnation of one store). It is opaque,
// compared byte-wise, non-empty and at most MaxReplicaIDLen bytes. An id must
// never be reused by a replica that lost its state: the wrapper draws ~16
// random bytes per incarnation.
type ReplicaID string

// MaxReplicaIDLen is the longest ReplicaID accepted by New and the decoders.
const MaxReplicaIDLen = 255

// maxCounter bounds every counter a decoder accepts, so interval arithmetic
// (hi+1) never overflows. No replica mints that many dots.
const maxCounter = 1 << 62

// Dot identifies one event: the Counter-th (from 1) minted by Replica. Every
// Set and every Delete mints exactly one dot.
type Dot struct {
	Replica ReplicaID
	Counter uint64
}

// Interval is the closed range of counters [Lo, Hi], with 1 <= Lo <= Hi.
type Interval struct{ Lo, Hi uint64 }

// ivs is a compacted set of counters: sorted, disjoint, non-adjacent
// intervals. A version vector entry n is ivs{{1, n}}; out-of-order dots add
// intervals. Values held by a Context are never mutated in place; the Map's
// own rows are, through add.
type ivs []Interval

// search returns the index of the first interval with Hi >= c.
func (s ivs) search(c uint64) int {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].Hi < c {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (s ivs) contains(c uint64) bool {
	if len(s) == 1 { // the common case: a plain version vector entry
		return s[0].Lo <= c && c <= s[0].Hi
	}
	i := s.search(c)
	return i < len(s) && s[i].Lo <= c
}

// max returns the highest counter in s, 0 if s is empty.
func (s ivs) max() uint64 {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1].Hi
}

// size returns the number of counters in s, saturating at MaxUint64.
func (s ivs) size() uint64 {
	var n uint64
	for _, iv := range s {
		k := iv.Hi - iv.Lo + 1
		if n+k < n {
			return ^uint64(0)
		}
		n += k
	}
	return n
}

// add inserts [lo, hi] in place, merging what it overlaps or touches.
func (s *ivs) add(lo, hi uint64) {
	a := *s
	if n := len(a); n == 0 || a[n-1].Hi < lo-1 { // append: the usual case
		*s = append(a, Interval{lo, hi})
		return
	}
	i := a.search(lo - 1) // first interval that may touch [lo, hi] from below
	j := i                // first interval strictly after hi+1
	for j < len(a) && a[j].Lo-1 <= hi {
		j++
	}
	if i == j {
		a = append(a, Interval{})
		copy(a[i+1:], a[i:])
		a[i] = Interval{lo, hi}
		*s = a
		return
	}
	a[i] = Interval{min(lo, a[i].Lo), max(hi, a[j-1].Hi)}
	*s = append(a[:i+1], a[j:]...)
}

// unionIvs returns a ∪ b in a fresh slice (never aliasing a or b).
func unionIvs(a, b ivs) ivs {
	out := make(ivs, 0, len(a)+len(b))
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
		if n := len(out); n > 0 && out[n-1].Hi >= next.Lo-1 {
			out[n-1].Hi = max(out[n-1].Hi, next.Hi)
		} else {
			out = append(out, next)
		}
	}
	return out
}

// diffIvs returns a \ b in a fresh slice.
func diffIvs(a, b ivs) ivs {
	var out ivs
	j := 0
	for _, iv := range a {
		lo := iv.Lo
		for j < len(b) && b[j].Hi < lo {
			j++
		}
		k := j
		for k < len(b) && b[k].Lo <= iv.Hi {
			if b[k].Lo > lo {
				out = append(out, Interval{lo, b[k].Lo - 1})
			}
			if b[k].Hi >= iv.Hi {
				lo = iv.Hi + 1 // past the end: nothing left of iv
				break
			}
			lo = b[k].Hi + 1
			k++
		}
		if lo <= iv.Hi {
			out = append(out, Interval{lo, iv.Hi})
		}
	}
	return out
}

// subsetIvs reports whether a ⊆ b.
func subsetIvs(a, b ivs) bool {
	j := 0
	for _, iv := range a {
		for j < len(b) && b[j].Hi < iv.Lo {
			j++
		}
		if j == len(b) || b[j].Lo > iv.Lo || b[j].Hi < iv.Hi {
			return false
		}
	}
	return true
}

// overlapIvs reports whether a ∩ b is non-empty.
func overlapIvs(a, b ivs) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].Hi < b[j].Lo:
			i++
		case b[j].Hi < a[i].Lo:
			j++
		default:
			return true
		}
	}
	return false
}

// runs compacts sorted, distinct counters into intervals.
func runs(cs []uint64) ivs {
	var out ivs
	for _, c := range cs {
		if n := len(out); n > 0 && out[n-1].Hi+1 == c {
			out[n-1].Hi = c
		} else {
			out = append(out, Interval{c, c})
		}
	}
	return out
}

// valid reports whether s is canonical: 1 <= Lo <= Hi <= maxCounter,
// sorted, disjoint and non-adjacent.
func (s ivs) valid() bool {
	for i, iv := range s {
		if iv.Lo < 1 || iv.Lo > iv.Hi || iv.Hi > maxCounter {
			return false
		}
		if i > 0 && s[i-1].Hi+1 >= iv.Lo {
			return false
		}
	}
	return true
}
