package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/pubsub"
)

// Order is an application's message type.
type Order struct {
	ID    int
	Item  string
	Count int
}

// twoPubSubs starts pub/sub on two connected libp2p hosts of your own and
// returns them with a function that closes everything.
func twoPubSubs(ctx context.Context) (*pubsub.PubSub, *pubsub.PubSub, func()) {
	newHost := func() host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			panic(err)
		}
		return h
	}
	a, b := newHost(), newHost()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		panic(err)
	}
	// Without a node, there is no Membership to pass: pub/sub follows
	// each host's connections itself.
	cfg := pubsub.Config{TopicPrefix: "example/"}
	aps, err := pubsub.New(a, nil, cfg)
	if err != nil {
		panic(err)
	}
	bps, err := pubsub.New(b, nil, cfg)
	if err != nil {
		panic(err)
	}
	return aps, bps, func() {
		aps.Close()
		bps.Close()
		a.Close()
		b.Close()
	}
}

// Pub/sub on two libp2p hosts of your own, with a typed message. Apps
// usually get a PubSub from package node, which builds the private network,
// discovery and reconnects around it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sps, wps, closeAll := twoPubSubs(ctx)
	defer closeAll()

	got := make(chan Order, 1)
	_, err := pubsub.SubscribeJSON(wps, "orders", func(o Order, _ pubsub.Message) { got <- o })
	if err != nil {
		panic(err)
	}
	if err := sps.WaitSubscribers(ctx, "orders", 1); err != nil {
		panic(err)
	}
	if err := pubsub.PublishJSON(ctx, sps, "orders", Order{ID: 7, Item: "lamp", Count: 2}); err != nil {
		panic(err)
	}
	o := <-got
	fmt.Printf("order %d: %d × %s\n", o.ID, o.Count, o.Item)
	// Output: order 7: 2 × lamp
}

// A service answers requests; the first answer comes back to the caller
// alone. With nobody answering, Request fails at once.
func ExamplePubSub_Request() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, server, closeAll := twoPubSubs(ctx)
	defer closeAll()

	_, err := client.Request(ctx, "greet", []byte("nobody"))
	fmt.Println(errors.Is(err, pubsub.ErrNoResponders))

	server.Handle("greet", func(ctx context.Context, req pubsub.Message) ([]byte, error) {
		return []byte("hello, " + string(req.Data)), nil
	})
	client.WaitResponders(ctx, "greet", 1)
	reply, err := client.Request(ctx, "greet", []byte("ada"))
	fmt.Println(string(reply.Data), err)
	// Output:
	// true
	// hello, ada <nil>
}

// A wildcard subscription gets the messages of every matching topic, with
// their headers; Message.Topic says which.
func ExamplePubSub_Subscribe_wildcard() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shop, warehouse, closeAll := twoPubSubs(ctx)
	defer closeAll()

	got := make(chan pubsub.Message, 2)
	warehouse.Subscribe("orders.*", func(m pubsub.Message) { got <- m })
	for _, region := range []string{"eu", "us"} {
		shop.WaitSubscribers(ctx, "orders."+region, 1)
		h := pubsub.Header{"trace-id": {"t-" + region}}
		shop.Publish(ctx, "orders."+region, []byte("lamp"), pubsub.WithHeader(h))
	}
	for range 2 {
		m := <-got
		fmt.Println(m.Topic, string(m.Data), m.Header.Get("trace-id"))
	}
	// Unordered output:
	// orders.eu lamp t-eu
	// orders.us lamp t-us
}
