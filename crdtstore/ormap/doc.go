// Package ormap is the pure core of Reflect's replicated key-value store: an
// observed-remove map (OR-Map) from string keys to byte values, as a
// delta-state CRDT with a causal context kept as per-replica intervals.
//
// It does no I/O and keeps no time: no goroutines, clocks, randomness or
// logging. Given the same calls it computes the same results. A concurrent
// wrapper (package crdtstore) owns one *Map, serialises calls to it, reads
// the wall clock, and ships the frames this package encodes: deltas on a
// pubsub topic, contexts and sync replies on a request/response stream.
//
// # Model
//
// Every replica (one incarnation of one store) has a ReplicaID, unique for
// all time: the wrapper draws ~16 random bytes per incarnation, and an id is
// never reused by a replica that lost its state. Every Set and every Delete
// mints a dot (replica, counter), counters 1, 2, 3, … per replica.
//
// A causal context is a set of dots, stored per replica as a sorted list of
// disjoint, non-adjacent closed intervals: a version vector entry n is the
// single interval [1, n]; dots received out of order add intervals (the
// "dot cloud"), and every operation keeps the lists compacted.
//
// The state of a replica is a dot store (key → entries; an entry is a dot,
// an HLC timestamp and a value) and a causal context C. Invariants:
//
//   - every live dot is in C, and every mutation adds a dot to C;
//   - if the dot of an operation is in C, so is every dot that operation
//     overwrote, and none of those is live (causal consistency).
//
// Together they make equal contexts mean equal states: "are we in sync?" is
// one comparison of contexts, and C ⊆ C' means the state is already
// included in the other's.
//
// # Operations and deltas
//
// Set(k, v, ts) mints a dot and replaces every entry of k the replica holds
// by the new one. Its delta holds the new entry and the context {new dot} ∪
// {dots of k's old entries}. Delete(k) mints a dot that lives only in the
// context; its delta holds no entries and the same kind of context. Deleted
// keys leave no tombstone: their dots just merge into the context
// intervals. Delta.Merge coalesces a burst of deltas into one.
//
// A delta's deps are the dots it overwrote. A replica applies a delta only
// when its own context holds the deps (causal delivery): otherwise it would
// learn that an operation happened without learning what that operation
// removed, and break the second invariant. GossipSub reorders and loses
// messages, so Map.Join holds such a delta until the missing dots arrive,
// by another delta or a sync, and HasGap reports it so the wrapper can pull
// a sync. HasGap also reports a lost delta of the origin itself (we have
// r:[1,5], the delta carries r:7). Ready, PendingFrom (held deltas per
// source) and Contiguous (no write of a replica missing below one seen)
// let the wrapper tell how far behind it is; the map reads no clock.
//
// # Hostile deltas
//
// A keyed delta's context says "the sender has seen these dots, and the
// entries they name are gone". Joined blindly, a context claiming dots
// 1…2^62 of replica A removes every entry of A and makes every later write
// of A look seen already: silently lost, on every replica, forever. So a
// keyed delta with an origin is also ready only when every row of its
// context but the origin's is in the receiver's context: it may claim only
// the dots of other replicas that the receiver has seen, and then it
// removes nothing the receiver would not remove for its own reasons; until
// then it waits like an early delta, and a claim that never comes true
// waits until the bounds evict it. An honest delta passes this test exactly
// when it passes the deps test: for Set, Delete, and Merge of one
// replica's deltas, the context outside the origin's row is within the
// deps (TestHonestContextWithinDeps). The origin's own row may claim
// anything: a replica can only hide its own future writes. A keyed delta
// without an origin (a Merge of several replicas' deltas) is held by its
// deps only.
//
// That is enough only if the origin is who sent the delta and the delta
// carries only its origin's entries: the wrapper checks both, the second
// with Delta.CheckOwn, the first by its own means (package crdtstore binds
// a replica id to the peer id of its node). Sync replies (Diff) relay
// every replica's entries and removals and are global: they are trusted as
// their sender is; Join refuses only those that claim dots of the
// receiver's own replica it never minted (ErrForeignDot). A peer answering
// syncs can therefore still remove or hide other replicas' writes on the
// replicas that sync with it, and relay entries in their name (they are not
// signed): the residual risk of trusting members with sync.
//
// Bounds (Map.SetBounds, Bounds) keep what peers can make a Map hold
// finite. A join that would make it know more than MaxReplicas replica ids
// (4,096) or MaxIntervals context intervals (1,048,576) fails with
// ErrBounds and changes nothing — keyed or global — so the Map's Context,
// and Diff for any requester, stay within the decoders' default Limits:
// syncs keep working whatever was refused. The held deltas are bounded in
// count (MaxPending, 1,024) and in estimated memory (Delta.Footprint: keys,
// values, ids, and a fixed size per entry, key, row and interval), per
// source (MaxSourceBytes, 16 MiB; Map.JoinFrom names the source) and in
// total (MaxPendingBytes, 64 MiB). To make room, the oldest delta of the
// same source goes first, then the oldest of the source holding the most
// (bytes, or deltas for the count bound): a source that floods evicts its
// own deltas, and others' only once it no longer holds the most. A delta
// larger than MaxSourceBytes is not held at all. PendingStats reports what
// is held and how many were dropped; a sync recovers what an honest peer's
// dropped delta carried.
//
// # The join rule
//
// One rule for deltas, sync replies and full states: for each key, an entry
// survives if both sides hold it, or if one side holds it and the other
// side's context does not cover its dot (the other side never saw it, so
// cannot have removed it); the contexts are united. Join is commutative,
// associative and idempotent, so duplicates, reordering and retries are
// harmless. Join reports the keys whose visible value changed, for
// watchers.
//
// A keyed delta (from Set, Delete, Merge) only touches the keys it lists;
// a sync reply may remove entries of any key, so joining one visits every
// key of the receiver.
//
// # Conflicts
//
//   - Causality wins: a Set that has seen another Set (or Delete) of the same
//     key overwrites it, whatever the timestamps say.
//   - Concurrent Sets of one key are all kept, as siblings: GetAll returns
//     them, and Get returns one, the same on every converged replica: the
//     latest HLC timestamp, then the greatest replica id (byte order), then
//     the greatest counter.
//   - Add wins: a Delete removes the entries its replica had seen; a
//     concurrent Set survives it.
//
// There is no compare-and-set and there are no transactions.
//
// # Expiry
//
// SetTTL writes an entry that expires at its timestamp's wall time plus a
// TTL (Entry.Expires). The expiry is part of the entry, like its value: it
// travels in deltas and sync replies, and no operation marks it. The Map
// keeps no clock, so the caller passes the time in:
//
//   - At(now) is a read-only View that leaves out entries expired at now
//     (Get, GetAll, Keys, Scan, Len), whether removed yet or not.
//   - Expire(now, max) removes the expired entries, at most about max per
//     call, earliest first; NextExpiry tells the wrapper when to call it.
//     The removed dots stay in the context: the join rule then keeps the
//     entries out when deltas or sync replies still carry them, so an
//     expired entry never comes back and no tombstone is needed. Expire
//     reports the visible changes (Change.Expired).
//   - JoinAt(d, now) does not store entries of d that have expired at now
//     (as if stored and expired at once).
//
// Siblings expire each on its own. Expiring does not change the context, so
// two replicas that differ only by what their clocks expired are "in sync"
// (equal contexts): each removes the rest when its own clock gets there.
// Diff still carries the removal of an entry the sender expired to a
// requester that lacks some other dot, which then drops the entry early, by
// at most the difference of the two clocks. Equal contexts mean equal
// states up to expiry: once every clock has passed the same time T and
// every replica ran Expire(T), converged replicas hold the same entries.
// Expiry indexes only the entries that have one (a flag bit in the stored
// entry, a heap beside the tree): a map without TTLs pays nothing.
//
// # Clocks
//
// HLC is a hybrid logical clock; the caller passes the wall clock to it. The
// Map does not own a clock: the wrapper calls Set(k, v, clock.Now(wall)) and,
// for each delta received, clock.Observe(d.MaxTime(), wall). Timestamps only
// order siblings, so a wrong clock reorders concurrent writes but never
// loses a write.
//
// # Sync
//
// Anti-entropy between replicas A and B (on connect, periodically, and when
// HasGap fires):
//
//  1. A sends its context C_A (EncodeContext).
//  2. B compares: if C_B equals C_A they are in sync (one round trip).
//     Otherwise B replies with B.Diff(C_A) and its own context C_B.
//  3. A joins the reply, and answers with A.Diff(C_B) — against the C_B it
//     received, not a newer one — which B joins.
//
// Diff(C_A) is the projection of B's state onto D = C_B \ (dots(S_B) ∩ C_A):
// the entries whose dots A has not seen, plus a context that covers them,
// every dot of B that A lacks, and every dot B knows that is no longer live
// — so A drops the entries B removed. Joining it with the ordinary rule
// gives A exactly A ⊔ B, even if A moved on meanwhile. If C_B ⊆ C_A the
// reply is empty. Diff of the empty context is a full snapshot, for a new
// replica. A reply too large for one frame goes as a chunked sync (below).
//
// The trap: the tempting reply "the entries A lacks + all of C_B" is wrong.
// B skipped the entries A already has; their dots are in C_B; so A's join
// concludes that B removed them, and deletes every entry the two replicas
// share. TestSyncTrapSharedEntriesSurvive and TestSimulationCatchesTheTrap
// keep it out.
//
// Cost: the request is C_A (a few bytes per replica when there are no
// holes). The reply carries the missing entries, and D has one interval per
// run of B's dots that are not live-and-known-to-A: after a typical
// reconnect that is proportional to what changed. In the worst case — keys
// overwritten many times in random order, so live dots are scattered among
// dead ones — D has up to one interval per live key of B (about 1-2 bytes
// each on the wire), still far below a snapshot. Computing Diff is one pass
// over B's entries (about 1.5 ms for 100,000 keys).
//
// # Chunked sync
//
// A Diff is one frame, so a large store cannot reach a new replica in one
// piece within the decoders' limits, and both sides hold the whole reply at
// once. A chunked sync answers C_A in pieces instead:
//
//  1. B.DiffStart(C_A) returns the removals R = C_B0 \ dots(S_B0) (every
//     dot B knows that is dead, as a global delta without entries) and
//     C_B0, B's context now. A joins R with Join.
//  2. B.DiffChunk(C_A, C_B0, from, budget), from "" on: the entries of
//     keys in [from, next) whose dots C_B0 holds and C_A lacks, stopping
//     after about budget bytes at a key boundary. Its context is exactly
//     its entries' dots, so A's JoinChunk adds entries and removes
//     nothing. ChunkSeq checks on A that the ranges follow each other.
//  3. After the Done chunk, A's JoinContext(C_B0) unites C_B0 into its
//     context without removing anything, and A answers C_B0 the same way
//     (crdtstore does), or with A.Diff(C_B0) in one piece.
//
// B keeps C_A, C_B0 and the next key; A keeps the next key; each holds one
// chunk at a time. Writes and deltas on both sides may interleave with the
// chunks; entries B gets after the start are left out (they reach A as
// deltas, or in the next sync). Why A never claims a dot whose entry it
// lacks, unless that entry was removed, whenever the sync stops:
//
//   - After R: every dot of R is dead in B, so its entry was removed there
//     (overwritten, deleted or expired); A drops it too. R is closed under
//     "overwrote" (B is causally consistent: a dot that overwrote another
//     is in C_B0 only with the other, which is then dead), so A stays
//     causally consistent. Including the dots C_A holds matters: A's own
//     entries that B removed have them.
//   - After a chunk: A gains only the dots of entries it takes, each live
//     in B and in C_B0. What such an entry overwrote is dead in B at the
//     start, so in R, so already in A's context: a late delta of an
//     overwritten write cannot come back.
//   - At the end: a dot of C_B0 is dead at the start (in R), or was live
//     at the start under a key of some chunk's range; then when the chunk
//     was made it was still live (sent unless C_A had it: A took it or
//     has it) or B had removed it since, and A may claim it. The order
//     check makes "every range was joined" true. So JoinContext(C_B0)
//     claims nothing that A lacks and B has not removed.
//
// A stream cut after any step leaves A in one of these states: nothing is
// lost, and the next sync (or the deltas) brings the rest. The scheme first
// proposed — chunks carrying B's current context for removals scoped to
// their range, and no R — is unsound: A takes a write y without the dots y
// overwrote, and a late delta of one of them makes it a sibling of y again
// (TestChunkedSyncLateOverwrittenStaysGone, TestSimulationCatchesChunkProposal).
//
// Cost: R ⊆ Diff(C_A)'s context (one frame, not chunked: small unless keys
// were overwritten many times in random order, then up to about one
// interval per live key). Each chunk is a walk over its range. For 100,000
// keys × 100 B to a new replica in 1 MiB chunks: 15 frames of at most
// 0.8 MB instead of one of 11.3 MB.
//
// # Wire format, versions 1 and 2
//
// All integers are unsigned LEB128 varints (minimal encodings only), except
// wall times, which are zig-zag varints. Every frame:
//
//	version   byte  1, or 2 for a delta with an expiring entry
//	kind      byte  1 = context, 2 = delta, 3 = chunk
//	replicas  n, then n × (length, bytes)      sorted, distinct, non-empty,
//	                                            each one used by the frame
//
// A context (kind 1, the sync request) continues with rows; a chunk (kind
// 3) continues with its range — from (length, bytes), a byte 1 if it is the
// last (Done), else 0 and next (length, bytes), from < next — then as a
// delta: a chunk has no flags, no origin, no deps, only keys within its
// range, each with entries, and a context of exactly its entries' dots. A
// delta (kind 2) continues with:
//
//	flags     byte  bit 0: global (from Diff), others zero
//	origin    0 = none, else replica index + 1
//	context   rows
//	deps      rows                              ⊆ context
//	keys      n, then n × key
//	key       shared prefix length with the previous key, suffix
//	          (length, bytes), entries m, then m × entry; keys strictly
//	          increasing; m = 0 (a removal) only in keyed deltas
//	entry     replica index, counter, wall (zig-zag), logical, value
//	          (length, bytes); in Get's order within a key. Version 2:
//	          logical<<1 | expires, then, if expires, the TTL
//	          (Expires - wall, at least 1, Expires at most MaxInt64 and
//	          not 0) before the value
//	rows      n, then n × (replica index, k, k × interval), indexes
//	          increasing, k ≥ 1
//	interval  (lo-1, hi-lo) for the first, (lo-prevHi-2, hi-lo) after it
//
// A delta is written as version 2 only if one of its entries expires, so a
// store that never uses TTLs writes exactly version 1 and interoperates with
// decoders that know only version 1; those refuse version 2 (ErrVersion). A
// version 2 frame without an expiring entry is refused, as is a context
// frame of version 2.
//
// The encoding is canonical: a frame decodes only if encoding the result
// gives back the same bytes. Decoders refuse unknown versions (ErrVersion),
// the other kind (ErrFrameKind), anything past a Limits bound (ErrTooLarge)
// and every malformation (ErrMalformed): truncation, trailing bytes, replica
// index out of range, counter 0 or beyond 2^62, an entry whose dot the
// frame's context does not cover, duplicate dots, unsorted keys, and so on.
// Every count is checked against the bytes left and the limits before
// anything is allocated for it. A decoded delta can always be joined
// without breaking the map's invariants (the fuzz targets check this); what
// a hostile but well-formed delta can still do is the subject of "Hostile
// deltas" above.
//
// # Persistence
//
// The map does no I/O; it tells its owner what to write. After
// Map.TrackChanges (off by default: nothing is tracked, nothing costs), the
// map notes every key whose entries change (Set, Delete, Join, JoinAt,
// Expire: store and remove are the only places entries change) and every
// context row that grows (mint, the join's union); Map.TakeRecords then
// yields one Record per changed row (Kind RecordRow, Name the replica id)
// and per changed key (RecordKey; Data nil once the key has no entry),
// rows first, each sorted, and forgets them. A store writes them to a
// key-value engine after every operation, each over the previous record of
// its Kind and Name. Restore(self, records) rebuilds the map: equal to the
// one written (entries, siblings, expiries, context, Len, Bytes), without
// the deltas it held back (Pending), which a sync brings again.
//
// Record Data starts with a version byte (1). A row record holds the
// row's intervals as in the wire format's context rows (4 bytes for
// [1, n] with n < 128). A key record holds the key's entries in Get's
// order, each: replica id (length, bytes), counter, wall (zig-zag),
// logical<<1 | expires, the TTL if it expires, value (length, bytes); a
// 16-byte key with a 100-byte value and a 16-byte replica id takes 133
// bytes of Data. Restore checks every record and fails with
// ErrCorruptRecord naming the record (truncated, trailing bytes, unknown
// kind or version, a counter out of range, a duplicated record, a dot live
// under two keys), or ErrBounds past the default Bounds, never a panic
// (FuzzRestoreRecord). It restores the invariants whatever records are
// missing: a live dot missing from the context joins it, and the own row
// becomes [1, n] past every own dot (RestoreStats counts the repairs; the
// repaired rows are the first records the restored map yields), so the
// next Set never reuses a dot. Restoring under a new id keeps the data:
// the old id's writes become another replica's. RestoreStats.MaxTime tells
// the owner's HLC where to resume.
//
// # Testing
//
// The package's tests check the join laws on random states, compare the Map
// with a naive reference model, fuzz every decoder, and run a seeded
// simulator (simulator_test.go): replicas exchanging deltas and sync
// messages through a lossy network (drops, duplicates, reordering,
// partitions, gap-triggered syncs, then heal and anti-entropy to a fixed
// point), checking after each run that the replicas converged and that no
// write was lost or resurrected. With hostile replicas (sim_hostile_test.go)
// it also publishes poison contexts, impersonations, forged entries,
// replica-id floods and never-ready deltas into the same network, and checks
// that no honest write is lost or resurrected, that no flooded id is
// joined, and that the held deltas stayed within small bounds. With
// restarts (sim_restart_test.go), replicas write their records to a
// simulated disk after every step and restart from it at random, some
// under a new id: each restored map must equal the live one, and the run
// must still converge with nothing lost or resurrected. With chunked syncs
// (sim_chunks_test.go), every sync goes in tiny chunks that break off at
// random, and after every step each replica's context is checked against
// the write log. The simulator and
// the invariant check it uses (verify_test.go) are test code, not part of
// the API.
package ormap
