package ormap

import (
	"iter"
	"slices"
	"strings"
)

// Entry is one value of a key: the write that produced it (its dot), the
// writer's HLC timestamp, and the bytes. Value is the caller's own copy.
type Entry struct {
	Dot   Dot
	Time  Timestamp
	Value []byte
}

// entry is the stored form of an Entry (40 bytes). rep is the local replica
// index; in the tree's copy its multiBit is set when the key has siblings.
type entry struct {
	val  string
	wall int64
	ctr  uint64
	rep  uint32
	lg   uint32
}

const multiBit = 1 << 31

func (e entry) ts() Timestamp { return Timestamp{e.wall, e.lg} }

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

	pending []Delta // joined deltas waiting for their deps, oldest first
}

// MaxPending is how many deltas a Map holds back while it waits for the
// dots they overwrote; past it the oldest is dropped (a sync recovers it).
const MaxPending = 1024

// New returns an empty map for replica self. It panics if self is empty or
// longer than MaxReplicaIDLen: ids are chosen by the program, not by peers.
func New(self ReplicaID) *Map {
	if self == "" || len(self) > MaxReplicaIDLen {
		panic("ormap: invalid replica id")
	}
	m := &Map{repIdx: make(map[ReplicaID]uint32), multi: make(map[string][]entry)}
	m.intern(self)
	return m
}

// Replica returns the replica id the map mints dots for.
func (m *Map) Replica() ReplicaID { return m.reps[0] }

// Len returns the number of keys with a value.
func (m *Map) Len() int { return m.tree.len }

func (m *Map) intern(r ReplicaID) uint32 {
	if i, ok := m.repIdx[r]; ok {
		return i
	}
	i := uint32(len(m.reps))
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
	ra, rb := m.reps[a.rep&^multiBit], m.reps[b.rep&^multiBit]
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
// key's entry in the tree, or nil to insert the key.
func (m *Map) store(cur *entry, key string, es []entry) {
	e := es[0]
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

// remove deletes key and its entries; cur is key's entry in the tree.
func (m *Map) remove(key string, cur *entry) {
	if cur.rep&multiBit != 0 {
		delete(m.multi, key)
	}
	m.tree.delete(key)
}

func (m *Map) export(e entry) Entry {
	return Entry{
		Dot:   Dot{m.reps[e.rep&^multiBit], e.ctr},
		Time:  e.ts(),
		Value: []byte(e.val),
	}
}

func (m *Map) dot(e entry) Dot { return Dot{m.reps[e.rep&^multiBit], e.ctr} }

// mint returns the next counter of this replica and adds it to the context.
func (m *Map) mint() uint64 {
	c := m.ctx[0].max() + 1
	if c > maxCounter {
		panic("ormap: counter space exhausted")
	}
	m.ctx[0].add(c, c)
	return c
}

// Set writes value under key with timestamp ts (normally from HLC.Now) and
// returns the delta to send to the other replicas. The write overwrites
// every entry of key this replica has seen, whatever their timestamps; a
// concurrent write elsewhere survives as a sibling. value is copied.
func (m *Map) Set(key string, value []byte, ts Timestamp) Delta {
	c := m.mint()
	e := entry{val: string(value), wall: ts.Wall, lg: ts.Logical, ctr: c}
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
		groups: []group{{key: key, ents: []dentry{{rep: m.reps[0], ctr: c, val: e.val, ts: ts}}}},
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

// Get returns the visible entry of key: among concurrent siblings the one
// with the latest timestamp, then the greatest replica id (byte order), then
// the greatest counter. Every converged replica returns the same one.
func (m *Map) Get(key string) (Entry, bool) {
	it := m.tree.get(key)
	if it == nil {
		return Entry{}, false
	}
	return m.export(*it), true
}

// GetAll returns every sibling of key in Get's order (the first is Get's
// result); nil if key has no value.
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

// Keys returns the keys starting with prefix, sorted.
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
// their visible entry. The map must not be modified during the iteration.
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
