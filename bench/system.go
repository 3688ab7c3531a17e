package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// System is one messaging system under test. Every implementation runs its
// participants in this process (plus, for Redis, a server it starts itself)
// on 127.0.0.1 only.
//
// The store scenarios (4–9 of benchmarks.md) will add a second capability
// next to PubSub, e.g.
//
//	type KVSystem interface {
//		System
//		OpenKV(ctx context.Context, n int) (KVCluster, error)
//	}
//
// implemented by the systems that have one (Reflect crdtstore, NATS
// JetStream KV, Redis SET/GET), and a Suite that type-asserts it (see
// suite.go).
type System interface {
	// Name is the short name used in flags, tables and JSON.
	Name() string
	// Describe says in one line what exactly runs (versions, options).
	Describe() string
	// Unavailable says why the system cannot run here, or "" if it can.
	Unavailable() string
	// OpenPubSub starts n participants on one topic: participant 0
	// publishes, participants 1..n-1 subscribe and call deliver(i, data)
	// for every message they receive, from the system's own delivery
	// goroutines. It returns once every subscriber is known to the
	// publisher, so a message published now reaches all of them.
	OpenPubSub(ctx context.Context, n int, opts OpenOptions, deliver func(sub int, data []byte)) (PubSubCluster, error)
}

// OpenOptions are the harness's choices that every system follows.
type OpenOptions struct {
	// Star connects every subscriber to the publisher only; otherwise
	// peer-to-peer systems connect every pair (what mDNS gives on a LAN).
	// Brokered systems ignore it.
	Star bool
}

// PubSubCluster is a running set of participants.
type PubSubCluster interface {
	// Publish sends one message from participant 0. data is only valid
	// during the call: implementations copy what they keep. Blocking is
	// the system's backpressure; an error is reported as such.
	Publish(ctx context.Context, data []byte) error
	// Drops returns the drop events the system itself surfaced so far
	// (counters, async errors, server log lines), cumulative.
	Drops() Drops
	// ServerPIDs lists out-of-process servers whose RSS counts as the
	// system's memory (Redis).
	ServerPIDs() []int
	// Close stops every participant and server, waiting for them.
	Close() error
}

// Drops is what a system surfaced about messages it dropped: named
// counters (cumulative from the system; differences in results).
type Drops struct {
	Events uint64            `json:"events"` // sum of Counts
	Counts map[string]uint64 `json:"counts,omitempty"`
}

// newDrops builds Drops from name, value pairs.
func newDrops(kv ...any) Drops {
	d := Drops{Counts: map[string]uint64{}}
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1].(uint64)
		d.Counts[kv[i].(string)] = v
		d.Events += v
	}
	return d
}

// sub returns d minus an earlier reading, counter by counter.
func (d Drops) sub(before Drops) Drops {
	out := Drops{Counts: map[string]uint64{}}
	for k, v := range d.Counts {
		if b := before.Counts[k]; v >= b {
			v -= b
		}
		if v > 0 {
			out.Counts[k] = v
			out.Events += v
		}
	}
	return out
}

// String lists the non-zero counters, sorted.
func (d Drops) String() string {
	var parts []string
	for k, v := range d.Counts {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// allSystems lists every system, in table order. The first one is the
// system under test; the others are baselines.
func allSystems() []System {
	return []System{
		&reflectSystem{},
		&libp2pSystem{},
		&natsSystem{},
		&redisSystem{pipelined: true},
		&redisSystem{pipelined: false},
	}
}

// defaultSystems are run unless -systems says otherwise.
var defaultSystems = []string{"reflect", "libp2p", "nats", "redis"}

// pickSystems returns the systems named in the comma-separated list.
func pickSystems(list string) ([]System, error) {
	byName := map[string]System{}
	var names []string
	for _, s := range allSystems() {
		byName[s.Name()] = s
		names = append(names, s.Name())
	}
	var out []System
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		s, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("unknown system %q (have %s)", n, strings.Join(names, ", "))
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no system selected")
	}
	return out, nil
}
