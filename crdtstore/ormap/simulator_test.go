package ormap

import (
	"fmt"
	"math"
	"strconv"
)

// simConfig configures simulate. Start from defaultSimConfig.
type simConfig struct {
	Seed     uint64
	Replicas int // replicas, at least 2
	Keys     int // distinct keys written, at least 1
	Ops      int // local Sets and (effective) Deletes, all replicas together

	Drop     float64 // probability that one copy of a delta is lost
	Dup      float64 // probability that a delivered delta arrives twice
	MaxDelay int     // deliveries are delayed 0..MaxDelay steps (reordering)

	// Partition is the probability, each step with no partition, that the
	// replicas split in two groups for 10-60 steps. Nothing (deltas or sync
	// messages) crosses a partition.
	Partition float64

	// Flush is the probability, each step, that a replica sends its
	// coalesced local deltas (Delta.Merge) as one frame.
	Flush float64

	// AntiEntropy is the probability, each step, that a random pair of
	// replicas starts a background sync.
	AntiEntropy float64

	// NaiveDiff replaces Diff in sync replies by the trap (missing entries
	// plus the full context), to show that the checks catch it. Never set it
	// outside such a test.
	NaiveDiff bool

	// TTL is the probability that a Set expires, MaxTTL nanoseconds at
	// most after its timestamp (a step is 1,000 ns of wall clock).
	TTL    float64
	MaxTTL int64
	// Skew bounds each replica's clock offset: ±Skew ns. The HLCs' MaxOffset
	// is 2×Skew+1, so no honest timestamp is refused.
	Skew int64
	// Expire is the probability, each step, that a replica's expiry timer
	// fires: Expire at its wall clock, at most ExpireBatch entries.
	Expire      float64
	ExpireBatch int

	// LoseTTL makes receivers drop the expiry of every entry they join (a
	// broken codec), to show that the checks catch it. Test only.
	LoseTTL bool

	// Hostile replicas (sim_hostile_test.go) publish, at HostileRate per
	// step, deltas that claim others' dots, impersonate them, flood replica
	// ids or never become ready. Receivers then check deltas as the
	// wrapper does (Delta.CheckOwn, origin = sender) and hold them within
	// HostileBounds.
	Hostile     int
	HostileRate float64
	// NoGuard skips the wrapper's checks, to show that the simulation
	// catches what they prevent. Test only.
	NoGuard bool

	// Restart is the probability, each step, that a replica restarts from
	// its records (sim_restart_test.go): every replica then tracks its
	// changes into a simulated disk after each step. NewID is the share of
	// restarts under a new replica id (the old identity lost, its data
	// kept).
	Restart float64
	NewID   float64

	// ChunkBudget > 0 makes every sync reply chunked (sim_chunks_test.go):
	// DiffStart's removals, then DiffChunk pieces of about ChunkBudget
	// bytes, each pulled by the requester, then JoinContext of the start
	// context. ChunkAbort is the probability that the stream breaks before
	// each of its messages. Every step then also checks each replica's
	// context against the write log (checkChunkModel); a negative
	// ChunkBudget runs only that check, with plain syncs.
	ChunkBudget int
	ChunkAbort  float64
	// ChunkProposal runs the scheme first proposed for chunks instead: no
	// removals up front, chunks carrying the sender's current context for
	// removals scoped to their range. Test only: it is unsound.
	ChunkProposal bool
}

// defaultSimConfig returns the configuration the package tests run: 5
// replicas, 300 operations on 8 keys, 20 % loss, 10 % duplication,
// reordering and partitions; clocks skewed by ±100 ns (steps are 1,000 ns);
// 30 % of the Sets expire 1 ns to 40 steps after their timestamp, and each
// replica's expiry timer fires at 30 % of the steps, 4 entries at most.
func defaultSimConfig(seed uint64) simConfig {
	return simConfig{
		Seed: seed, Replicas: 5, Keys: 8, Ops: 300,
		Drop: 0.2, Dup: 0.1, MaxDelay: 8,
		Partition: 0.02, Flush: 0.5, AntiEntropy: 0.02,
		TTL: 0.3, MaxTTL: 40_000, Skew: 100, Expire: 0.3, ExpireBatch: 4,
	}
}

