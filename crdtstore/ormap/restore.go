package ormap

import (
	"cmp"
	"fmt"
	"iter"
	"math"
	"slices"
)

// RestoreStats reports what Restore read and repaired.
type RestoreStats struct {
	Keys    int // key records
	Entries int // entries of those keys, siblings included
	Rows    int // context row records
	// RepairedDots counts entry dots the restored context did not hold:
	// Restore added them (every live dot is in the context). A store that
	// wrote every record TakeRecords gave it has none.
	RepairedDots int
	// FilledOwn counts counters of the map's own replica that Restore
	// added to make its own row [1, n] (it mints n+1 next): holes in what
	// was read. Zero for records TakeRecords gave.
	FilledOwn uint64
	// MaxTime is the latest timestamp of any restored entry: the caller's
	// HLC should Observe it, so later writes order after the restored ones.
	MaxTime Timestamp
}

// Restore rebuilds a map of replica self from records: those TakeRecords
// produced, as a key-value engine holds them after writing each over the
// previous one of the same Kind and Name and applying the deletes (each
// Kind and Name at most once; any order). It copies what it keeps from
// each Data.
//
// The records may hold rows of any replica and entries written by any
// replica, self included (the usual restart) or not (self is a new id, the
// old one's writes become another replica's). Restore restores the
// invariants: every entry's dot joins the context if it is missing
// (RestoreStats.RepairedDots), and self's own row becomes [1, n] with n
// past every own dot of the row and of the entries, so the next Set mints
// a dot never used (RestoreStats.FilledOwn). The rows it repaired are
// marked changed: the map tracks changes (see TrackChanges) and its first
// TakeRecords writes them.
//
// It checks everything it decodes and returns an error wrapping
// ErrCorruptRecord, naming the record, for anything malformed; ErrBounds if
// the records hold more replicas or context intervals than the default
// Bounds allow. It never panics on records; like New, it panics on an
// invalid self. The map has the default Bounds and holds no deltas back.
func Restore(self ReplicaID, recs iter.Seq[Record]) (*Map, RestoreStats, error) {
	m := New(self)
	var st RestoreStats
	var rowSeen []bool
	var dots []dotKey
	var buf []entry
	var lastKey string
	var err error
	for rec := range recs {
		switch rec.Kind {
		case RecordRow:
			var iv ivs
			var i uint32
			if iv, err = decodeRowRecord(rec.Data); err == nil {
				i, err = m.internRestored(ReplicaID(rec.Name))
			}
			if err != nil {
				break
			}
			for int(i) >= len(rowSeen) {
				rowSeen = append(rowSeen, false)
			}
			if rowSeen[i] {
				err = fmt.Errorf("%w: duplicate record", ErrCorruptRecord)
				break
			}
			rowSeen[i] = true
			m.ctx[i] = iv
			st.Rows++
		case RecordKey:
			// Keys in order (as an engine yields them) need no lookup.
			if (st.Keys == 0 || rec.Name <= lastKey) && m.tree.get(rec.Name) != nil {
				err = fmt.Errorf("%w: duplicate record", ErrCorruptRecord)
				break
			}
			if buf, err = m.decodeKeyRecord(rec.Name, rec.Data, buf[:0]); err != nil {
				break
			}
			for _, e := range buf {
				dots = append(dots, e.dk())
				if e.ts().Compare(st.MaxTime) > 0 {
					st.MaxTime = e.ts()
				}
			}
			m.sortEntries(buf)
			m.store(nil, rec.Name, buf)
			lastKey = max(lastKey, rec.Name)
			st.Keys++
			st.Entries += len(buf)
		default:
			err = fmt.Errorf("%w: unknown record kind %#x", ErrCorruptRecord, byte(rec.Kind))
		}
		if err != nil {
			return nil, RestoreStats{}, fmt.Errorf("restoring %s: %w", recordName(rec), err)
		}
	}

	// No dot is live twice.
	slices.SortFunc(dots, func(a, b dotKey) int {
		if a.rep != b.rep {
			return cmp.Compare(a.rep, b.rep)
		}
		return cmp.Compare(a.ctr, b.ctr)
	})
	for i := 1; i < len(dots); i++ {
		if dots[i] == dots[i-1] {
			return nil, RestoreStats{}, m.dupDotError(dots[i])
		}
	}
	// Every live dot is in the context.
	repaired := make(map[uint32]bool)
	for _, d := range dots {
		if !m.ctx[d.rep].contains(d.ctr) {
			m.ctx[d.rep].add(d.ctr, d.ctr)
			st.RepairedDots++
			repaired[d.rep] = true
		}
	}
	// Our own row is a prefix [1, n]: the next Set mints n+1.
	if own := m.ctx[0]; len(own) > 1 || len(own) == 1 && own[0].Lo != 1 {
		n := own.max()
		st.FilledOwn = n - own.size()
		m.ctx[0] = ivs{{1, n}}
		repaired[0] = true
	}
	m.nIv = 0
	for _, iv := range m.ctx {
		m.nIv += len(iv)
	}
	if m.nIv > m.bounds.MaxIntervals {
		return nil, RestoreStats{}, fmt.Errorf("%w: restoring %d context intervals (limit %d)", ErrBounds, m.nIv, m.bounds.MaxIntervals)
	}
	m.TrackChanges()
	for i := range repaired {
		m.touchRow(i)
	}
	return m, st, nil
}

