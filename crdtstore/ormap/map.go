package ormap

import (
	"iter"
	"slices"
	"strings"
)

// Entry is one value of a key: the write that produced it (its dot), the
// writer's HLC timestamp, the bytes, and when it expires. Value is the
// caller's own copy.
type Entry struct {
	Dot   Dot
	Time  Timestamp
	Value []byte
	// Expires is the wall time (nanoseconds, like Timestamp.Wall) from which
	// the entry no longer counts, Time.Wall plus the TTL it was set with
	// (see Map.SetTTL); zero if it never expires.
	Expires int64
}

// Expired reports whether e has expired at wall time now.
func (e Entry) Expired(now int64) bool { return e.Expires != 0 && e.Expires <= now }

// entry is the stored form of an Entry (40 bytes). rep is the local replica
// index plus two flags: ttlBit when the entry expires (its expiry is in
// Map.ttl, so entries without one cost nothing more), and in the tree's copy
// multiBit when the key has siblings, with ttlBit then set when any sibling
// expires.
type entry struct {
	val  string
	wall int64
	ctr  uint64
	rep  uint32
	lg   uint32
}

const (
	multiBit = 1 << 31
	ttlBit   = 1 << 30
	repMask  = ttlBit - 1 // the replica index bits of entry.rep
)

func (e entry) ts() Timestamp { return Timestamp{e.wall, e.lg} }

// ri returns e's local replica index, without the flags.
func (e entry) ri() uint32 { return e.rep & repMask }

// dk returns e's dot by local replica index.
func (e entry) dk() dotKey { return dotKey{e.rep & repMask, e.ctr} }

// Map is one replica of an observed-remove map from string keys to byte
// values (see the package documentation for the model). It is pure and
// deterministic, and not safe for concurrent use: the owner serialises
// calls.
type Map struct {
	reps   []ReplicaID // local replica index -> id; reps[0] is this replica
	repIdx map[ReplicaID]uint32
	ctx    []ivs // causal context, by local replica index
	tree   btree // live keys with their visible (winning) entry
	multi  map[string][]entry
	ttl    ttlIndex // expiry of the entries that have one
	nIv    int      // intervals in ctx
	bytes  int      // live keys' and stored values' bytes (Bytes)

	bounds      Bounds
	pending     []held // joined deltas waiting for dots they need, oldest first
	pendUse     map[string]*usage
	pendBytes   int
	pendDropped uint64

	dirty tracker // keys and rows changed since TakeRecords (records.go)

	noChanges bool // DiscardChanges
}

// MaxPending is how many deltas a Map holds back, by default, while it
// waits for the dots they need (Bounds.MaxPending); past it the oldest of
// the source holding the most is dropped (a sync recovers it).
const MaxPending = 1024

// New returns an empty map for replica self. It panics if self is empty or
// longer than MaxReplicaIDLen: ids are chosen by the program, not by peers.
func New(self ReplicaID) *Map {
	if self == "" || len(self) > MaxReplicaIDLen {
		panic("ormap: invalid replica id")
	}
	m := &Map{repIdx: make(map[ReplicaID]uint32), multi: make(map[string][]entry), bounds: Bounds{}.withDefaults()}
	m.intern(self)
	return m
}

// DiscardChanges makes the joins and expiries of m return no Changes
// (nil) while on is true: they cost an allocation and a copy of each
// changed value, wasted when nobody watches (a new replica's first sync
// changes every key). What changes meanwhile is not reported later.
func (m *Map) DiscardChanges(on bool) { m.noChanges = on }

// Replica returns the replica id the map mints dots for.
func (m *Map) Replica() ReplicaID { return m.reps[0] }

// Len returns the number of keys with a stored value, expired or not (see
// At).
func (m *Map) Len() int { return m.tree.len }

// Bytes returns the bytes of m's live data: each stored key once, plus the
// value of every entry stored under it (siblings included), expired or not
// until Expire removes it. It is kept as entries are stored and removed,
// so it costs nothing to read.
func (m *Map) Bytes() int { return m.bytes }

// valueBytes returns the bytes of the values stored under key; cur is
// key's entry in the tree.
func (m *Map) valueBytes(key string, cur *entry) int {
	if cur.rep&multiBit == 0 {
		return len(cur.val)
	}
	n := 0
	for _, o := range m.multi[key] {
		n += len(o.val)
	}
	return n
}

func (m *Map) intern(r ReplicaID) uint32 {
	if i, ok := m.repIdx[r]; ok {
		return i
	}
	i := uint32(len(m.reps))
	if i > repMask {
		panic("ormap: replica table exhausted")
	}
	m.reps = append(m.reps, r)
	m.repIdx[r] = i
	m.ctx = append(m.ctx, nil)
	return i
}

