package ormap

import (
	"fmt"
	"slices"
	"strings"
)

// Delta is a piece of replica state: entries grouped by key plus a causal
// context that covers them. Set and Delete return one, Diff computes one for
// a sync, DecodeDelta reads one, Merge combines two; Map.Join applies any of
// them with the same rule. A Delta is an immutable value, safe to share.
// The zero Delta is empty.
//
// A delta from Set, Delete or their Merge is keyed: every dot of its
// context belongs to one of its keys, so joining it only visits those keys.
// A delta from Diff is not: joining it visits every key of the receiver.
// Every delta this package makes keeps that promise; a frame from a broken
// or hostile peer that breaks it (its context covering dots live under keys
// it does not list) cannot corrupt a Map, but can make replicas diverge.
//
// A delta from Set or Delete also has dependencies: the dots it overwrote.
// A replica applies it only once it has seen those (see Map.Join).
type Delta struct {
	origin ReplicaID
	global bool    // not keyed: the context may remove entries of any key
	ctx    Context // covers every entry
	deps   Context // ⊆ ctx: dots the receiver must know before joining
	groups []group // sorted by key; in a global delta never empty
}

type group struct {
	key  string
	ents []dentry // best first (Get order)
}

type dentry struct {
	rep ReplicaID
	ctr uint64
	val string
	ts  Timestamp
	exp int64 // Entry.Expires: 0 if it never expires
}

func (e dentry) dot() Dot { return Dot{e.rep, e.ctr} }

// betterD is the sibling order on delta entries (see Map.Get).
func betterD(a, b dentry) bool {
	if c := a.ts.Compare(b.ts); c != 0 {
		return c > 0
	}
	if a.rep != b.rep {
		return a.rep > b.rep
	}
	return a.ctr > b.ctr
}

// Origin returns the replica that produced d ("" if it merges deltas of
// several replicas). HasGap looks at the origin's dots.
func (d Delta) Origin() ReplicaID { return d.origin }

// CheckOwn returns nil if d can be what a replica publishes of its own
// writes: keyed (not from Diff), with an origin, and every entry written by
// the origin — as every delta of Set and Delete, and Merge of such deltas
// of one replica, is. Otherwise it returns an error wrapping ErrNotOwn. A
// wrapper that checks the origin belongs to the sender, and calls it on
// every delta received outside a sync, ensures a sender can only add its
// own writes: other replicas' dots that a delta claims, it must have seen
// (see Map.Join), and their entries it cannot carry.
func (d Delta) CheckOwn() error {
	switch {
	case d.global:
		return fmt.Errorf("%w: a sync reply", ErrNotOwn)
	case d.origin == "":
		return fmt.Errorf("%w: no origin", ErrNotOwn)
	}
	for _, g := range d.groups {
		for _, e := range g.ents {
			if e.rep != d.origin {
				return fmt.Errorf("%w: an entry of another replica under key %q", ErrNotOwn, g.key)
			}
		}
	}
	return nil
}

// Keyed reports whether d is keyed (from Set, Delete or Merge of them)
// rather than a sync reply from Diff, which may remove entries of any key.
func (d Delta) Keyed() bool { return !d.global }

// Context returns d's causal context.
func (d Delta) Context() Context { return d.ctx }

// Deps returns the dots d overwrote: a replica joins d only once its own
// context holds them all. Empty for a delta from Diff.
func (d Delta) Deps() Context { return d.deps }

// IsEmpty reports whether joining d would change nothing anywhere: no
// entries and no dots.
func (d Delta) IsEmpty() bool { return len(d.groups) == 0 && d.ctx.IsEmpty() }

// Len returns the number of keys d carries entries or removals for.
func (d Delta) Len() int { return len(d.groups) }

// Keys returns the keys d carries entries or removals for, sorted.
func (d Delta) Keys() []string {
	out := make([]string, len(d.groups))
	for i, g := range d.groups {
		out[i] = g.key
	}
	return out
}

// Entries returns the entries d carries for key, in Get's order; nil if
// none (for a keyed delta that means key is removed).
func (d Delta) Entries(key string) []Entry {
	i, ok := slices.BinarySearchFunc(d.groups, key, func(g group, k string) int { return strings.Compare(g.key, k) })
	if !ok || len(d.groups[i].ents) == 0 {
		return nil
	}
	out := make([]Entry, len(d.groups[i].ents))
	for k, e := range d.groups[i].ents {
		out[k] = Entry{Dot: e.dot(), Time: e.ts, Value: []byte(e.val), Expires: e.exp}
	}
	return out
}

