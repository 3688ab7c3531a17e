package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// System is one messaging system under test. Every implementation runs its
// participants in this process (plus, for Redis, a server it starts itself)
// on 127.0.0.1 only. Systems that also have a replicated key-value store
// implement KVSystem (store scenarios 4–8, suite_store.go).
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

// KVSystem is a System with a key-value store visible from every
// participant: Reflect's crdtstore, NATS JetStream KV, Redis SET/GET.
type KVSystem interface {
	System
	// DescribeKV says in one line what runs for the store scenarios.
	DescribeKV() string
	// OpenKV starts n participants sharing one store, each with its own
	// connection (Reflect: its own node with a replica, every pair
	// connected; NATS and Redis: one client connection each to one
	// server). It returns once a write on any participant reaches every
	// other one.
	OpenKV(ctx context.Context, n int) (KVCluster, error)
}

// KVCluster is a running store of n participants.
type KVCluster interface {
	// Put writes key on participant i. It may return before the write
	// left the participant (Reflect's Set; pipelined Redis, asynchronous
	// JetStream publishes): Flush waits for that. value is only valid
	// during the call.
	Put(ctx context.Context, i int, key string, value []byte) error
	// Delete removes key, from participant i, like Put.
	Delete(ctx context.Context, i int, key string) error
	// Flush waits until every Put and Delete of participant i so far was
	// accepted (acknowledged by the server; Reflect: published), and
	// returns the first error of those writes.
	Flush(ctx context.Context, i int) error
	// Watch makes participant i call fn for every change of a key made
	// elsewhere that it sees, from the system's own goroutines, until
	// Close. missed > 0 reports changes the system dropped on the way to
	// the watcher (they are applied, but their keys are not known).
	Watch(i int, fn func(key string, missed int)) error
	// Join starts one more participant, lets it load the whole store of
	// keys keys the way the system does it, and reports when it had
	// everything and what it cost. held, if not nil, is called once the
	// join is done, while the new participant still holds what it loaded
	// (for a memory reading). The new participant is closed after.
	Join(ctx context.Context, keys int, held func()) (SyncFigures, error)
	// Reconnect disconnects participant i, runs change (which writes
	// elsewhere the keys in changed, and waits until the participants
	// still connected have them), reconnects i and waits until it caught
	// up: every key of changed has its new value on i.
	Reconnect(ctx context.Context, i int, change func(context.Context) error, changed []string) (SyncFigures, error)
	// ServerMem returns the store server's own account of its memory
	// (Redis INFO used_memory), or 0 when the server is this process.
	ServerMem(ctx context.Context) uint64
	// ServerPIDs lists out-of-process servers (Redis).
	ServerPIDs() []int
	// Close stops every participant and server, waiting for them.
	Close() error
}

// SyncFigures is what bringing one participant up to date cost: how long
// it took, the bytes both ways and the round trips.
type SyncFigures struct {
	Secs     float64 `json:"secs"`
	BytesIn  uint64  `json:"bytes_in"`
	BytesOut uint64  `json:"bytes_out"`
	// RoundTrips is the longest chain of request → answer exchanges the
	// catch-up waited for (a final one-way frame counts ½).
	RoundTrips float64 `json:"round_trips"`
	// Exchanges counts separate exchanges (Reflect: syncs with peers;
	// Redis: pipelines; NATS: JetStream API requests).
	Exchanges int `json:"exchanges"`
	// MaxExchangeBytes is the largest exchange, both directions.
	MaxExchangeBytes uint64 `json:"max_exchange_bytes"`
	// Keys the participant holds afterwards.
	Keys int `json:"keys"`
	// How says what the participant did.
	How string `json:"how,omitempty"`
	// Joins only: this process's memory growth over a settled reading
	// taken before the join, at its peak (sampled every 10 ms: Go heap
	// objects, live or not yet swept, and memory held from the OS) and
	// after a GC once the join is done, while the new participant still
	// holds what it loaded. Every participant lives in this process, so
	// the peak includes the serving side (Reflect's other nodes, NATS's
	// embedded server); redis-server is another process and is not
	// counted.
	PeakHeapMB float64 `json:"peak_heap_growth_mb,omitempty"`
	PeakHeldMB float64 `json:"peak_held_growth_mb,omitempty"`
	HeldHeapMB float64 `json:"heap_growth_after_mb,omitempty"`
}

// Bytes is the total both ways.
func (f SyncFigures) Bytes() uint64 { return f.BytesIn + f.BytesOut }

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
