package ormap

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Context is a causal context: a set of dots, kept per replica as compacted
// interval lists (a version vector plus out-of-order "dot cloud" intervals).
//
// A Context is an immutable value: methods return new Contexts and never
// change the receiver, so Contexts may be shared freely, across goroutines
// too. The zero Context is the empty set.
type Context struct {
	rows []ctxRow // sorted by replica; every row non-empty
}

type ctxRow struct {
	r  ReplicaID
	iv ivs
}

// contextOf builds a Context from dots (any order, duplicates allowed).
func contextOf(dots []Dot) Context {
	slices.SortFunc(dots, func(a, b Dot) int {
		if c := strings.Compare(string(a.Replica), string(b.Replica)); c != 0 {
			return c
		}
		return cmp.Compare(a.Counter, b.Counter)
	})
	var c Context
	for i, d := range dots {
		if i == 0 || d.Replica != dots[i-1].Replica {
			c.rows = append(c.rows, ctxRow{r: d.Replica})
		}
		row := &c.rows[len(c.rows)-1]
		row.iv.add(d.Counter, d.Counter)
	}
	return c
}

// row returns the intervals of replica r (nil if none).
func (c Context) row(r ReplicaID) ivs {
	lo, hi := 0, len(c.rows)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.rows[m].r < r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(c.rows) && c.rows[lo].r == r {
		return c.rows[lo].iv
	}
	return nil
}

// Contains reports whether d is in c.
func (c Context) Contains(d Dot) bool { return c.row(d.Replica).contains(d.Counter) }

// IsEmpty reports whether c holds no dot.
func (c Context) IsEmpty() bool { return len(c.rows) == 0 }

// Replicas returns the replicas with at least one dot in c, sorted.
func (c Context) Replicas() []ReplicaID {
	out := make([]ReplicaID, len(c.rows))
	for i, r := range c.rows {
		out[i] = r.r
	}
	return out
}

// Ranges returns a copy of the intervals of replica r, sorted; nil if none.
func (c Context) Ranges(r ReplicaID) []Interval { return slices.Clone(c.row(r)) }

// Max returns the highest counter of replica r in c, 0 if none.
func (c Context) Max(r ReplicaID) uint64 { return c.row(r).max() }

// Size returns the number of dots in c, saturating at MaxUint64.
func (c Context) Size() uint64 {
	var n uint64
	for _, r := range c.rows {
		k := r.iv.size()
		if n+k < n {
			return ^uint64(0)
		}
		n += k
	}
	return n
}

// Intervals returns the number of intervals in c: what it costs on the wire.
func (c Context) Intervals() int {
	n := 0
	for _, r := range c.rows {
		n += len(r.iv)
	}
	return n
}

// Equal reports whether c and o hold the same dots.
func (c Context) Equal(o Context) bool {
	if len(c.rows) != len(o.rows) {
		return false
	}
	for i := range c.rows {
		if c.rows[i].r != o.rows[i].r || !slices.Equal(c.rows[i].iv, o.rows[i].iv) {
			return false
		}
	}
	return true
}

// SubsetOf reports whether every dot of c is in o.
func (c Context) SubsetOf(o Context) bool {
	for _, r := range c.rows {
		if !subsetIvs(r.iv, o.row(r.r)) {
			return false
		}
	}
	return true
}

// Union returns c ∪ o.
func (c Context) Union(o Context) Context {
	return c.merge(o, func(a, b ivs) ivs {
		switch {
		case len(a) == 0:
			return b
		case len(b) == 0:
			return a
		}
		return unionIvs(a, b)
	})
}

// Difference returns the dots of c that are not in o.
func (c Context) Difference(o Context) Context {
	return c.merge(o, func(a, b ivs) ivs {
		if len(b) == 0 {
			return a
		}
		return diffIvs(a, b)
	})
}

// merge walks both row lists; f gets the rows of one replica (either may be
// nil) and returns the result row, dropped when empty.
func (c Context) merge(o Context, f func(a, b ivs) ivs) Context {
	var out Context
	i, j := 0, 0
	for i < len(c.rows) || j < len(o.rows) {
		var r ReplicaID
		var a, b ivs
		switch {
		case j >= len(o.rows) || (i < len(c.rows) && c.rows[i].r < o.rows[j].r):
			r, a = c.rows[i].r, c.rows[i].iv
			i++
		case i >= len(c.rows) || o.rows[j].r < c.rows[i].r:
			r, b = o.rows[j].r, o.rows[j].iv
			j++
		default:
			r, a, b = c.rows[i].r, c.rows[i].iv, o.rows[j].iv
			i++
			j++
		}
		if iv := f(a, b); len(iv) > 0 {
			out.rows = append(out.rows, ctxRow{r, iv})
		}
	}
	return out
}

// String formats c for logs and tests, e.g. {a:1-5,7 b:1-2}. Replica ids are
// printed quoted (Go syntax) when they are not plain printable words.
func (c Context) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, r := range c.rows {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(fmtReplica(r.r))
		b.WriteByte(':')
		for k, iv := range r.iv {
			if k > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatUint(iv.Lo, 10))
			if iv.Hi != iv.Lo {
				b.WriteByte('-')
				b.WriteString(strconv.FormatUint(iv.Hi, 10))
			}
		}
	}
	b.WriteByte('}')
	return b.String()
}

func fmtReplica(r ReplicaID) string {
	for _, ch := range []byte(r) {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return strconv.Quote(string(r))
		}
	}
	if r == "" {
		return `""`
	}
	return string(r)
}