// simReport counts what happened in one simulation.
type simReport struct {
	Steps   int // simulated time steps, until the fixed point
	Sets    int // local Sets
	Deletes int // local Deletes that removed something
	Keys    int // keys with a value at the end

	Sent, Dropped, Duplicated int // delta frames, one per receiver

	Gaps     int // deltas for which HasGap said to pull a sync
	Syncs    int // sync exchanges started during the run
	SyncsCut int // of those, cut by a partition

	FinalRounds     int // rounds of ring-wise anti-entropy after the heal
	FinalSyncs      int // syncs in those rounds
	FinalRoundTrips int // their round trips (1 if already equal, else 2)

	TTLSets     int // Sets with a TTL
	Expirations int // visible changes reported by Expire, all replicas
	Expired     int // TTL writes not overwritten that expired by the end
	LiveTTL     int // TTL writes not overwritten still live at the end

	Attacks     int // hostile deltas published
	Refused     int // deltas receivers refused (wrapper checks or Join)
	MaxHeld     int // most bytes any replica held back at a check
	HeldDropped int // held deltas dropped by the bounds, all replicas
	HostileHeld int // hostile deltas still held at the end, all replicas

	Restarts, NewIDs int // restarts from records; of those, under a new id

	Chunks, ChunkedDone int // chunks joined; chunked syncs that reached JoinContext
}

// simulate runs replicas of a Map through a lossy network, deterministically
// for a seed: random Sets, Deletes and re-Sets on few keys; deltas coalesced,
// encoded, dropped, duplicated, reordered and cut by partitions; gaps
// detected and repaired by pull syncs, which run as real message exchanges
// (request, reply, symmetric answer) while the replicas keep writing. Then
// the network heals, in-flight messages arrive, and pairwise syncs run to a
// fixed point.
//
// It returns an error naming the seed if any check fails: invariants of a
// replica; all replicas equal (context and entries); every write that no
// operation overwrote or deleted is visible, with its value (no write lost);
// nothing else is (no unknown key, no deleted write resurrected).
func simulate(cfg simConfig) (simReport, error) {
	s := &sim{cfg: cfg, rnd: simRand{cfg.Seed}}
	rep, err := s.run()
	if err != nil {
		err = fmt.Errorf("ormap simulation seed %d: %w", cfg.Seed, err)
	}
	return rep, err
}

type simMsg struct {
	at, from, to int
	kind         int
	frame, ctx   []byte
	live         []Dot // ChunkProposal: the sender's live dots of the chunk's range
}

const (
	msgDelta = iota
	msgSyncReq
	msgSyncReply
	msgSyncAnswer
	msgChunkStart // B → A: DiffStart's removals
	msgChunkNext  // A → B: the next chunk, from the key in frame
	msgChunk      // B → A: a chunk; with ctx (the start context) if the last
)

type simReplica struct {
	m       *Map
	clock   HLC
	skew    int64
	pending Delta
	dirty   bool
	// expiredTo: the map holds no entry that expired at or before it (the
	// time of its last Expire that left nothing due).
	expiredTo int64
	disk      map[diskKey][]byte // records written, with Restart
}

type simWrite struct {
	key string
	val string
	exp int64 // 0: no TTL
}

type sim struct {
	cfg     simConfig
	rnd     simRand
	rep     simReport
	t       int
	rs      []*simReplica
	queue   []simMsg
	syncing map[[2]int]bool
	side    []bool // partition side per replica, nil when healed
	healAt  int

	writes      map[Dot]simWrite // every Set ever made
	overwritten map[Dot]bool     // dots some Set or Delete overwrote
	overwriters map[Dot][]Dot    // the dots of the Sets and Deletes that overwrote a write

	chunks map[[2]int]*simChunkSync // chunked syncs under way, by pair

	hostile []*simHostile // sim_hostile_test.go; senders len(rs)+i
}

