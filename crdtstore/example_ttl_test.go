package crdtstore_test

import (
	"fmt"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
)

// A value set with a TTL disappears on every node once its write time plus
// the TTL has passed; watchers see it expire.
func ExampleStore_SetTTL() {
	kv, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("a"), crdtstore.Options{})
	if err != nil {
		panic(err)
	}
	defer kv.Close()
	w := kv.Watch("session/")
	defer w.Stop()

	if err := kv.SetTTL("session/42", []byte("token"), 50*time.Millisecond); err != nil {
		panic(err)
	}
	e, _ := kv.GetEntry("session/42")
	fmt.Println(string(e.Value), e.Expires.Sub(e.Time))

	<-w.Updates() // the Set
	c := <-w.Updates()
	_, ok := kv.Get("session/42")
	fmt.Println(c.Key, c.Deleted, c.Origin, ok)
	// Output:
	// token 50ms
	// session/42 true expired false
}

// GetEntry returns a value with its metadata.
func ExampleStore_GetEntry() {
	kv, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("a"), crdtstore.Options{})
	if err != nil {
		panic(err)
	}
	defer kv.Close()
	if err := kv.SetString("greeting", "hello"); err != nil {
		panic(err)
	}
	e, ok := kv.GetEntry("greeting")
	fmt.Println(ok, string(e.Value), e.Writer == kv.ReplicaID(), e.Siblings, e.Expires.IsZero(), time.Since(e.Time) < time.Minute)
	// Output: true hello true 1 true true
}

// Scan walks the keys under a prefix in order without copying the store.
func ExampleStore_Scan() {
	kv, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("a"), crdtstore.Options{})
	if err != nil {
		panic(err)
	}
	defer kv.Close()
	for _, name := range []string{"carol", "alice", "bob"} {
		if err := kv.SetString("user/"+name, name+"@example.com"); err != nil {
			panic(err)
		}
	}
	for key, value := range kv.Scan("user/") {
		fmt.Println(key, string(value))
	}
	// Output:
	// user/alice alice@example.com
	// user/bob bob@example.com
	// user/carol carol@example.com
}

// WithSnapshot delivers the current values, then a mark, then the changes.
func ExampleWithSnapshot() {
	kv, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("a"), crdtstore.Options{})
	if err != nil {
		panic(err)
	}
	defer kv.Close()
	if err := kv.SetString("config/color", "blue"); err != nil {
		panic(err)
	}
	w := kv.Watch("config/", crdtstore.WithSnapshot())
	defer w.Stop()
	if err := kv.SetString("config/size", "L"); err != nil {
		panic(err)
	}
	for c := range w.Updates() {
		if c.Origin == crdtstore.OriginSnapshotDone {
			fmt.Println("-- up to date --")
			continue
		}
		fmt.Println(c.Key, string(c.Value), c.Origin)
		if c.Origin == crdtstore.OriginLocal {
			break
		}
	}
	// Output:
	// config/color blue snapshot
	// -- up to date --
	// config/size L local
}
