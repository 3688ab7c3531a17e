package ormap

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// realDisk returns the records of a map of a random world (siblings,
// expiring entries, several replicas, holes) and the map.
func realDisk(t testing.TB) (*Map, map[diskKey][]byte) {
	w := newWorld(7, 3, 12)
	w.ms[0].TrackChanges()
	w.run(t, 80)
	for _, m := range w.ms[1:] { // concurrent writes: siblings
		m.Set("k1", []byte(m.Replica()), ts(5, 0))
		m.SetTTL("k2", []byte(m.Replica()), ts(5, 0), 100)
	}
	for _, m := range w.ms[1:] {
		mustJoin(t, w.ms[0], m.Diff(w.ms[0].Context()))
	}
	h := New("h") // a hole: h's third write arrives, not the first two
	h.Set("h1", nil, ts(1, 0))
	h.Set("h2", nil, ts(1, 1))
	mustJoin(t, w.ms[0], h.Set("h3", []byte("x"), ts(1, 2)))
	disk := make(map[diskKey][]byte)
	writeRecords(w.ms[0], disk)
	if len(w.ms[0].multi) == 0 || w.ms[0].ttl.len() == 0 || w.ms[0].Contiguous("h") {
		t.Fatal("the seed records lack siblings, expiries or holes")
	}
	return w.ms[0], disk
}

func TestRecordFormat(t *testing.T) {
	m := New("0123456789abcdef") // a 16-byte id, as the wrapper draws
	m.TrackChanges()
	key := benchKey(1) // 16 bytes
	m.Set(key, make([]byte, 100), Timestamp{Wall: 1_764_000_000_000_000_000, Logical: 3})
	var recs []Record
	m.TakeRecords(func(r Record) { recs = append(recs, r) })
	if len(recs) != 2 || recs[0].Kind != RecordRow || recs[1].Kind != RecordKey || recs[1].Name != key {
		t.Fatalf("records %v", recs)
	}
	if n := len(recs[1].Data); n > 150 {
		t.Fatalf("a 16 B key with a 100 B value and one entry takes %d B of Data", n)
	}
	if n := len(recs[0].Data); n != 4 {
		t.Fatalf("a row [1,1] takes %d B", n)
	}
	t.Logf("key record %d B, row record %d B", len(recs[1].Data), len(recs[0].Data))
	m.TakeRecords(func(r Record) { t.Fatalf("record %v taken twice", r) })
	// A TTL costs the TTL's varint; a Delete gives a nil Data.
	m.SetTTL(key, make([]byte, 100), Timestamp{Wall: 1_764_000_000_000_000_000}, 60e9)
	m.Delete(key)
	recs = recs[:0]
	m.TakeRecords(func(r Record) { recs = append(recs, r) })
	if len(recs) != 2 || recs[1].Data != nil || string(recs[0].Data) != "\x01\x01\x00\x02" {
		t.Fatalf("after a delete: %q", recs)
	}
	// Off by default: nothing tracked.
	u := New("u")
	u.Set("k", nil, Timestamp{})
	u.TakeRecords(func(r Record) { t.Fatalf("untracked map gave %v", r) })
	if u.dirty.keys != nil {
		t.Fatal("tracking allocated without TrackChanges")
	}
}

