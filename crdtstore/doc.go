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
//   - There is no compare-and-set and no transaction (see below).
//
// # Expiring keys
//
// SetTTL stores a value that disappears once its write time (the writer's
// hybrid-logical-clock time) plus the TTL has passed, on every node, each by
// its own clock:
//
//	kv.SetTTL("session/42", token, 10*time.Minute)
//
// No delete is sent and no tombstone kept: the expiry time travels with the
// value, and each node drops it when its clock passes it. Reads (Get,
// GetEntry, GetAll, Keys, List, Len, Scan) never return an expired value,
// even in the moment before the store's timer removes it; the timer fires at
// the next expiry (it never polls) and removes at most 1,024 values per
// hold of the lock. Watchers then see a Change with Deleted and Origin
// OriginExpired, which tells an expiry from a Delete. A later Set of the key,
// with or without a TTL, replaces the value and its expiry.
//
// Concurrent values (siblings) expire each on its own: when the visible one
// expires, the key shows the next sibling that has not (watchers see that
// value, Origin OriginExpired), and disappears when none is left.
//
// Clocks: a value expires at the same wall-clock time everywhere, so nodes
// whose clocks differ by d see it go up to d apart; a node whose clock runs
// ahead may also remove it from others early, when a sync reply it sends
// carries the removal. The store bounds how far a peer's clock can drag
// its own (one hour); keep the clocks synchronised (NTP) if expiry times
// matter to the second. A value that arrives already expired is not
// stored. Values without a TTL cost nothing more, in memory or on the wire,
// and their frames stay readable by nodes that predate TTLs; a frame with an
// expiring value uses a new wire version that such nodes refuse.
//
// # Entries and iteration
//
// GetEntry returns a value with its metadata (Entry): its write time (HLC
// and wall clock), the replica that wrote it (compare Store.ReplicaID) and
// that replica's node (its peer id, once this store has had a delta or a
// sync from it), the number of siblings, and its expiry. Watch changes
// carry the same.
//
// Scan and ScanEntries iterate over a prefix in key order without copying
// the store: they read 256 keys at a time under the store's lock and run
// the loop body without it. Each key is seen at most once, with its value
// when its chunk was read; keys written during the loop may or may not be
// seen. List returns a snapshot of one moment instead.
//
// # Watching
//
// Watch(prefix) delivers local, remote and expiry changes (Origin says
// which). With WithSnapshot it first delivers the current values (Origin
// OriginSnapshot), then one Change with Origin OriginSnapshotDone and no
// key, which marks the end of the initial values, as NATS KV's nil entry
// does.
//
// # No compare-and-set
//
// The store is always writable: a node accepts a write at once, even cut
// off from every other node, and reconciles later (an AP system, in CAP
// terms). Compare-and-set needs the opposite: to know, at the moment of the
// write, that no other node has written the key since the value compared —
// which takes a round trip to a majority (consensus) and fails when that
// majority cannot be reached. So there is no compare-and-set, no
// transaction, no lock: two nodes that read, modify and write one key
// concurrently both succeed, and their values become siblings (GetAll),
// with the same winner on every node.
//
// What to use instead:
//
//   - One key per writer: let each node write only its own keys
//     ("presence/<node>", "counter/<node>") and readers combine them (sum
//     the counters, list the present nodes). No write ever conflicts.
//   - Values that merge: sets and maxima kept as siblings and combined by
//     the reader (GetAll), or a newest-wins value where the deterministic
//     winner is fine.
//   - TTL leases for liveness ("presence/<node>" refreshed with SetTTL),
//     not for mutual exclusion: two nodes may both believe they hold one.
//
// Leader election and locks need consensus (etcd, Consul, NATS JetStream
// KV); this package does not provide them.
//
// # Replication
//
//   - Deltas: each Set or Delete produces a delta. A background loop
//     publishes them on the reserved topic "_reflect/store/<name>"; writes
//     made while it is publishing are merged into the next delta (no timer,
//     no added latency when idle). A received delta is decoded once, in
//     pub/sub's receive path, before it is delivered or relayed: one that
//     does not decode or exceeds Options.MaxDeltaBytes goes no further
//     (Stats.DeltasInvalid counts it), nor one that is not its origin
//     replica's own writes (see "Trust").
//   - Gaps: a delta that reveals a missed one (GossipSub does not re-send
//     after a few seconds) makes the receiver sync with its sender.
//   - Sync on connect: when a peer connects, the two exchange causal
//     contexts over the stream protocol
//     "<mesh prefix>/store/<name>/sync/2.0.0". Equal contexts mean equal
//     states: done in one round trip of a few hundred bytes. Otherwise each
//     sends what the other lacks, computed from the other's context: the
//     removals of entries it holds, then the entries it has not seen, in
//     chunks of about 512 KiB in key order, then the context they were
//     computed from — never "my missing entries plus my whole context",
//     which would delete the entries both already share. The receiver
//     joins each chunk as it arrives: a store of any size reaches a new
//     replica, each side holds one chunk at a time, writes go on during
//     the sync, and a sync cut off anywhere loses nothing (the next one
//     resumes from what arrived; see "Chunked sync" in package ormap).
//     Frames are length-prefixed and bounded (Options.MaxSyncFrame), every
//     frame has a deadline (Options.SyncTimeout), one sync per peer runs at
//     a time, and a peer's declared sizes are never trusted for
//     allocation. Peers of releases before chunked sync speak
//     ".../sync/1.0.0", where a reply is one frame; the store speaks it
//     with them (libp2p picks the newest version both speak).
//   - Sync limits, against peers that do send what they declare: a context
//     frame (a request) is bounded by the decoder's replica limit and 16
//     intervals per replica (about 2.4 MB, or MaxSyncFrame if smaller),
//     only deltas and chunks by MaxSyncFrame;
//     frame buffers grow as bytes arrive (a sync reuses one buffer for its
//     chunks), and at most two frames over 1 MiB are read at once per
//     store. A peer has one served stream at a
//     time (a new one resets the older), may ask for 64 syncs at once and
//     20 per second after that (plus its sync on connect), and may start a
//     reply while it has taken less than MaxSyncFrame bytes of replies,
//     refilled at MaxSyncFrame per minute (a reply that started is
//     finished, so a joiner takes the whole store and then waits); beyond
//     that it is answered "busy" and retries shortly, unless it is in sync
//     (its syncs then cost one round trip and are always answered). Stats
//     counts each refusal (SyncStreamsReset, SyncRateLimited,
//     SyncBudgetLimited, SyncFramesTooLarge, SyncReadWaits) and the logger
//     warns of it, naming the peer, at most every 10 s per peer.
//   - Joining: a replica that has not completed a sync since it opened
//     syncs with one peer at a time and answers the others "busy" until
//     then; afterwards their syncs find it up to date. So a node that
//     connects to ten peers at once downloads the state once, not ten
//     times.
//   - Anti-entropy: every Options.SyncInterval (give or take a quarter, and
//     a second) a node syncs with a random peer, repairing whatever was
//     lost.
//
// # Persistence
//
// With Options.Dir the store keeps its replica on disk and a restart finds
// it there. The engine is its own package, which the program imports for
// its side effect (without it, Open with a Dir fails with ErrConfig):
//
//	import _ "github.com/reflectmesh/reflect/crdtstore/disk"
//
// so that a program whose stores live in memory does not carry the
// engine (14 MB of program, most of it resident in each process). On disk
// are every key's entries (siblings and expiry times included), the causal
// context (so deletes stay deleted) and the replica id, readable at once,
// before any peer is reachable; then the store syncs only the difference
// with its peers. Reads never touch the disk: the whole store is still in
// memory, loaded at Open.
//
// Guarantees. By default a Set, SetTTL or Delete that returned is in the
// engine's log, written to the operating system, before it returns and
// before its delta is published: it survives the crash of the process
// (kill -9, a panic), not of the machine. With Options.Fsync it is also
// fsynced: it survives a power loss; concurrent writers share fsyncs.
// What arrives from peers (deltas, sync replies) and expiries are saved
// in the same order without being waited for: a crash may lose the last
// of them, and the next sync brings them back. A save that fails makes
// the write return ErrDisk (the change stays in memory and replicates),
// and every later write too: the store then behaves as a memory-only one
// until reopened.
//
// The replica id is resumed only under the same peer id: give the node an
// identity (node.Config.IdentityFile). Under another peer id the store
// keeps the data and writes as a new replica, with a warning. One process
// at a time opens a directory (another gets ErrDisk); one store per
// directory.
//
// The engine is pebble (github.com/cockroachdb/pebble/v2), chosen against
// bbolt on this workload (both measured, 2 cores, a virtio disk whose
// fsync takes ~300 µs): Set p50 2.1 µs against 15.7–19.8 µs for bbolt in
// the default mode; with fsync, 16 writers reach 26,800 engine commits/s
// against 11,900 (bbolt's Batch, tuned); on disk 1.02× the live data after
// compaction against 1.16–1.99×; 43 MB against 420 MB resident while
// loading 1,000,000 keys. pebble's own NoSync mode is not used: it can
// return before the record leaves the process (kill -9 lost up to 2,692
// acknowledged writes in tests); the default mode is Sync over a file
// system that skips the fsync of the log only. Each key is one record
// (all its entries), each context row one record; records carry a format
// version and are checked when read: a corrupt record is ErrDisk naming
// it, never a panic. Measured through the store: a Set p50 5.5 µs (p99
// 62–81 µs) by default against 0.5 µs in memory; 80,000–88,000 Sets/s from
// 16 writers by default; with Fsync 25,000 (heavily loaded machine) to
// 35,000–38,000 Sets/s: concurrent writers share one fsync per round
// (about 14–16 writes per fsync), so 16 writers are bound by 16 / the
// fsync time (~200–260 µs here), about 60,000/s at most. Open of
// 1,000,000 keys of 100 bytes: 1.07 s (100,000: 0.16 s). The store
// compacts its engine by itself when its files pass twice the live data
// (and 32 MiB): 1,000,000 keys × 100 B, each written 4 times, then half
// deleted, take 1.7–1.9× the live bytes on disk (1.27× after a full
// compaction); a small store carries up to ~16 MiB of log files on top.
//
// # Synced
//
// Synced reports, and WaitSynced waits for, the moment this replica has
// completed a sync with every peer joined to it (connected, with pub/sub
// ready: the node's OnNeighbour events). From then on it holds at least
// everything those peers held when they joined; on a partial mesh, the
// members beyond them reach it through its neighbours' syncs and the
// relayed deltas. A peer that does not run
// the store counts as synced. A store with no peer at all waits
// Options.DiscoveryGrace (one second) after Open for discovery to find
// one, then counts as synced; it syncs with peers that appear later as
// they come.
//
// # Observing
//
// Stats counts the replication traffic and gives the store's size (Keys,
// and Bytes: the keys and values of the live data, siblings included, kept
// as the data changes). PeerSyncStatus gives, per peer the store knows
// (joined, or syncing with it), the sync state, the sync exchange running
// now (when it started, the bytes and keys it has moved so far), the last one (when
// it ended, its error, its bytes) and the replica lag. A failed sync
// exchange logs at Warn (at most one such log every 10 s per store, the
// others at Debug). When WaitSynced gives up, its error says why, per peer
// not synced (NotSyncedError).
//
// Replica lag is how far behind this store is with a peer's writes, in
// time. Each value carries its write time, the writer's hybrid-logical-
// clock time (see "Expiring keys"). When a write of the peer's store is
// applied here, by a delta or in a sync reply from any peer, its lag is the
// local time minus its write time (at least 0), and the peer's lag is that
// of its newest write applied. While the store holds deltas of the peer
// that wait for writes they need, or knows it missed some of the peer's
// writes (a gap), the lag is instead the time since the oldest such held or
// gap-revealing write was written: it grows while the store is behind and
// drops when it has caught up. The clock is the store's (package ormap
// reads none). Clock skew between the two hosts adds to the lag, and a
// store that joins sees, once, the age of the newest write of each peer
// its first sync brought.
//
// With Options.Metrics (by default the node's node.Config.Metrics) the
// same figures are Prometheus metrics, read when scraped:
// reflect_store_keys, reflect_store_bytes, the counters, and per peer
// reflect_store_replica_lag_seconds,
// reflect_store_last_sync_timestamp_seconds and
// reflect_store_sync_in_progress_bytes (label peer; a peer that left has
// none).
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
// # Trust
//
// Any member (a node with the mesh secret) may write; what its deltas can
// do to other replicas' data is limited by a causality guard:
//
//   - A replica id is bound to the peer of its node: 8 random bytes, then
//     8 bytes of SHA-256 over them and the peer id. A delta received on
//     pub/sub is refused if its origin replica is not its publisher's (the
//     author pub/sub reports) or is this store's own, if it is a sync reply
//     (global), or if it carries an entry of another replica. A member
//     cannot publish in another's name; forging a binding takes about 2^64
//     hashes. Such refusals count in Stats.DeltasForged
//     (and DeltasInvalid) and are logged at Warn, at most once every 10 s.
//   - A delta may claim dots of other replicas (its context says "seen,
//     and removed") only if this store has seen them; otherwise it waits,
//     like a delta that overtook what it overwrote, until they arrive (see
//     package ormap, "Hostile deltas"). So a member cannot erase another's
//     values or hide its later writes by publishing a context: attack 1 of
//     issue 11, a 37-byte delta claiming dots 1…2^62 of one replica, is
//     refused or waits, and changes nothing.
//   - Each peer may introduce at most 256 replica ids by its deltas (one
//     per restart of a store without Options.Dir); the store knows at most
//     4,096 replica ids and 1,048,576 context intervals, the limits its
//     peers decode: a delta or sync reply that would exceed them is refused
//     (Stats.DeltasOverBounds, logged), so the store's contexts and sync
//     replies always stay readable and syncs keep working.
//   - Sync replies must be diffs (global, with no dependency: they never
//     wait); one that claims dots of this store's replica it never minted
//     is refused. Otherwise a sync reply is trusted as its sender is: sync
//     exists to relay every replica's values and removals, and the values
//     are not signed. A member answering syncs can therefore remove or hide
//     other replicas' values on the nodes that sync with it, relay values in
//     their name, or fill the replica table (after which new replicas'
//     writes are refused until the nodes restart). Members are trusted
//     that far.
//
// Stores of versions before the guard draw unbound replica ids: their
// deltas are refused by newer stores (DeltasForged), which still get their
// writes by sync.
//
// # Limits
//
// Keys are non-empty UTF-8, at most 4 KiB; a value must fit one pub/sub
// message (Options.MaxValueLen: the message size minus 4 KiB, about 1 MiB
// by default), and a received delta must fit Options.MaxDeltaBytes. The
// state lives in memory (and, with Options.Dir, on disk: see Persistence);
// without Dir a restarted node starts empty under a new replica id and
// refills from its peers. A sync has no size limit: only its frames are
// bounded (a chunk of the entries about 512 KiB; the removals, one frame of
// at most Options.MaxSyncFrame, hold one interval per run of removed
// writes, which a store with many keys overwritten in random order can
// bring to about one interval per key: ~10 MB for 1,000,000 keys). With a
// peer of a release before chunked sync, a reply is one frame of at most
// MaxSyncFrame (64 MiB by default, about 400,000 keys of 100 bytes).
//
// Received deltas waiting for what they need (Stats.PendingDeltas) take at
// most 16 MiB per sending peer and 64 MiB in all, by their estimated
// in-memory size (Stats.PendingBytes), and at most 1,024 deltas: past a
// bound the oldest delta of the same peer is dropped first, then the oldest
// of the peer holding the most (Stats.PendingDropped), so a peer flooding
// deltas that never become ready evicts only its own. A dropped honest
// delta is recovered by sync.
//
// # Memory
//
// A key costs its bytes and value bytes, rounded up to the Go allocator's
// size classes, plus about 56 bytes of index and metadata: about 185 bytes
// of heap for a 10-byte key and a 100-byte value. The Go garbage collector
// lets the heap grow to twice its live data (GOGC=100) before it collects,
// and keeps the pages it reached: after a bulk load (a new replica's first
// sync, a burst of a writer's deltas) a holder would keep about twice its
// data. So once the store has received at least 4 MiB and a quarter of its
// size since it last did so, and then nothing for a second with no sync
// running, it returns the freed pages to the OS (runtime/debug.FreeOSMemory,
// one forced collection of the process's heap). Options.KeepFreedMemory
// turns this off.
package crdtstore
