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

// One instance answers requests; another asks. Request fails at once with
// pubsub.ErrNoResponders when nobody answers on the topic.
func ExampleNode_Request() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := node.Config{
		Key:         "example secret, use pnet.GenerateSecret for yours",
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		DisableMDNS: true,
	}
	server, err := node.New(cfg)
	if err != nil {
		panic(err)
	}
	defer server.Close()
	client, err := node.New(cfg)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	if err := client.Connect(ctx, server.Addrs()[0]); err != nil {
		panic(err)
	}

	server.Handle("add", func(req map[string]any) (map[string]any, error) {
		return map[string]any{"sum": req["a"].(float64) + req["b"].(float64)}, nil
	})

	client.PubSub().WaitResponders(ctx, "add", 1)
	resp, err := client.Request(ctx, "add", map[string]any{"a": 2, "b": 3})
	fmt.Println(resp["sum"], err)
	// Output: 5 <nil>
}