// TestRestoreCorrupt: every truncation of every record, unknown kinds and
// versions, empty and duplicated records, and a dot live twice give
// ErrCorruptRecord naming the record; nothing panics.
func TestRestoreCorrupt(t *testing.T) {
	_, disk := realDisk(t)
	try := func(what string, mod func(d map[diskKey][]byte), recs ...Record) error {
		t.Helper()
		d := make(map[diskKey][]byte, len(disk))
		for k, v := range disk {
			d[k] = v
		}
		if mod != nil {
			mod(d)
		}
		seq := diskRecords(d)
		if recs != nil {
			seq = func(yield func(Record) bool) {
				for r := range diskRecords(d) {
					if !yield(r) {
						return
					}
				}
				for _, r := range recs {
					if !yield(r) {
						return
					}
				}
			}
		}
		m, _, err := Restore("a", seq)
		if err == nil {
			if m.verify() != nil {
				t.Fatalf("%s: restored a broken map", what)
			}
			return nil
		}
		if m != nil {
			t.Fatalf("%s: a map and an error", what)
		}
		return err
	}
	want := func(err error, sentinel error, name string) {
		t.Helper()
		if !errors.Is(err, sentinel) || !strings.Contains(err.Error(), name) {
			t.Fatalf("got %v, want %v naming %s", err, sentinel, name)
		}
	}
	n := 0
	for k, v := range disk {
		name := fmt.Sprintf("%q", k.name)
		for cut := 0; cut < len(v); cut++ {
			err := try("truncated", func(d map[diskKey][]byte) { d[k] = v[:cut] })
			want(err, ErrCorruptRecord, name)
			n++
		}
		want(try("trailing", func(d map[diskKey][]byte) { d[k] = append(v[:len(v):len(v)], 0) }), ErrCorruptRecord, name)
		bad := append([]byte{2}, v[1:]...)
		want(try("version", func(d map[diskKey][]byte) { d[k] = bad }), ErrCorruptRecord, name)
		// Flipped bits: an error or a valid map, never a panic.
		for i := range v {
			flipped := append([]byte(nil), v...)
			flipped[i] ^= 0x41
			if err := try("flipped", func(d map[diskKey][]byte) { d[k] = flipped }); err != nil && !errors.Is(err, ErrCorruptRecord) && !errors.Is(err, ErrBounds) {
				t.Fatalf("flipped byte %d of %v: %v", i, k, err)
			}
		}
	}
	t.Logf("%d records, %d truncations refused", len(disk), n)

	want(try("unknown kind", nil, Record{Kind: 'x', Name: "n", Data: []byte{1}}), ErrCorruptRecord, `"n"`)
	want(try("duplicate key", nil, Record{Kind: RecordKey, Name: "k0", Data: disk[diskKey{RecordKey, "k0"}]}), ErrCorruptRecord, `key record "k0"`)
	want(try("duplicate row", nil, Record{Kind: RecordRow, Name: "b", Data: disk[diskKey{RecordRow, "b"}]}), ErrCorruptRecord, `row record "b"`)
	want(try("empty row name", nil, Record{Kind: RecordRow, Name: "", Data: []byte{1, 1, 0, 0}}), ErrCorruptRecord, `row record ""`)
	want(try("empty row", nil, Record{Kind: RecordRow, Name: "q", Data: []byte{1, 0}}), ErrCorruptRecord, `row record "q"`)
	want(try("nil data", nil, Record{Kind: RecordKey, Name: "z"}), ErrCorruptRecord, `key record "z"`)
	// A dot live under two keys.
	var some []byte
	for k, v := range disk {
		if k.kind == RecordKey {
			some = v
			break
		}
	}
	want(try("dot twice", nil, Record{Kind: RecordKey, Name: "zzz", Data: some}), ErrCorruptRecord, `"zzz"`)
	// Counter out of range, expiry 0.
	want(try("counter", nil, Record{Kind: RecordRow, Name: "q", Data: []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0}}), ErrCorruptRecord, `"q"`)
	rec := append([]byte{1, 1, 1, 'q', 1, 1, 3, 1}, 0) // wall -1, expires, TTL 1 → expiry 0
	want(try("expiry 0", nil, Record{Kind: RecordKey, Name: "e", Data: rec}), ErrCorruptRecord, `"e"`)
	long := strings.Repeat("n", 300)
	if err := try("long name", nil, Record{Kind: RecordRow, Name: long, Data: []byte{1, 1, 0, 0}}); !errors.Is(err, ErrCorruptRecord) || len(err.Error()) > 200 {
		t.Fatalf("long replica id: %v", err)
	}
}

// TestRestoreBounds: more replicas than the bounds allow is ErrBounds.
func TestRestoreBounds(t *testing.T) {
	rows := func(n int) func(func(Record) bool) {
		return func(yield func(Record) bool) {
			for i := range n {
				if !yield(Record{Kind: RecordRow, Name: fmt.Sprintf("r%05d", i), Data: []byte{1, 1, 0, 0}}) {
					return
				}
			}
		}
	}
	if _, _, err := Restore("a", rows(DefaultMaxReplicas-1)); err != nil {
		t.Fatalf("within the bounds: %v", err)
	}
	if _, _, err := Restore("a", rows(DefaultMaxReplicas)); !errors.Is(err, ErrBounds) {
		t.Fatalf("beyond the bounds: %v", err)
	}
	// Intervals: one row of many holes.
	row := appendRowRecord(nil, func() ivs {
		var s ivs
		for i := uint64(0); i <= DefaultMaxIntervals; i++ {
			s = append(s, Interval{2*i + 1, 2*i + 1})
		}
		return s
	}())
	if _, _, err := Restore("a", func(yield func(Record) bool) { yield(Record{Kind: RecordRow, Name: "b", Data: row}) }); !errors.Is(err, ErrBounds) {
		t.Fatalf("too many intervals: %v", err)
	}
}

// FuzzRestoreRecord: a fuzzed record among real ones, or alone: Restore
// never panics, and what it restores passes verify.
func FuzzRestoreRecord(f *testing.F) {
	_, disk := realDisk(f)
	for k, v := range disk {
		f.Add(byte(k.kind), k.name, v, false)
		f.Add(byte(k.kind), k.name+"x", v, true)
	}
	f.Add(byte('k'), "", []byte{1}, true)
	f.Add(byte('r'), "a", []byte{1, 1, 0, 0}, false)
	f.Fuzz(func(t *testing.T, kind byte, name string, data []byte, alone bool) {
		d := make(map[diskKey][]byte, len(disk)+1)
		if !alone {
			for k, v := range disk {
				d[k] = v
			}
		}
		d[diskKey{RecordKind(kind), name}] = data
		m, st, err := Restore("a", diskRecords(d))
		if err != nil {
			if !errors.Is(err, ErrCorruptRecord) && !errors.Is(err, ErrBounds) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if err := m.verify(); err != nil {
			t.Fatalf("restored map broken: %v (%+v)", err, st)
		}
		// What it restored it writes back, and that restores the same.
		m.TrackChanges()
		m.tree.ascend("", func(key string, _ *entry) bool { m.touchKey(key); return true })
		for i := range m.reps {
			if len(m.ctx[i]) > 0 {
				m.touchRow(uint32(i))
			}
		}
		again := make(map[diskKey][]byte)
		writeRecords(m, again)
		if _, _, err := restoreCheck(m, "a", again); err != nil {
			t.Fatal(err)
		}
	})
}