func (s *sim) run() (simReport, error) {
	cfg := s.cfg
	if cfg.Replicas < 2 || cfg.Keys < 1 || cfg.Ops < 0 {
		return s.rep, fmt.Errorf("bad config %+v", cfg)
	}
	s.syncing = make(map[[2]int]bool)
	s.writes = make(map[Dot]simWrite)
	s.overwritten = make(map[Dot]bool)
	s.overwriters = make(map[Dot][]Dot)
	s.chunks = make(map[[2]int]*simChunkSync)
	for i := 0; i < cfg.Replicas; i++ {
		// Ids of different lengths and orders exercise the tie-breaks.
		id := ReplicaID(strconv.Itoa(int(s.rnd.next()%1000)) + "-" + strconv.Itoa(i))
		r := &simReplica{m: New(id), expiredTo: math.MinInt64}
		if cfg.Restart > 0 {
			r.m.TrackChanges()
			r.disk = make(map[diskKey][]byte)
		}
		if cfg.Skew > 0 {
			r.skew = int64(s.rnd.intn(int(2*cfg.Skew+1))) - cfg.Skew
			r.clock.MaxOffset = 2*cfg.Skew + 1
		}
		s.rs = append(s.rs, r)
	}
	s.startHostile()
	ops := 0
	for ops < cfg.Ops {
		s.t++
		s.partition()
		if err := s.deliver(false); err != nil {
			return s.rep, err
		}
		if s.rnd.chance(0.5) && s.operate(s.rnd.intn(cfg.Replicas)) {
			ops++
		}
		for i := range s.rs {
			if s.rnd.chance(cfg.Flush) {
				s.flush(i)
			}
		}
		if s.rnd.chance(cfg.AntiEntropy) {
			a := s.rnd.intn(cfg.Replicas)
			s.startSync(a, (a+1+s.rnd.intn(cfg.Replicas-1))%cfg.Replicas)
		}
		for i := range s.rs {
			if s.rnd.chance(cfg.Expire) {
				s.expire(i, cfg.ExpireBatch)
			}
		}
		if cfg.Hostile > 0 && s.rnd.chance(cfg.HostileRate) {
			s.attack()
		}
		if cfg.Restart > 0 {
			if err := s.restarts(); err != nil {
				return s.rep, fmt.Errorf("step %d: %w", s.t, err)
			}
		}
		if cfg.ChunkBudget != 0 {
			if err := s.checkChunkModel(); err != nil {
				return s.rep, fmt.Errorf("step %d: %w", s.t, err)
			}
		}
		if s.t%16 == 0 {
			s.noteHeld()
			for i, r := range s.rs {
				if err := r.m.verify(); err != nil {
					return s.rep, fmt.Errorf("step %d, replica %s: %w", s.t, r.m.Replica(), err)
				}
				if err := s.checkExpiry(i); err != nil {
					return s.rep, fmt.Errorf("step %d, replica %s: %w", s.t, r.m.Replica(), err)
				}
			}
		}
	}
	// Heal, flush, deliver everything in flight.
	s.side = nil
	for i := range s.rs {
		s.flush(i)
	}
	for len(s.queue) > 0 {
		s.t++
		if err := s.deliver(true); err != nil {
			return s.rep, err
		}
	}
	if err := s.fixedPoint(); err != nil {
		return s.rep, err
	}
	// Every clock passes the same time: each replica's timer catches up.
	for i := range s.rs {
		if err := s.checkExpiry(i); err != nil {
			return s.rep, fmt.Errorf("after the heal, replica %s: %w", s.rs[i].m.Replica(), err)
		}
		s.expire(i, 0)
	}
	s.rep.Steps = s.t
	s.rep.Keys = s.rs[0].m.Len()
	return s.rep, s.check()
}

func (s *sim) wall(i int) int64 { return int64(s.t)*1000 + s.rs[i].skew }

// end is the latest wall time any replica reached: at the end every clock
// has passed it (each replica's last Expire runs at it).
func (s *sim) end() int64 { return int64(s.t)*1000 + s.cfg.Skew }

