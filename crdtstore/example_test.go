package crdtstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
)

// Two programs that share a store: one sets a value, the other,
// started later with the same secret, reads it. On a LAN they find each
// other by mDNS; in this test they listen on loopback and the second is
// pointed at the first.
func Example() {
	cfg := node.Config{
		Key:         "example store secret",
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		DisableMDNS: true,
	}

	// Program 1.
	writer, err := crdtstore.New(cfg)
	if err != nil {
		panic(err)
	}
	defer writer.Close()
	if err := writer.SetString("greeting", "hello from program 1"); err != nil {
		panic(err)
	}

	// Program 2.
	cfg.BootstrapPeers = []string{writer.Node().Addrs()[0].String()}
	reader, err := crdtstore.New(cfg)
	if err != nil {
		panic(err)
	}
	defer reader.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reader.WaitSynced(ctx); err != nil { // the latest state, at once
		panic(err)
	}
	v, _ := reader.GetString("greeting")
	fmt.Println(v)
	// Output: hello from program 1
}

// Watch reports changes made anywhere in the mesh.
func ExampleStore_Watch() {
	cfg := node.Config{Key: "example watch secret", ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, DisableMDNS: true}
	a, err := crdtstore.New(cfg)
	if err != nil {
		panic(err)
	}
	defer a.Close()
	cfg.BootstrapPeers = []string{a.Node().Addrs()[0].String()}
	b, err := crdtstore.New(cfg)
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitSynced(ctx); err != nil {
		panic(err)
	}

	w := a.Watch("config/")
	defer w.Stop()
	if err := b.SetString("config/color", "blue"); err != nil {
		panic(err)
	}
	c := <-w.Updates()
	fmt.Println(c.Key, string(c.Value), c.Origin)
	// Output: config/color blue remote
}