// better reports whether a sorts before b among siblings: later timestamp,
// then greater replica id, then greater counter.
func (m *Map) better(a, b entry) bool {
	if c := a.ts().Compare(b.ts()); c != 0 {
		return c > 0
	}
	ra, rb := m.reps[a.ri()], m.reps[b.ri()]
	if ra != rb {
		return ra > rb
	}
	return a.ctr > b.ctr
}

func (m *Map) sortEntries(es []entry) {
	slices.SortFunc(es, func(a, b entry) int {
		if m.better(a, b) {
			return -1
		}
		return 1 // dots are unique: never equal
	})
}

// entries appends the entries of key (best first) to buf; cur is key's
// entry in the tree.
func (m *Map) entries(key string, cur *entry, buf []entry) []entry {
	if cur.rep&multiBit == 0 {
		return append(buf, *cur)
	}
	return append(buf, m.multi[key]...)
}

// store makes es (sorted best first, non-empty) the entries of key; cur is
// key's entry in the tree, or nil to insert the key. The caller has indexed
// the expiry of every entry of es with ttlBit (Map.ttl.add); store drops
// from the index the old entries that are not kept.
func (m *Map) store(cur *entry, key string, es []entry) {
	m.touchKey(key)
	if cur != nil {
		m.bytes -= m.valueBytes(key, cur)
	} else {
		m.bytes += len(key)
	}
	for _, o := range es {
		m.bytes += len(o.val)
	}
	if cur != nil && cur.rep&ttlBit != 0 {
		m.unindex(key, cur, es)
	}
	e := es[0]
	flag := e.rep & ttlBit
	for _, o := range es[1:] {
		flag |= o.rep & ttlBit
	}
	e.rep |= flag
	if len(es) > 1 {
		m.multi[key] = slices.Clone(es)
		e.rep |= multiBit
	} else if cur != nil && cur.rep&multiBit != 0 {
		delete(m.multi, key)
	}
	if cur != nil {
		*cur = e
	} else {
		m.tree.insert(item{key, e})
	}
}

// unindex drops from m.ttl the expiring entries of key (cur is its entry in
// the tree) that kept does not hold with an expiry.
func (m *Map) unindex(key string, cur *entry, kept []entry) {
	var buf [4]entry
	for _, o := range m.entries(key, cur, buf[:0]) {
		if o.rep&ttlBit == 0 {
			continue
		}
		stays := false
		for _, k := range kept {
			if k.dk() == o.dk() && k.rep&ttlBit != 0 {
				stays = true
				break
			}
		}
		if !stays {
			m.ttl.remove(o.dk())
		}
	}
}

// remove deletes key and its entries; cur is key's entry in the tree.
func (m *Map) remove(key string, cur *entry) {
	m.touchKey(key)
	m.bytes -= len(key) + m.valueBytes(key, cur)
	if cur.rep&ttlBit != 0 {
		m.unindex(key, cur, nil)
	}
	if cur.rep&multiBit != 0 {
		delete(m.multi, key)
	}
	m.tree.delete(key)
}

func (m *Map) export(e entry) Entry {
	return Entry{
		Dot:     Dot{m.reps[e.ri()], e.ctr},
		Time:    e.ts(),
		Value:   []byte(e.val),
		Expires: m.expiry(e),
	}
}

// expiry returns when e expires, 0 if never. For the tree's copy of a key
// with siblings it is the expiry of the best one.
func (m *Map) expiry(e entry) int64 {
	if e.rep&ttlBit == 0 {
		return 0
	}
	exp, _ := m.ttl.get(e.dk())
	return exp
}

func (m *Map) dot(e entry) Dot { return Dot{m.reps[e.ri()], e.ctr} }

// mint returns the next counter of this replica and adds it to the context.
func (m *Map) mint() uint64 {
	c := m.ctx[0].max() + 1
	if c > maxCounter {
		panic("ormap: counter space exhausted")
	}
	if c == 1 {
		m.nIv++ // a counter of 1 starts the row; later ones extend it
	}
	m.ctx[0].add(c, c)
	m.touchRow(0)
	return c
}

// Set writes value under key with timestamp ts (normally from HLC.Now) and
// returns the delta to send to the other replicas. The write overwrites
// every entry of key this replica has seen, whatever their timestamps; a
// concurrent write elsewhere survives as a sibling. value is copied.
func (m *Map) Set(key string, value []byte, ts Timestamp) Delta {
	return m.SetTTL(key, value, ts, 0)
}