// NewestWrites calls f once per replica with entries in d, with the latest
// timestamp among that replica's entries: the newest write of each writer
// a delta (or a sync reply) carries.
func (d Delta) NewestWrites(f func(ReplicaID, Timestamp)) {
	var newest map[ReplicaID]Timestamp
	for _, g := range d.groups {
		for _, e := range g.ents {
			if newest == nil {
				newest = make(map[ReplicaID]Timestamp)
			}
			if t, ok := newest[e.rep]; !ok || e.ts.Compare(t) > 0 {
				newest[e.rep] = e.ts
			}
		}
	}
	for r, t := range newest {
		f(r, t)
	}
}

// MaxTime returns the latest timestamp among d's entries (zero if none):
// pass it to HLC.Observe when d arrives from a peer.
func (d Delta) MaxTime() Timestamp {
	var t Timestamp
	for _, g := range d.groups {
		for _, e := range g.ents {
			if e.ts.Compare(t) > 0 {
				t = e.ts
			}
		}
	}
	return t
}

// Merge returns the join of d and o: applying it equals applying both, in
// either order. The wrapper uses it to coalesce a burst of local writes into
// one delta.
func (d Delta) Merge(o Delta) Delta {
	out := Delta{global: d.global || o.global, ctx: d.ctx.Union(o.ctx)}
	// What one side depends on, the other may have made: its own ops, whose
	// removals it carries (ctx \ deps), satisfy the dependency.
	out.deps = d.deps.Difference(o.ctx.Difference(o.deps)).Union(o.deps.Difference(d.ctx.Difference(d.deps)))
	switch de, oe := d.IsEmpty(), o.IsEmpty(); {
	case d.origin == o.origin || oe && !de:
		out.origin = d.origin
	case de && !oe:
		out.origin = o.origin
	}
	i, j := 0, 0
	for i < len(d.groups) || j < len(o.groups) {
		var g group
		switch {
		case j >= len(o.groups) || (i < len(d.groups) && d.groups[i].key < o.groups[j].key):
			g = group{d.groups[i].key, keepD(d.groups[i].ents, o.ctx)}
			i++
		case i >= len(d.groups) || o.groups[j].key < d.groups[i].key:
			g = group{o.groups[j].key, keepD(o.groups[j].ents, d.ctx)}
			j++
		default:
			a, b := d.groups[i].ents, o.groups[j].ents
			g = group{key: d.groups[i].key}
			inB := newDDotSet(b)
			for _, e := range a {
				if x, both := inB.get(e); both {
					if c := x.ts.Compare(e.ts); c > 0 || c == 0 && (x.val > e.val || x.val == e.val && x.exp > e.exp) {
						e = x // a broken peer: see Map.Join
					}
					g.ents = append(g.ents, e)
				} else if !o.ctx.Contains(e.dot()) {
					g.ents = append(g.ents, e)
				}
			}
			inA := newDDotSet(a)
			for _, e := range b {
				if _, both := inA.get(e); !both && !d.ctx.Contains(e.dot()) {
					g.ents = append(g.ents, e)
				}
			}
			slices.SortFunc(g.ents, func(x, y dentry) int {
				if betterD(x, y) {
					return -1
				}
				return 1
			})
			i++
			j++
		}
		if len(g.ents) > 0 || !out.global {
			out.groups = append(out.groups, g)
		}
	}
	return out
}

// keepD returns the entries of a that survive a join with a side that has
// no entries for their key and context c: those not in c. Order is kept.
func keepD(a []dentry, c Context) []dentry {
	var out []dentry
	for _, e := range a {
		if !c.Contains(e.dot()) {
			out = append(out, e)
		}
	}
	return out
}

// dDotSet is dotSet for delta entries.
type dDotSet struct {
	es []dentry
	m  map[Dot]dentry
}

func newDDotSet(es []dentry) dDotSet {
	if len(es) <= 8 {
		return dDotSet{es: es}
	}
	m := make(map[Dot]dentry, len(es))
	for _, e := range es {
		m[e.dot()] = e
	}
	return dDotSet{m: m}
}

// get returns the entry with e's dot, if any.
func (s dDotSet) get(e dentry) (dentry, bool) {
	if s.m != nil {
		x, ok := s.m[e.dot()]
		return x, ok
	}
	for _, x := range s.es {
		if x.rep == e.rep && x.ctr == e.ctr {
			return x, true
		}
	}
	return dentry{}, false
}