// recordName names a record in errors: its kind and name, cut to 64 bytes.
func recordName(rec Record) string {
	kind := fmt.Sprintf("record of kind %#x", byte(rec.Kind))
	switch rec.Kind {
	case RecordKey:
		kind = "key record"
	case RecordRow:
		kind = "row record"
	}
	name := rec.Name
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return fmt.Sprintf("%s %q", kind, name)
}

// internRestored interns replica r named by a record, within the bounds.
func (m *Map) internRestored(r ReplicaID) (uint32, error) {
	if i, ok := m.repIdx[r]; ok {
		return i, nil
	}
	switch {
	case r == "" || len(r) > MaxReplicaIDLen:
		return 0, fmt.Errorf("%w: replica id of %d bytes", ErrCorruptRecord, len(r))
	case len(m.reps) >= m.bounds.MaxReplicas:
		return 0, fmt.Errorf("%w: more than %d replicas", ErrBounds, m.bounds.MaxReplicas)
	}
	return m.intern(r), nil
}

// dupDotError names the keys that hold dot d (an error path: a full scan).
func (m *Map) dupDotError(d dotKey) error {
	var keys []string
	m.tree.ascend("", func(key string, cur *entry) bool {
		var buf [4]entry
		for _, e := range m.entries(key, cur, buf[:0]) {
			if e.dk() == d {
				keys = append(keys, key)
				break
			}
		}
		return len(keys) < 2
	})
	return fmt.Errorf("restoring: %w: dot %v live under key records %q", ErrCorruptRecord, Dot{m.reps[d.rep], d.ctr}, keys)
}

// recordReader returns a reader of a record's Data after its version byte.
func recordReader(data []byte) (*reader, error) {
	switch {
	case len(data) == 0:
		return nil, fmt.Errorf("%w: empty", ErrCorruptRecord)
	case data[0] != recordVersion:
		return nil, fmt.Errorf("%w: unknown version %d", ErrCorruptRecord, data[0])
	}
	return &reader{b: data[1:], lim: Limits{}.withDefaults(), version: wireTTL}, nil
}

// corrupt turns a reader's error into an ErrCorruptRecord.
func corrupt(err error) error {
	return fmt.Errorf("%w: %v", ErrCorruptRecord, err)
}

// decodeRowRecord decodes a context row: canonical intervals, at least one.
func decodeRowRecord(data []byte) (ivs, error) {
	r, err := recordReader(data)
	if err != nil {
		return nil, err
	}
	n := r.count(math.MaxInt, 2, "intervals")
	if r.err == nil && n == 0 {
		r.fail(ErrMalformed, "empty row")
	}
	var iv ivs
	if r.err == nil {
		iv = r.intervals(n)
	}
	r.end(nil)
	if r.err != nil {
		return nil, corrupt(r.err)
	}
	return iv, nil
}

// decodeKeyRecord decodes the entries of key, appending them to buf with
// their replicas interned (within the bounds) and their expiries indexed.
func (m *Map) decodeKeyRecord(key string, data []byte, buf []entry) ([]entry, error) {
	r, err := recordReader(data)
	if err != nil {
		return buf, err
	}
	n := r.count(math.MaxInt, minEntrySize+1, "entries")
	if r.err == nil && n == 0 {
		r.fail(ErrMalformed, "no entries")
	}
	for k := 0; k < n && r.err == nil; k++ {
		id := ReplicaID(r.str(MaxReplicaIDLen, "replica id"))
		ctr := r.uv()
		wall := r.sv()
		lg := r.uv()
		var exp int64
		if lg&1 != 0 {
			exp = r.expiry(wall)
		}
		lg >>= 1
		val := r.str(math.MaxInt, "value")
		switch {
		case r.err != nil:
		case id == "":
			r.fail(ErrMalformed, "empty replica id")
		case ctr == 0 || ctr > maxCounter:
			r.fail(ErrMalformed, "counter %d out of range", ctr)
		case lg > math.MaxUint32:
			r.fail(ErrMalformed, "logical clock %d out of range", lg)
		}
		if r.err != nil {
			break
		}
		ri, err := m.internRestored(id)
		if err != nil {
			return buf, err
		}
		// A dot twice, here or under another key, is found by Restore.
		e := entry{val: val, wall: wall, lg: uint32(lg), ctr: ctr, rep: ri}
		if exp != 0 {
			e.rep |= ttlBit
			m.ttl.add(key, e.dk(), exp) // the map is dropped if an error follows
		}
		buf = append(buf, e)
	}
	r.end(nil)
	if r.err != nil {
		return buf, corrupt(r.err)
	}
	return buf, nil
}