// expire runs replica i's expiry timer at its wall clock (at the end of the
// run, with max 0: at s.end(), everything).
func (s *sim) expire(i, max int) {
	r := s.rs[i]
	now := s.wall(i)
	if max == 0 {
		now = s.end()
	}
	ch, more := r.m.Expire(now, max)
	s.rep.Expirations += len(ch)
	if !more {
		r.expiredTo = now
	}
}

// checkExpiry: replica i holds no entry its timer already removed, or that
// expired before it arrived (no resurrection), and reads at its clock show
// nothing expired.
func (s *sim) checkExpiry(i int) error {
	r := s.rs[i]
	for key := range r.m.Scan("") {
		for _, e := range r.m.GetAll(key) {
			if e.Expired(r.expiredTo) {
				return fmt.Errorf("key %q: entry %v expired at %d, after the expiry at %d, is back", key, e.Dot, e.Expires, r.expiredTo)
			}
		}
	}
	now := s.wall(i)
	for key, e := range r.m.At(now).Scan("") {
		if e.Expired(now) {
			return fmt.Errorf("key %q: a read at %d returns an entry expired at %d", key, now, e.Expires)
		}
	}
	return nil
}

func (s *sim) partition() {
	if s.side != nil && s.t >= s.healAt {
		s.side = nil
	}
	if s.side == nil && s.rnd.chance(s.cfg.Partition) {
		s.side = make([]bool, len(s.rs))
		for i := range s.side {
			s.side[i] = s.rnd.chance(0.5)
		}
		s.healAt = s.t + 10 + s.rnd.intn(51)
	}
}

// cut reports whether a partition separates a and b; hostile replicas
// (indexes past the honest ones) reach everyone.
func (s *sim) cut(a, b int) bool {
	return s.side != nil && a < len(s.side) && b < len(s.side) && s.side[a] != s.side[b]
}

// operate makes replica i Set or Delete a random key; false if it tried to
// delete a key it has no value for.
func (s *sim) operate(i int) bool {
	r := s.rs[i]
	key := "k" + strconv.Itoa(s.rnd.intn(s.cfg.Keys))
	var d Delta
	var self Dot
	if s.rnd.chance(0.3) {
		var ok bool
		if d, ok = r.m.Delete(key); !ok {
			return false
		}
		s.rep.Deletes++
		self = Dot{r.m.Replica(), d.ctx.Max(r.m.Replica())}
	} else {
		val := fmt.Sprintf("%s@%d", r.m.Replica(), s.t)
		var ttl int64
		if s.rnd.chance(s.cfg.TTL) {
			ttl = 1 + int64(s.rnd.intn(int(s.cfg.MaxTTL)))
			s.rep.TTLSets++
		}
		d = r.m.SetTTL(key, []byte(val), r.clock.Now(s.wall(i)), ttl)
		s.rep.Sets++
		e := d.Entries(key)[0]
		self = e.Dot
		s.writes[self] = simWrite{key, val, e.Expires}
	}
	for _, rid := range d.ctx.Replicas() {
		for _, iv := range d.ctx.Ranges(rid) {
			for c := iv.Lo; c <= iv.Hi; c++ {
				if dot := (Dot{rid, c}); dot != self {
					s.overwritten[dot] = true
					s.overwriters[dot] = append(s.overwriters[dot], self)
				}
			}
		}
	}
	r.pending = r.pending.Merge(d)
	r.dirty = true
	return true
}

func (s *sim) flush(i int) {
	r := s.rs[i]
	if !r.dirty {
		return
	}
	frame := EncodeDelta(r.pending)
	r.pending, r.dirty = Delta{}, false
	for j := range s.rs {
		if j == i {
			continue
		}
		s.rep.Sent++
		if s.rnd.chance(s.cfg.Drop) {
			s.rep.Dropped++
			continue
		}
		s.send(simMsg{from: i, to: j, kind: msgDelta, frame: frame})
		if s.rnd.chance(s.cfg.Dup) {
			s.rep.Duplicated++
			s.send(simMsg{from: i, to: j, kind: msgDelta, frame: frame})
		}
	}
}

