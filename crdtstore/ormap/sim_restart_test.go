package ormap

import (
	"fmt"
	"iter"
	"maps"
	"slices"
	"testing"
	"time"
)

// diskKey names a record on a simulated disk.
type diskKey struct {
	kind RecordKind
	name string
}

// writeRecords applies m's changed records to disk, as an engine would: a
// record replaces the previous one of its kind and name, nil Data deletes.
func writeRecords(m *Map, disk map[diskKey][]byte) {
	m.TakeRecords(func(r Record) {
		if r.Data == nil {
			delete(disk, diskKey{r.Kind, r.Name})
		} else {
			disk[diskKey{r.Kind, r.Name}] = r.Data
		}
	})
}

// diskRecords yields the records of disk in the engine's order (by kind,
// then name).
func diskRecords(disk map[diskKey][]byte) iter.Seq[Record] {
	keys := slices.SortedFunc(maps.Keys(disk), func(a, b diskKey) int {
		if a.kind != b.kind {
			return int(a.kind) - int(b.kind)
		}
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	return func(yield func(Record) bool) {
		for _, k := range keys {
			if !yield(Record{Kind: k.kind, Name: k.name, Data: disk[k]}) {
				return
			}
		}
	}
}

// restoreCheck restores a map of self from disk and checks it against the
// live map m it was written from (same self: equal; a new self: the same
// entries and context plus nothing).
func restoreCheck(m *Map, self ReplicaID, disk map[diskKey][]byte) (*Map, RestoreStats, error) {
	r, st, err := Restore(self, diskRecords(disk))
	if err != nil {
		return nil, st, fmt.Errorf("restore: %w", err)
	}
	if err := r.verify(); err != nil {
		return nil, st, fmt.Errorf("restored map: %w", err)
	}
	if err := sameState(m, r); err != nil {
		return nil, st, fmt.Errorf("restored map differs from the live one: %w", err)
	}
	if r.Len() != m.Len() || r.Bytes() != m.Bytes() || r.Intervals() != m.Intervals() {
		return nil, st, fmt.Errorf("restored Len/Bytes/Intervals %d/%d/%d, live %d/%d/%d", r.Len(), r.Bytes(), r.Intervals(), m.Len(), m.Bytes(), m.Intervals())
	}
	if st.RepairedDots != 0 || st.FilledOwn != 0 {
		return nil, st, fmt.Errorf("records of a live map needed repairs: %+v", st)
	}
	var maxTime Timestamp
	for key := range m.Scan("") {
		for _, e := range m.GetAll(key) {
			if e.Time.Compare(maxTime) > 0 {
				maxTime = e.Time
			}
		}
	}
	if st.MaxTime != maxTime {
		return nil, st, fmt.Errorf("MaxTime %v, want %v", st.MaxTime, maxTime)
	}
	// The next Set mints a dot past every one of self's.
	if next := r.Context().Max(self) + 1; m.Context().Contains(Dot{self, next}) {
		return nil, st, fmt.Errorf("next dot %v already used", Dot{self, next})
	}
	return r, st, nil
}

// restarts writes every replica's records to its disk, then maybe restarts
// one of them from its disk, under its id or a new one. What it held back
// and had not flushed is lost, as in a crash; syncs bring it back.
func (s *sim) restarts() error {
	for _, r := range s.rs {
		writeRecords(r.m, r.disk)
	}
	if !s.rnd.chance(s.cfg.Restart) {
		return nil
	}
	i := s.rnd.intn(len(s.rs))
	r := s.rs[i]
	self := r.m.Replica()
	if s.rnd.chance(s.cfg.NewID) {
		self += "'"
		s.rep.NewIDs++
	}
	m, st, err := restoreCheck(r.m, self, r.disk)
	if err != nil {
		return fmt.Errorf("restart of replica %s as %s: %w", r.m.Replica(), self, err)
	}
	s.rep.Restarts++
	r.m = m
	// A new clock resumes past every restored write (and the wall clock).
	r.clock = HLC{MaxOffset: r.clock.MaxOffset}
	r.clock.Observe(st.MaxTime, s.wall(i))
	r.pending, r.dirty = Delta{}, false
	return nil
}

// TestSimulationRestarts: replicas restart from their records at random
// points, some under a new id, and the simulation still converges with no
// write lost or resurrected.
func TestSimulationRestarts(t *testing.T) {
	seeds := uint64(cases(400))
	start := time.Now()
	var total simReport
	for seed := uint64(1); seed <= seeds; seed++ {
		cfg := defaultSimConfig(seed)
		cfg.Restart, cfg.NewID = 0.03, 0.2
		if seed%4 == 0 {
			cfg.Replicas = 3
		}
		rep, err := simulate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		total.Restarts += rep.Restarts
		total.NewIDs += rep.NewIDs
		total.Expirations += rep.Expirations
		total.Deletes += rep.Deletes
	}
	if total.Restarts < int(seeds) || total.NewIDs == 0 || total.Expirations == 0 {
		t.Fatalf("too few restarts: %+v", total)
	}
	t.Logf("%d seeds in %v: %d restarts, %d under a new id", seeds, time.Since(start).Round(time.Millisecond), total.Restarts, total.NewIDs)
}

// TestRestartWorld: the simpler world (deltas joined in any order, Diff
// syncs, Merge) restarted at every step, compared with the live map.
func TestRestartWorld(t *testing.T) {
	for seed := uint64(1); seed <= uint64(cases(200)); seed++ {
		w := newWorld(seed, 3, 6)
		disks := make([]map[diskKey][]byte, len(w.ms))
		for i, m := range w.ms {
			m.TrackChanges()
			disks[i] = make(map[diskKey][]byte)
		}
		for step := 0; step < 60; step++ {
			w.step(t)
			if w.rng.IntN(4) == 0 {
				i := w.rng.IntN(len(w.ms))
				w.ms[i].Expire(int64(w.rng.IntN(10)), 0)
			}
			if w.rng.IntN(6) == 0 && len(w.deltas) > 1 {
				a, b := w.deltas[w.rng.IntN(len(w.deltas))], w.deltas[w.rng.IntN(len(w.deltas))]
				mustJoin(t, w.ms[w.rng.IntN(len(w.ms))], a.Merge(b))
			}
			i := w.rng.IntN(len(w.ms))
			writeRecords(w.ms[i], disks[i])
			m, _, err := restoreCheck(w.ms[i], w.ms[i].Replica(), disks[i])
			if err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			w.ms[i] = m
			writeRecords(m, disks[i]) // nothing: no repairs
			if len(disks[i]) != m.Len()+len(m.Context().Replicas()) {
				t.Fatalf("seed %d: disk holds %d records for %d keys and %d rows", seed, len(disks[i]), m.Len(), len(m.Context().Replicas()))
			}
		}
	}
}

// TestRestoreNewIdentity: a replica that lost its id comes back with its
// data under a new one; its old writes stay, its new writes get new dots,
// and peers converge with it.
func TestRestoreNewIdentity(t *testing.T) {
	a, b := New("a"), New("b")
	a.TrackChanges()
	disk := make(map[diskKey][]byte)
	da := a.Set("x", []byte("1"), ts(1, 0))
	a.Set("y", []byte("2"), ts(2, 0))
	mustJoin(t, b, da)
	writeRecords(a, disk)
	a2, _, err := Restore("a2", diskRecords(disk))
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := a2.Get("y"); e.Dot != (Dot{"a", 2}) || a2.Context().Max("a2") != 0 {
		t.Fatalf("restored under a new id: %v, %v", e, a2.Context())
	}
	d := a2.Set("z", []byte("3"), ts(3, 0))
	if d.Entries("z")[0].Dot != (Dot{"a2", 1}) {
		t.Fatalf("new write minted %v", d.Entries("z")[0].Dot)
	}
	mustJoin(t, b, b.Diff(Context{}).Merge(a2.Diff(b.Context())))
	mustJoin(t, a2, b.Diff(a2.Context()))
	requireSame(t, 0, "after a sync", a2, b)
}

// TestRestoreRepairs: records that lost a row (or part of it) are repaired:
// entry dots join the context, the own row becomes a prefix past every own
// dot, and the repaired rows are the first records taken.
func TestRestoreRepairs(t *testing.T) {
	a, b := New("a"), New("b")
	a.TrackChanges()
	disk := make(map[diskKey][]byte)
	for i := range 5 {
		a.Set(fmt.Sprint("a", i), []byte("v"), ts(int64(i), 0))
		mustJoin(t, a, b.Set(fmt.Sprint("b", i), []byte("w"), ts(int64(i), 1)))
	}
	writeRecords(a, disk)
	delete(disk, diskKey{RecordRow, "a"})
	delete(disk, diskKey{RecordRow, "b"})
	m, st, err := Restore("a", diskRecords(disk))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.verify(); err != nil {
		t.Fatal(err)
	}
	if st.RepairedDots != 10 || st.FilledOwn != 0 || st.Keys != 10 || st.Rows != 0 {
		t.Fatalf("stats %+v", st)
	}
	if got := m.Context().String(); got != "{a:1-5 b:1-5}" {
		t.Fatalf("context %s", got)
	}
	var rows []string
	m.TakeRecords(func(r Record) { rows = append(rows, string(r.Kind)+r.Name) })
	if !slices.Equal(rows, []string{"ra", "rb"}) {
		t.Fatalf("first records after repair: %v", rows)
	}
	// Own dots with holes below them: the row fills up to the highest.
	a.Delete("a0")
	a.Set("a1", []byte("again"), ts(9, 0)) // a:7
	writeRecords(a, disk)
	delete(disk, diskKey{RecordRow, "a"})
	m, st, err = Restore("a", diskRecords(disk))
	if err != nil {
		t.Fatal(err)
	}
	if st.FilledOwn != 3 || m.Context().Max("a") != 7 { // 1, 2 and 6: overwritten, deleted
		t.Fatalf("stats %+v, context %v", st, m.Context())
	}
	if d := m.Set("n", nil, ts(10, 0)); d.Entries("n")[0].Dot.Counter != 8 {
		t.Fatalf("next dot %v", d.Entries("n")[0].Dot)
	}
	if err := m.verify(); err != nil {
		t.Fatal(err)
	}
}
