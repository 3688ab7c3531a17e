package ormap

import "testing"

// The helpers the store's replica lag reads: Ready, PendingFrom,
// Contiguous and NewestWrites.
func TestLagHelpers(t *testing.T) {
	a, b := New("a"), New("b")
	d1 := a.Set("k", []byte("1"), Timestamp{Wall: 10})
	d2 := a.Set("k", []byte("2"), Timestamp{Wall: 20}) // overwrites d1
	d3 := a.Set("x", []byte("3"), Timestamp{Wall: 30})
	if b.Ready(d2) || !b.Ready(d1) {
		t.Fatal("d2 needs d1; d1 needs nothing")
	}
	if _, err := b.JoinFrom(d2, 0, "pa"); err != nil {
		t.Fatal(err)
	}
	if b.PendingFrom("pa") != 1 || b.PendingFrom("other") != 0 {
		t.Fatalf("held: %d from pa", b.PendingFrom("pa"))
	}
	if _, err := b.Join(d3); err != nil { // ready, but after a hole
		t.Fatal(err)
	}
	if b.Contiguous("a") || !b.Contiguous("unknown") {
		t.Fatal("a's row has a hole")
	}
	if _, err := b.Join(d1); err != nil {
		t.Fatal(err)
	}
	if b.PendingFrom("pa") != 0 || !b.Contiguous("a") {
		t.Fatalf("after d1: %d held, contiguous %v", b.PendingFrom("pa"), b.Contiguous("a"))
	}
	got := map[ReplicaID]int64{}
	d := b.Diff(Context{})
	d.NewestWrites(func(r ReplicaID, ts Timestamp) { got[r] = ts.Wall })
	if len(got) != 1 || got["a"] != 30 {
		t.Fatalf("NewestWrites: %v", got)
	}
	if want := len("k") + len("2") + len("x") + len("3"); b.Bytes() != want {
		t.Fatalf("Bytes %d, want %d", b.Bytes(), want)
	}
	if err := b.verify(); err != nil {
		t.Fatal(err)
	}
}