func (s *sim) send(m simMsg) {
	m.at = s.t + 1 + s.rnd.intn(s.cfg.MaxDelay+1)
	s.queue = append(s.queue, m)
}

// deliver handles the messages due now, in random order; with all set, every
// message in flight.
func (s *sim) deliver(all bool) error {
	var due []simMsg
	rest := s.queue[:0]
	for _, m := range s.queue {
		if all || m.at <= s.t {
			due = append(due, m)
		} else {
			rest = append(rest, m)
		}
	}
	s.queue = rest
	for i := len(due) - 1; i > 0; i-- {
		j := s.rnd.intn(i + 1)
		due[i], due[j] = due[j], due[i]
	}
	for _, m := range due {
		if err := s.handle(m); err != nil {
			return err
		}
	}
	return nil
}

func (s *sim) handle(msg simMsg) error {
	if s.cut(msg.from, msg.to) {
		if msg.kind != msgDelta {
			s.rep.SyncsCut++
			delete(s.syncing, [2]int{min(msg.from, msg.to), max(msg.from, msg.to)})
		}
		return nil
	}
	to := s.rs[msg.to]
	switch msg.kind {
	case msgDelta:
		d, ok, err := s.receive(msg)
		if err != nil || !ok {
			return err
		}
		if to.m.HasGap(d) && msg.from < len(s.rs) {
			s.rep.Gaps++
			s.startSync(msg.to, msg.from)
		}
	case msgSyncReq: // at B: reply with what A lacks, and B's context
		cA, err := DecodeContext(msg.frame, Limits{})
		if err != nil {
			return err
		}
		cB := to.m.Context()
		if cB.Equal(cA) {
			delete(s.syncing, [2]int{min(msg.from, msg.to), max(msg.from, msg.to)})
			return nil
		}
		if s.cfg.ChunkBudget > 0 {
			return s.chunkStart(msg, cA)
		}
		s.send(simMsg{from: msg.to, to: msg.from, kind: msgSyncReply,
			frame: EncodeDelta(s.diff(to.m, cA)), ctx: EncodeContext(cB)})
	case msgSyncReply: // at A: join, answer symmetrically against B's context
		if _, err := s.join(msg.to, msg.frame); err != nil {
			return err
		}
		cB, err := DecodeContext(msg.ctx, Limits{})
		if err != nil {
			return err
		}
		s.send(simMsg{from: msg.to, to: msg.from, kind: msgSyncAnswer, frame: EncodeDelta(s.diff(to.m, cB))})
	case msgSyncAnswer: // at B
		delete(s.syncing, [2]int{min(msg.from, msg.to), max(msg.from, msg.to)})
		if _, err := s.join(msg.to, msg.frame); err != nil {
			return err
		}
	default:
		return s.handleChunk(msg)
	}
	return nil
}

// startSync has replica a pull from b, unless a sync between them runs.
func (s *sim) startSync(a, b int) {
	k := [2]int{min(a, b), max(a, b)}
	if s.syncing[k] {
		return
	}
	s.syncing[k] = true
	s.rep.Syncs++
	s.send(simMsg{from: a, to: b, kind: msgSyncReq, frame: EncodeContext(s.rs[a].m.Context())})
}

func (s *sim) diff(m *Map, c Context) Delta {
	d := m.Diff(c)
	if s.cfg.NaiveDiff {
		d.ctx = m.Context() // the trap
	}
	return d
}

func (s *sim) join(i int, frame []byte) (Delta, error) { return s.joinFrom(i, frame, "") }

// joinFrom is join of a delta from source src.
func (s *sim) joinFrom(i int, frame []byte, src string) (Delta, error) {
	d, err := DecodeDelta(frame, Limits{})
	if err != nil {
		return d, fmt.Errorf("decoding our own frame: %w", err)
	}
	r := s.rs[i]
	r.clock.Observe(d.MaxTime(), s.wall(i))
	if s.cfg.LoseTTL {
		d = d.withoutTTL()
	}
	if _, err := r.m.JoinFrom(d, s.wall(i), src); err != nil {
		return d, fmt.Errorf("replica %s: %w", r.m.Replica(), err)
	}
	return d, nil
}

