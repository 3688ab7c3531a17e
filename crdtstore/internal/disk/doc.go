// Package disk is the on-disk engine of a persistent crdtstore: an ordered,
// group-committed batch log over an embedded pebble/v2 (v2.1.7) database.
// The store keeps its data in memory and calls this package only to persist
// writes and to read everything back at start.
//
// # Records
//
// A record is (kind, name) → data. On disk its key is the kind byte followed
// by name; Scan returns records ordered by kind, then name. The store uses
// 'k' (keys), 'r' (causal-context rows) and 'm' (meta). Kind 0 is reserved:
// it holds the format record, key "\x00format", value "reflect\x00" and a
// big-endian uint32 version (1). Open writes it into an empty directory and
// checks it otherwise: another version gives ErrFormat, an undecodable one
// ErrCorrupt, records without one ErrFormat.
//
// # Commits and their order
//
// Enqueue appends a batch to one commit queue and returns a Ticket at once;
// Ticket.Wait returns when the batch is committed. Batches reach the log in
// Enqueue order across goroutines, so a caller that enqueues under its own
// lock and waits outside it never sees a batch overwritten by an earlier
// one. One goroutine takes the whole queue each round, merges it into one
// pebble batch (in order) and applies it with pebble.Sync, then releases
// the round's tickets; batches enqueued while a round is being written (and
// fsynced) form the next round, so concurrent committers share one log
// write and one fsync (group commit). A batch is atomic: after any crash it
// is all there or not at all. After a failed commit (an I/O error) every
// later batch fails with the same error; the DB must be closed.
//
// In Power mode the committer lingers before it takes the queue, until as
// many callers wait in Ticket.Wait as were waiting when the last round
// ended, for at most half the last commit's duration (≤ 1 ms). Writers in
// a loop (commit, wait, commit again) otherwise split into two cohorts that
// take turns, each writer waiting for two fsyncs: with 16 such writers,
// rounds held 1+15, 4+12 or 8+8 batches, 8 per fsync on average (15.4–16
// with the linger). Stats.Rounds and Stats.Batches count rounds and
// batches. The linger changes only when a round starts: a batch's ticket
// still returns only after the fsync that covers it.
//
// # Durability
//
//   - Crash (default): a committed batch survives kill -9 of the process.
//     Its log record was written to the OS with write(2), but not fsynced.
//     This is pebble.Sync over a file system whose WAL files (*.log) do not
//     fsync (walNoSyncFS); sstables, the MANIFEST and directories fsync as
//     usual, and a WAL is fsynced when pebble closes it (rotation, Close).
//     After a power loss the records that survive are a prefix of the
//     committed ones (the tail of the newest WAL may be lost).
//     pebble.NoSync is NOT crash safe: it keeps acknowledged records in a
//     32 KiB buffer in process memory (TestKill9KeepsAcknowledged fails with
//     it).
//   - Power: also survives power loss: each round is fsynced before its
//     tickets return; concurrent committers share the fsync.
//
// # Automatic compaction
//
// pebble compacts in the background, but after heavy overwrites and
// deletes its tables can stay several times larger than the live data
// while nothing more is written. A user that reports its live size
// (SetLive; the store does after reading its records and after each save)
// gets a compactor goroutine: every 4 MiB committed, when the live size
// moved by a quarter, and every 10 s if it moved at all, it compares the
// live sstables and WAL with the live size and compacts the whole key
// space online (Compact) when they exceed 2× (or 1.5× the ratio left by
// the last compaction, if larger: records much bigger than the live bytes
// must not compact in a loop) and 32 MiB. Stats.AutoCompactions counts
// them; a failure counts in Stats.BackgroundErrors and logs at Warn. Close
// cancels a running one. Not counted: obsolete files until pebble deletes
// them, and the WAL files kept for reuse (up to 3 × 4 MiB).
//
// # Directory lock, damage
//
// Open locks dir/REFLECT.LOCK with flock(2): a second Open of the
// directory, from this or another process, gets ErrLocked naming it; the
// kernel drops the lock when the process dies. pebble's own LOCK is taken
// as well.
//
// What pebble does with damaged files (TestDamagedWAL, TestDamagedSSTable):
//   - newest WAL truncated, with garbage or zeros appended, or a byte
//     flipped: Open succeeds with an intact prefix of the committed records
//     (pebble treats any unreadable tail of the newest log as its end;
//     nothing tells what was cut);
//   - an older WAL truncated or damaged: ErrCorrupt (an older log must end
//     cleanly); except an older WAL truncated to 0 bytes, which pebble
//     cannot tell from an empty one: it opens without those records (only
//     outside damage does this, since a WAL is fsynced when closed);
//   - a flipped byte in an sstable: ErrCorrupt from Open (which reads the
//     format record) or from Scan/Get; the checksum catches it. pebble's
//     default reaction to corruption found while reading is Logger.Fatalf;
//     here it is counted (Stats.Corruptions), logged at Error (at most once
//     per 10 s) and the read returns ErrCorrupt.
//
// Every error wraps a sentinel (ErrLocked, ErrFormat, ErrCorrupt,
// ErrClosed) or pebble's error, with the operation and the directory.
// A panic inside pebble.Open is returned as ErrCorrupt.
//
// # Logging
//
// Options.Logger receives pebble's Infof at Debug and Errorf at Warn;
// failed background jobs (flush, compaction) are counted
// (Stats.BackgroundErrors) and logged at Warn, rate-limited. pebble calls
// Fatalf only when it cannot continue (a failed MANIFEST or WAL write, a
// broken invariant): it is logged at Error and then panics, as pebble's
// default logger exits the process.
//
// # Goroutines
//
// An open DB owns two goroutines (the committer, the compactor) plus
// pebble's own. Close commits everything enqueued before it, cancels an
// automatic compaction, stops them, closes pebble
// and releases the lock; batches enqueued after it fail with ErrClosed, and
// reads return ErrClosed. A second Close returns nil.
//
// # Figures (2 shared vCPUs, virtio disk, ext4; one 200 B O_DSYNC write
// ≈ 300 µs; go test -bench, load average 2–4 from other builds)
//
//   - BenchmarkCommitCrash, 1 writer, ~200 B batch, Enqueue+Wait:
//     p50 3.0–3.3 µs, p99 37–40 µs (target p50 ≤ 20 µs).
//   - BenchmarkCommitCrash16, 16 writers: 135,000–210,000 commits/s.
//   - BenchmarkCommitPower (1 writer, fsync): p50 340–390 µs.
//   - BenchmarkCommitPower16, 16 writers, fsync: before the linger
//     11,600–27,300 commits/s (8.0 batches per fsync: two cohorts), with
//     it 30,600–42,300 (median of 4: 39,800; runs interleaved, load
//     average 20–40; 54,000 when the disk was quiet), 15.7–16 batches per
//     fsync. pebble's own group commit (BenchmarkPebbleSync16) measured
//     8,000–18,500/s in the same hour: no better. The bound is
//     16 writers / the time of one round (write + fdatasync, 260 µs when
//     quiet, 500–800 µs under load; a bare 200 B write+fsync: p50 190–230
//     µs, mean 210–650 µs): ~60,000/s at best here, less the writers' CPU
//     between rounds. With more writers than 16 a round covers more.
//   - Through the store (crdtstore BenchmarkSetDirConcurrent, fsync=true):
//     before 11,200–28,700 Sets/s (median of 4 ≈ 21,500), after
//     16,100–32,100 (≈ 25,000) under load, 35,000–38,000 when quieter
//     (14.2 batches per fsync): the store's CPU per Set on 2 shared cores
//     comes on top of the fsync.
//   - BenchmarkDiskChurn (crdtstore; 1M keys × 100 B written 4 times, half
//     deleted; disk / Stats().Bytes): before 2.86× until a manual
//     compaction (1.27× after it); with the automatic compaction 1.67–1.87×
//     right after the churn, without a manual one.
//   - BenchmarkScan1M: reopen + scan of 1M records (23 B key, 100 B
//     random value), compacted: 0.15 s (engine part of a restart; building
//     the store's map comes on top); disk 1.03× the live bytes.
//     BenchmarkScan100k: 31 ms, 2.6× (fixed overhead of a small store).
//
// The engine comparison with bbolt that chose pebble is in the issue 12
// notes (/work/notes/engines-result.md at the time of writing): pebble won
// on latency, concurrent fsync throughput and online compaction, at the
// cost of a larger binary (+13 MB on a binary already linking the
// library's dependencies).
package disk
