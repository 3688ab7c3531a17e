// Package crdtstore is Reflect's replicated key-value store: Set on one
// node, Get on any other. Every node of the mesh holds a full replica in
// memory; changes travel as small deltas on pub/sub, and a sync protocol
// brings a node up to date when it connects.
//
//	kv, err := crdtstore.New(node.Config{Key: "SECRET"}) // or Open(n, Options{})
//	kv.SetString("greeting", "hello")
//	v, ok := kv.GetString("greeting") // on any node, a moment later
//
// # Conflicts
//
// The store is an observed-remove map CRDT (package ormap holds its pure
// core). Replicas accept writes independently, even when partitioned, and
// converge to the same state once they have exchanged changes:
//
//   - A Set overwrites every value of the key its node has seen. A causally
//     later Set always wins, whatever the clocks say.
//   - Concurrent Sets of one key (neither node had seen the other's) are
//     both kept as siblings. Get returns the same one on every node: the
//     latest hybrid-logical-clock timestamp, then the greatest replica id;
//     GetAll returns them all. The next Set of the key replaces them.
//   - Deletes are observed-remove and add-wins: a Delete removes the values
//     its node has seen; a Set made concurrently elsewhere survives it.
//   - There are no tombstones: a deleted key costs nothing once the causal
//     context has compacted (a few bytes per replica, not per key).
//   - There is no compare-and-set and no transaction: two nodes that read,
//     modify and write the same key concurrently both succeed, and their
//     results become siblings. Use one key per writer, or accept the
//     deterministic winner.
//
// # Replication
//
//   - Deltas: each Set or Delete produces a delta. A background loop
//     publishes them on the reserved topic "_reflect/store/<name>"; writes
//     made while it is publishing are merged into the next delta (no timer,
//     no added latency when idle). A received delta is decoded once, in
//     pub/sub's receive path, before it is delivered or relayed: one that
//     does not decode or exceeds Options.MaxDeltaBytes goes no further
//     (Stats.DeltasInvalid counts it).
//   - Gaps: a delta that reveals a missed one (GossipSub does not re-send
//     after a few seconds) makes the receiver sync with its sender.
//   - Sync on connect: when a peer connects, the two exchange causal
//     contexts over the stream protocol
//     "<mesh prefix>/store/<name>/sync/1.0.0". Equal contexts mean equal
//     states: done in one round trip of a few hundred bytes. Otherwise each
//     sends what the other lacks, computed from the other's context: the
//     entries it has not seen and the removals of entries it holds — never
//     "my missing entries plus my whole context", which would delete the
//     entries both already share. Frames are length-prefixed and bounded
//     (Options.MaxSyncFrame), every read has a deadline, one sync per peer
//     runs at a time, and a peer's declared sizes are never trusted for
//     allocation.
//   - Joining: a replica that has not completed a sync since it opened
//     syncs with one peer at a time and answers the others "busy" until
//     then; afterwards their syncs find it up to date. So a node that
//     connects to ten peers at once downloads the state once, not ten
//     times.
//   - Anti-entropy: every Options.SyncInterval a node syncs with a random
//     peer, repairing whatever was lost.
//
// # Synced
//
// Synced reports, and WaitSynced waits for, the moment this replica has
// completed a sync with every peer joined to it (connected, with pub/sub
// ready: the node's OnPeer events). From then on it holds at least
// everything those peers held when they joined. A peer that does not run
// the store counts as synced. A store with no peer at all waits
// Options.DiscoveryGrace (one second) after Open for discovery to find
// one, then counts as synced; it syncs with peers that appear later as
// they come.
//
// # Transports and tests
//
// Open runs the store on a node. Underneath, the store reaches the network
// only through the Transport interface (publish and flush deltas, decode
// received ones before delivery, open and serve sync streams, hear peers
// join and leave); OpenTransport opens a store on any implementation.
// Package crdttest has an in-memory one: a Network of stores in one
// process, with links to cut and restore, for testing code that uses the
// store without sockets.
//
// # Limits
//
// Keys are non-empty UTF-8, at most 4 KiB; a value must fit one pub/sub
// message (Options.MaxValueLen: the message size minus 4 KiB, about 1 MiB
// by default), and a received delta must fit Options.MaxDeltaBytes. The
// state lives in memory; a restarted node starts empty under a new replica
// id and refills from its peers. A new node's first sync is one frame of at
// most Options.MaxSyncFrame (64 MiB by default, about 400,000 keys of 100
// bytes).
package crdtstore