// syncNow runs the whole sync protocol between a and b at once, through the
// codec; it returns the round trips used.
func (s *sim) syncNow(a, b int) (int, error) {
	A, B := s.rs[a].m, s.rs[b].m
	cA, err := DecodeContext(EncodeContext(A.Context()), Limits{})
	if err != nil {
		return 0, err
	}
	cB := B.Context()
	if cB.Equal(cA) {
		return 1, nil
	}
	if s.cfg.ChunkBudget > 0 && !s.cfg.ChunkProposal {
		return s.chunkSyncNow(a, b, cA)
	}
	if _, err := s.join(a, EncodeDelta(s.diff(B, cA))); err != nil {
		return 0, err
	}
	if _, err := s.join(b, EncodeDelta(s.diff(A, cB))); err != nil {
		return 0, err
	}
	return 2, nil
}

// fixedPoint runs pairwise syncs around the ring until all contexts agree.
func (s *sim) fixedPoint() error {
	n := len(s.rs)
	for round := 1; round <= n+1; round++ {
		s.rep.FinalRounds = round
		equal := true
		c0 := s.rs[0].m.Context()
		for _, r := range s.rs[1:] {
			equal = equal && r.m.Context().Equal(c0)
		}
		if equal {
			return nil
		}
		for i := 0; i < n; i++ {
			rt, err := s.syncNow(i, (i+1)%n)
			if err != nil {
				return err
			}
			s.rep.FinalSyncs++
			s.rep.FinalRoundTrips += rt
		}
	}
	return fmt.Errorf("no fixed point after %d rounds of anti-entropy", n+1)
}

func (s *sim) check() error {
	if err := s.checkHostile(); err != nil {
		return err
	}
	for _, r := range s.rs {
		if err := r.m.verify(); err != nil {
			return fmt.Errorf("replica %s: %w", r.m.Replica(), err)
		}
		if n := s.honestHeld(r.m); n > 0 {
			return fmt.Errorf("replica %s: %d deltas still held after the heal", r.m.Replica(), n)
		}
	}
	for _, r := range s.rs[1:] {
		if err := sameState(s.rs[0].m, r.m); err != nil {
			return fmt.Errorf("replicas %s and %s differ: %w", s.rs[0].m.Replica(), r.m.Replica(), err)
		}
	}
	m := s.rs[0].m
	end := s.end()
	visible := make(map[Dot]bool)
	for key := range m.Scan("") {
		for _, e := range m.GetAll(key) {
			w, ok := s.writes[e.Dot]
			switch {
			case !ok || w.key != key || w.val != string(e.Value) || w.exp != e.Expires:
				return fmt.Errorf("key %q holds %q (dot %v, expiry %d) that nobody wrote there", key, e.Value, e.Dot, e.Expires)
			case s.overwritten[e.Dot]:
				return fmt.Errorf("key %q: write %q (dot %v) was overwritten or deleted, yet is back", key, e.Value, e.Dot)
			case e.Expired(end):
				return fmt.Errorf("key %q: write %q (dot %v) expired at %d, yet is there at %d", key, e.Value, e.Dot, e.Expires, end)
			}
			visible[e.Dot] = true
		}
	}
	for dot, w := range s.writes {
		switch {
		case s.overwritten[dot]:
		case w.exp != 0 && w.exp <= end:
			s.rep.Expired++
		case !visible[dot]:
			return fmt.Errorf("write %q to %q (dot %v, expiry %d, end %d) lost", w.val, w.key, dot, w.exp, end)
		case w.exp != 0:
			s.rep.LiveTTL++
		}
	}
	return nil
}

// simRand is SplitMix64: tiny, seeded, and the same on every platform.
type simRand struct{ s uint64 }

func (r *simRand) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (r *simRand) intn(n int) int { return int(r.next() % uint64(n)) }

func (r *simRand) chance(p float64) bool { return float64(r.next()>>11)/(1<<53) < p }