// SetTTL is Set for a value that expires ttl nanoseconds after ts.Wall: from
// then on (see Entry.Expired) reads at a time (Map.At) skip it and Expire
// removes it, on every replica, each by its own wall clock. ttl <= 0 means
// no expiry, as Set; an expiry past the end of time is cut to MaxInt64.
//
// Nothing else marks the expiry: no tombstone, no delete. The entry carries
// its expiry time, replicas drop it when their clock passes it, and the join
// rule keeps it dropped (its dot stays in the context). A later Set of the
// key, with or without a TTL, overwrites it like any value.
func (m *Map) SetTTL(key string, value []byte, ts Timestamp, ttl int64) Delta {
	exp, ok := expiryOf(ts.Wall, ttl)
	c := m.mint()
	e := entry{val: string(value), wall: ts.Wall, lg: ts.Logical, ctr: c}
	if ok {
		e.rep |= ttlBit
		m.ttl.add(key, e.dk(), exp)
	} else {
		exp = 0
	}
	var deps []Dot
	it := m.tree.get(key)
	if it != nil {
		var buf [4]entry
		for _, o := range m.entries(key, it, buf[:0]) {
			deps = append(deps, m.dot(o))
		}
	}
	m.store(it, key, []entry{e})
	return Delta{
		origin: m.reps[0],
		ctx:    contextOf(append([]Dot{{m.reps[0], c}}, deps...)),
		deps:   contextOf(deps),
		groups: []group{{key: key, ents: []dentry{{rep: m.reps[0], ctr: c, val: e.val, ts: ts, exp: exp}}}},
	}
}

// Delete removes key and returns the delta to send. Observed-remove: it
// removes the entries this replica has seen; a concurrent Set elsewhere
// survives (add wins). If key has no value, nothing happens and ok is false.
func (m *Map) Delete(key string) (d Delta, ok bool) {
	it := m.tree.get(key)
	if it == nil {
		return Delta{}, false
	}
	c := m.mint()
	var deps []Dot
	var buf [4]entry
	for _, o := range m.entries(key, it, buf[:0]) {
		deps = append(deps, m.dot(o))
	}
	m.remove(key, it)
	return Delta{
		origin: m.reps[0],
		ctx:    contextOf(append([]Dot{{m.reps[0], c}}, deps...)),
		deps:   contextOf(deps),
		groups: []group{{key: key}},
	}, true
}

// Get returns the stored entry of key, ignoring expiry (see At): among concurrent siblings the one
// with the latest timestamp, then the greatest replica id (byte order), then
// the greatest counter. Every converged replica returns the same one.
func (m *Map) Get(key string) (Entry, bool) {
	it := m.tree.get(key)
	if it == nil {
		return Entry{}, false
	}
	return m.export(*it), true
}

// GetAll returns every stored sibling of key in Get's order (the first is
// Get's result), ignoring expiry; nil if key has no value.
func (m *Map) GetAll(key string) []Entry {
	it := m.tree.get(key)
	if it == nil {
		return nil
	}
	var buf [4]entry
	es := m.entries(key, it, buf[:0])
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = m.export(e)
	}
	return out
}

// Keys returns the keys starting with prefix, sorted, ignoring expiry.
func (m *Map) Keys(prefix string) []string {
	var out []string
	m.tree.ascend(prefix, func(key string, _ *entry) bool {
		if !strings.HasPrefix(key, prefix) {
			return false
		}
		out = append(out, key)
		return true
	})
	return out
}

// Scan iterates over the keys starting with prefix in sorted order, with
// their stored best entry, ignoring expiry (see At). The map must not be modified during the iteration.
func (m *Map) Scan(prefix string) iter.Seq2[string, Entry] {
	return func(yield func(string, Entry) bool) {
		m.tree.ascend(prefix, func(key string, e *entry) bool {
			return strings.HasPrefix(key, prefix) && yield(key, m.export(*e))
		})
	}
}

// Context returns the map's causal context: every dot it has seen. Equal
// contexts mean equal states (the "already in sync" check), and it is what
// a replica sends to ask a peer for a sync (see Diff).
func (m *Map) Context() Context {
	var c Context
	for i, iv := range m.ctx {
		if len(iv) > 0 {
			c.rows = append(c.rows, ctxRow{m.reps[i], slices.Clone(iv)})
		}
	}
	slices.SortFunc(c.rows, func(a, b ctxRow) int { return strings.Compare(string(a.r), string(b.r)) })
	return c
}
