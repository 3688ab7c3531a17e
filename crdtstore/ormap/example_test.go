package ormap_test

import (
	"fmt"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// Two replicas: one writes, the other joins the delta it was sent.
func Example() {
	a, b := ormap.New("replica-a"), ormap.New("replica-b")
	var clock ormap.HLC // one per replica; the wall clock is passed in

	d := a.Set("greeting", []byte("hello"), clock.Now(1_000))
	frame := ormap.EncodeDelta(d) // what goes on the pubsub topic

	got, err := ormap.DecodeDelta(frame, ormap.Limits{})
	if err != nil {
		panic(err)
	}
	if b.HasGap(got) {
		fmt.Println("would pull a sync")
	}
	changes, err := b.Join(got)
	if err != nil {
		panic(err)
	}
	for _, c := range changes {
		fmt.Printf("changed %s = %s\n", c.Key, c.Entry.Value)
	}
	e, _ := b.Get("greeting")
	fmt.Printf("%s from %s, context %v\n", e.Value, e.Dot.Replica, b.Context())
	// Output:
	// changed greeting = hello
	// hello from replica-a, context {replica-a:1}
}

// Concurrent writes are siblings; Get picks one the same way everywhere. A
// Delete removes only what its replica had seen: the concurrent Set wins.
func Example_conflicts() {
	a, b := ormap.New("a"), ormap.New("b")
	da := a.Set("color", []byte("red"), ormap.Timestamp{Wall: 10})
	db := b.Set("color", []byte("blue"), ormap.Timestamp{Wall: 20})
	a.Join(db)
	b.Join(da)
	for i, e := range a.GetAll("color") {
		if i > 0 {
			fmt.Print(" ")
		}
		fmt.Printf("%s@%v", e.Value, e.Time)
	}
	fmt.Println()

	del, _ := a.Delete("color")                                        // removes red and blue
	again := b.Set("color", []byte("green"), ormap.Timestamp{Wall: 5}) // concurrent
	a.Join(again)
	b.Join(del)
	ea, _ := a.Get("color")
	eb, _ := b.Get("color")
	fmt.Println(string(ea.Value), string(eb.Value))
	// Output:
	// blue@20.0 red@10.0
	// green green
}

// The sync exchange between two replicas that were apart: A sends its
// context; B answers with what A lacks (Diff) and its own context; A joins
// and answers symmetrically. Replies cost what changed, not the store.
func Example_sync() {
	a, b := ormap.New("a"), ormap.New("b")
	for i := range 1000 {
		b.Join(a.Set(fmt.Sprintf("key/%04d", i), []byte("value"), ormap.Timestamp{Wall: int64(i)}))
	}
	// Apart: B changes 3 keys and deletes 1; A writes 1.
	for i := range 3 {
		b.Set(fmt.Sprintf("key/%04d", i), []byte("new"), ormap.Timestamp{Wall: 2000})
	}
	b.Delete("key/0500")
	a.Set("key/0999", []byte("mine"), ormap.Timestamp{Wall: 3000})

	// 1. A -> B: A's context.
	req := ormap.EncodeContext(a.Context())
	cA, _ := ormap.DecodeContext(req, ormap.Limits{})
	if b.Context().Equal(cA) {
		return // in sync: one round trip
	}
	// 2. B -> A: what A lacks, and B's context.
	reply := ormap.EncodeDelta(b.Diff(cA))
	cB := b.Context()
	d, _ := ormap.DecodeDelta(reply, ormap.Limits{})
	changes, _ := a.Join(d)
	// 3. A -> B: what B lacks, against B's context.
	answer := ormap.EncodeDelta(a.Diff(cB))
	d, _ = ormap.DecodeDelta(answer, ormap.Limits{})
	b.Join(d)

	fmt.Printf("request %d B, reply %d B, answer %d B\n", len(req), len(reply), len(answer))
	fmt.Println(len(changes), "changes at A; in sync:", a.Context().Equal(b.Context()), a.Len(), b.Len())
	// Output:
	// request 11 B, reply 69 B, answer 48 B
	// 4 changes at A; in sync: true 999 999
}

// A new replica gets everything with the Diff of the empty context.
func ExampleMap_Diff_snapshot() {
	a := ormap.New("a")
	a.Set("x", []byte("1"), ormap.Timestamp{})
	a.Set("y", []byte("2"), ormap.Timestamp{})
	a.Delete("x")

	joiner := ormap.New("new")
	joiner.Join(a.Diff(ormap.Context{}))
	fmt.Println(joiner.Keys(""), joiner.Context())
	// Output: [y] {a:1-3}
}
