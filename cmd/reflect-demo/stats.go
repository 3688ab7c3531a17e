package main

import (
	"encoding/json"
	"os"
	"runtime"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// statsReply is the reply to stats: what a fault-injection suite watches
// for leaks (goroutines, file descriptors) and losses (the counters).
type statsReply struct {
	Event      string `json:"event"`
	Goroutines int    `json:"goroutines"`
	FDs        int    `json:"fds"`
	Peers      int    `json:"peers"`
	// The libraries' Stats, under their JSON names (the fields' in
	// snake_case), so that a counter added to a library appears here
	// without a change.
	Node   node.Stats      `json:"node"` // discovery and strangers
	PubSub pubsub.Stats    `json:"pubsub"`
	Store  crdtstore.Stats `json:"store"`
}

func (d *demo) stats() statsReply {
	return makeStats(runtime.NumGoroutine(), openFDs(), len(d.node.Peers()),
		d.node.Stats(), d.node.PubSub().Stats(), d.store.Stats())
}

func makeStats(goroutines, fds, peers int, ns node.Stats, ps pubsub.Stats, ss crdtstore.Stats) statsReply {
	return statsReply{
		Event:      "stats",
		Goroutines: goroutines,
		FDs:        fds,
		Peers:      peers,
		Node:       ns,
		PubSub:     ps,
		Store:      ss,
	}
}

// openFDs counts this process's open file descriptors, not counting the one
// used to list them; -1 without /proc.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1
}

// human shows the counters as indented JSON.
func (e statsReply) human() string {
	b, _ := json.MarshalIndent(e, "", "  ")
	return string(b)
}
