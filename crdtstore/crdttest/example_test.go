package crdttest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
)

// Two stores on an in-memory network: what one writes, the other reads;
// a store opened later catches up by sync.
func Example() {
	net := crdttest.NewNetwork()
	a, err := crdtstore.OpenTransport(net.Transport("a"), crdtstore.Options{})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	if err := a.SetString("greeting", "hello"); err != nil {
		panic(err)
	}

	b, err := crdtstore.OpenTransport(net.Transport("b"), crdtstore.Options{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.WaitSynced(ctx); err != nil {
		panic(err)
	}
	v, _ := b.GetString("greeting")
	fmt.Println(v)
	// Output: hello
}
