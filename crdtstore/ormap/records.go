package ormap

import (
	"encoding/binary"
	"slices"
	"strings"
)

// RecordKind says what a Record holds.
type RecordKind byte

const (
	// RecordKey: Name is a key; Data holds every entry of the key (all
	// siblings: dot, HLC time, expiry, value).
	RecordKey RecordKind = 'k'
	// RecordRow: Name is a replica id's bytes; Data holds that replica's
	// whole row of the causal context.
	RecordRow RecordKind = 'r'
)

// Record is one persisted record of a Map's state (see Map.TakeRecords and
// Restore). Data == nil means "delete this record": the key has no entry
// left. A row is never deleted (a context only grows).
type Record struct {
	Kind RecordKind
	Name string
	Data []byte
}

// recordVersion is the first byte of every record's Data.
//
//	row record  version, n ≥ 1, then n intervals as in a context row of
//	            the wire format: (lo-1, hi-lo) first, then
//	            (lo-prevHi-2, hi-lo)
//	key record  version, m ≥ 1, then m entries in Get's order:
//	            replica id (length, bytes), counter, wall (zig-zag),
//	            logical<<1 | expires, [TTL = Expires - wall, if expires],
//	            value (length, bytes)
const recordVersion = 1

// tracker remembers which keys' entry sets and which context rows changed
// since the last TakeRecords. Nil maps: tracking is off.
type tracker struct {
	keys map[string]struct{}
	rows map[uint32]struct{}
}

// TrackChanges makes m remember which keys' entry sets and which context
// rows change, for TakeRecords. It is off by default (no cost until called)
// and costs O(1) per mutation once on. A Map made by Restore tracks
// already. Calling it again does nothing.
func (m *Map) TrackChanges() {
	if m.dirty.keys == nil {
		m.dirty.keys = make(map[string]struct{})
		m.dirty.rows = make(map[uint32]struct{})
	}
}

// touchKey notes that key's entries changed (store, remove).
func (m *Map) touchKey(key string) {
	if m.dirty.keys != nil {
		m.dirty.keys[key] = struct{}{}
	}
}

// touchRow notes that the context row of local replica i changed.
func (m *Map) touchRow(i uint32) {
	if m.dirty.rows != nil {
		m.dirty.rows[i] = struct{}{}
	}
}

// TakeRecords calls fn with a Record for each context row and each key
// changed since the last call (or since TrackChanges or Restore): rows
// first, sorted by replica id, then keys, sorted; a key with no entry left
// gets Data nil. Then it forgets them. Each Data is freshly encoded (fn may
// keep it); fn must not modify m. Writing every record, in order, over the
// previous ones (a key-value engine keyed by Kind and Name) keeps a copy
// that Restore turns back into m, without the deltas m holds back
// (Pending): a sync brings those again. Without TrackChanges it does
// nothing.
func (m *Map) TakeRecords(fn func(Record)) {
	if len(m.dirty.rows) > 0 {
		rows := make([]uint32, 0, len(m.dirty.rows))
		for i := range m.dirty.rows {
			rows = append(rows, i)
		}
		slices.SortFunc(rows, func(a, b uint32) int { return strings.Compare(string(m.reps[a]), string(m.reps[b])) })
		for _, i := range rows {
			fn(Record{Kind: RecordRow, Name: string(m.reps[i]), Data: appendRowRecord(nil, m.ctx[i])})
		}
		clear(m.dirty.rows)
	}
	if len(m.dirty.keys) > 0 {
		keys := make([]string, 0, len(m.dirty.keys))
		for k := range m.dirty.keys {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			rec := Record{Kind: RecordKey, Name: k}
			if it := m.tree.get(k); it != nil {
				rec.Data = m.appendKeyRecord(nil, k, it)
			}
			fn(rec)
		}
		if len(keys) > 1024 {
			// clear costs the map's capacity on every later call: after a
			// large sync, start small again.
			m.dirty.keys = make(map[string]struct{})
		} else {
			clear(m.dirty.keys)
		}
	}
}

// appendRowRecord encodes a context row.
func appendRowRecord(b []byte, row ivs) []byte {
	return appendIntervals(append(b, recordVersion), row)
}

// appendKeyRecord encodes the entries of key; cur is its entry in the tree.
func (m *Map) appendKeyRecord(b []byte, key string, cur *entry) []byte {
	var buf [4]entry
	es := m.entries(key, cur, buf[:0])
	n := 2
	for _, e := range es {
		n += len(m.reps[e.ri()]) + len(e.val) + 32
	}
	b = slices.Grow(b, n)
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(len(es)))
	for _, e := range es {
		b = appendString(b, string(m.reps[e.ri()]))
		b = binary.AppendUvarint(b, e.ctr)
		b = binary.AppendVarint(b, e.wall)
		if exp := m.expiry(e); exp == 0 {
			b = binary.AppendUvarint(b, uint64(e.lg)<<1)
		} else {
			b = binary.AppendUvarint(b, uint64(e.lg)<<1|1)
			b = binary.AppendUvarint(b, uint64(exp)-uint64(e.wall))
		}
		b = appendString(b, e.val)
	}
	return b
}
