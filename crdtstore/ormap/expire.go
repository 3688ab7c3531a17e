package ormap

import (
	"iter"
	"math"
	"strings"
)

// expiryOf returns the expiry of an entry written at wall with ttl: wall+ttl,
// cut to MaxInt64 (and 1 instead of 0, which means "never": only a wall
// clock before 1970 gets there); ok is false if ttl <= 0 or no time is left
// after wall.
func expiryOf(wall, ttl int64) (exp int64, ok bool) {
	if ttl <= 0 {
		return 0, false
	}
	// MaxInt64 - wall fits a uint64 for every int64 wall.
	room := uint64(math.MaxInt64) - uint64(wall)
	switch {
	case room == 0:
		return 0, false
	case uint64(ttl) > room:
		return math.MaxInt64, true
	}
	if exp = wall + ttl; exp == 0 {
		exp = 1
	}
	return exp, true
}

// due reports whether e has expired at now.
func (m *Map) due(e entry, now int64) bool {
	return e.rep&ttlBit != 0 && m.expiry(e) <= now
}

// NextExpiry returns the earliest expiry among the stored entries; ok is
// false if none expires. A wrapper arms its timer with it.
func (m *Map) NextExpiry() (exp int64, ok bool) {
	it, ok := m.ttl.min()
	return it.exp, ok
}

// Expire removes the stored entries that have expired at wall time now
// (Entry.Expired), earliest first and key by key: every expired sibling of a
// key goes at once. It stops once it has removed max entries or more
// (max <= 0: no bound) and reports whether expired entries remain, so that
// a caller can bound the work of one call and come back.
//
// It returns the keys whose stored best entry changed, with Expired set:
// Deleted if no entry is left, else the new best, which has not expired at
// now. The removed entries' dots stay in the context, so no delta or sync
// reply still carrying them brings them back (the join rule), and nothing is
// sent: every replica expires entries by its own clock. With siblings, each
// expires on its own: the key keeps the ones that have not.
//
// Between an entry's expiry and the Expire that removes it, At(now) already
// leaves it out.
func (m *Map) Expire(now int64, max int) (changes []Change, more bool) {
	removed := 0
	var buf [4]entry
	for {
		top, ok := m.ttl.min()
		if !ok || top.exp > now {
			return changes, false
		}
		if max > 0 && removed >= max {
			return changes, true
		}
		it := m.tree.get(top.key)
		ours := m.entries(top.key, it, buf[:0])
		var kept []entry
		for _, o := range ours {
			if !m.due(o, now) {
				kept = append(kept, o)
			}
		}
		if len(kept) == len(ours) {
			m.ttl.remove(top.dot) // cannot happen (verify checks the index); never loop
			continue
		}
		removed += len(ours) - len(kept)
		n := len(changes)
		changes = m.replace(changes, it, top.key, ours, kept)
		for i := n; i < len(changes); i++ {
			changes[i].Expired = true
		}
	}
}

// View is a read-only view of a Map at a wall time: entries that have
// expired by then are left out, whether Expire has removed them yet or not.
// Make one with Map.At; it is valid until the map changes.
type View struct {
	m   *Map
	now int64
}

// At returns a view of m at wall time now. At(math.MinInt64) sees every
// stored entry, as Get and Scan do.
func (m *Map) At(now int64) View { return View{m, now} }

// best returns key's best entry that has not expired; cur is key's entry in
// the tree.
func (v View) best(key string, cur *entry) (entry, bool) {
	if cur.rep&ttlBit == 0 {
		return *cur, true
	}
	var buf [4]entry
	for _, e := range v.m.entries(key, cur, buf[:0]) {
		if !v.m.due(e, v.now) {
			return e, true
		}
	}
	return entry{}, false
}

// Get returns the visible entry of key at the view's time: Map.Get's choice
// among the siblings that have not expired.
func (v View) Get(key string) (Entry, bool) {
	cur := v.m.tree.get(key)
	if cur == nil {
		return Entry{}, false
	}
	e, ok := v.best(key, cur)
	if !ok {
		return Entry{}, false
	}
	return v.m.export(e), true
}

// GetAll returns the siblings of key that have not expired, in Get's order;
// nil if none.
func (v View) GetAll(key string) []Entry {
	var out []Entry
	for _, e := range v.m.GetAll(key) {
		if !e.Expired(v.now) {
			out = append(out, e)
		}
	}
	return out
}

// Siblings returns how many values key has that have not expired: 0 if it
// has none, 1 without a conflict.
func (v View) Siblings(key string) int {
	cur := v.m.tree.get(key)
	switch {
	case cur == nil:
		return 0
	case cur.rep&(multiBit|ttlBit) == 0:
		return 1
	}
	n := 0
	var buf [4]entry
	for _, e := range v.m.entries(key, cur, buf[:0]) {
		if !v.m.due(e, v.now) {
			n++
		}
	}
	return n
}

// Keys returns the keys starting with prefix that have a value at the
// view's time, sorted.
func (v View) Keys(prefix string) []string {
	var out []string
	v.m.tree.ascend(prefix, func(key string, cur *entry) bool {
		if !strings.HasPrefix(key, prefix) {
			return false
		}
		if _, ok := v.best(key, cur); ok {
			out = append(out, key)
		}
		return true
	})
	return out
}

// Scan iterates over the keys starting with prefix that have a value at the
// view's time, in sorted order, with their visible entry. The map must not
// be modified during the iteration.
func (v View) Scan(prefix string) iter.Seq2[string, Entry] { return v.ScanFrom(prefix, prefix) }

// ScanFrom is Scan starting at the first key >= from: a caller that reads a
// large map in chunks resumes where the previous chunk ended.
func (v View) ScanFrom(prefix, from string) iter.Seq2[string, Entry] {
	return func(yield func(string, Entry) bool) {
		v.m.tree.ascend(max(prefix, from), func(key string, cur *entry) bool {
			if !strings.HasPrefix(key, prefix) {
				return false
			}
			e, ok := v.best(key, cur)
			return !ok || yield(key, v.m.export(e))
		})
	}
}

// Len returns the number of keys with a value at the view's time. It costs
// O(1) plus a look at each entry that has expired but is still stored.
func (v View) Len() int {
	n := v.m.tree.len
	v.m.ttl.due(v.now, func(x ttlItem) {
		// A key that has expired entirely has its best entry among the due
		// ones: count it there, once.
		cur := v.m.tree.get(x.key)
		if cur.dk() == x.dot {
			if _, ok := v.best(x.key, cur); !ok {
				n--
			}
		}
	})
	return n
}

// Now returns the view's time.
func (v View) Now() int64 { return v.now }
