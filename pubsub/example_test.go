package pubsub_test

import (
	"context"
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

// Pub/sub on two libp2p hosts of your own, with a typed message. Apps
// usually get a PubSub from package node, which builds the private network,
// discovery and reconnects around it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	newHost := func() host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			panic(err)
		}
		return h
	}
	shop, warehouse := newHost(), newHost()
	defer shop.Close()
	defer warehouse.Close()
	if err := shop.Connect(ctx, peer.AddrInfo{ID: warehouse.ID(), Addrs: warehouse.Addrs()}); err != nil {
		panic(err)
	}
	// Without a node, there is no Membership to pass: pub/sub follows
	// each host's connections itself.
	cfg := pubsub.Config{TopicPrefix: "example/"}
	sps, err := pubsub.New(shop, nil, cfg)
	if err != nil {
		panic(err)
	}
	defer sps.Close()
	wps, err := pubsub.New(warehouse, nil, cfg)
	if err != nil {
		panic(err)
	}
	defer wps.Close()

	got := make(chan Order, 1)
	_, err = pubsub.SubscribeJSON(wps, "orders", func(o Order, _ pubsub.Message) { got <- o })
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
