package node_test

import (
	"context"
	"fmt"
	"time"

	"github.com/reflectmesh/reflect/node"
)

// Two instances of an app with the same secret exchange a message. On a LAN
// they find each other by themselves; here, in a test, they listen on
// loopback and one connects to the other.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := node.Config{
		Key:         "example secret, use pnet.GenerateSecret for yours",
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		DisableMDNS: true,
	}
	alice, err := node.New(cfg)
	if err != nil {
		panic(err)
	}
	defer alice.Close()
	bob, err := node.New(cfg)
	if err != nil {
		panic(err)
	}
	defer bob.Close()
	if err := bob.Connect(ctx, alice.Addrs()[0]); err != nil {
		panic(err)
	}

	got := make(chan map[string]any, 1)
	alice.Subscribe("chat", func(m map[string]any) { got <- m })

	bob.PubSub().WaitSubscribers(ctx, "chat", 1)
	bob.Broadcast(ctx, "chat", map[string]any{"text": "hello"})
	fmt.Println((<-got)["text"])
	// Output: hello
}
