package ormap

import (
	"fmt"
	"slices"
	"strings"
)

// Chunked sync: B answers A's context C_A in pieces of bounded size instead
// of one Diff (see "Chunked sync" in the package documentation for the
// protocol and why it loses nothing when cut off after any piece):
//
//	removals, start := B.DiffStart(C_A)      // A: Join(removals)
//	from := ""
//	for {
//		ch := B.DiffChunk(C_A, start, from, budget) // A: JoinChunk(ch)
//		if ch.Done() { break }
//		from = ch.Next()
//	}
//	                                          // A: JoinContext(start)
//
// B keeps only C_A, start and the next key between pieces; A keeps only
// the next key it expects (ChunkSeq).

// Chunk is one piece of a chunked sync reply: the entries of the sender
// whose keys are in [From, Next) (or [From, ∞) if Done), whose dots the
// sync's start context holds and the requester's context lacks. Its
// context is exactly the dots of its entries: joining it adds entries and
// removes nothing. A Chunk is an immutable value; the zero Chunk is an
// empty, unfinished piece (Done false) of no range.
type Chunk struct {
	from, next string
	done       bool
	d          Delta // keyed, no origin, no deps; ctx = dots of the entries
}

// From returns the first key of the chunk's range.
func (c Chunk) From() string { return c.from }

// Next returns the end of the chunk's range, excluded: the From of the
// next chunk; "" when Done.
func (c Chunk) Next() string { return c.next }

// Done reports whether the chunk's range reaches past the last key: it is
// the sync's last chunk.
func (c Chunk) Done() bool { return c.done }

// Len returns the number of keys the chunk carries entries of.
func (c Chunk) Len() int { return len(c.d.groups) }

// Delta returns the chunk's entries as a keyed delta without origin whose
// context is exactly their dots (for inspection: Keys, Entries, MaxTime).
func (c Chunk) Delta() Delta { return c.d }

// chunkKeyCost is what DiffChunk charges for a key it visits, sent or not,
// so that a chunk over many keys the requester has already stays short
// too; a sent entry costs its key, value and entryCost more.
const (
	chunkKeyCost = 8
	entryCost    = 24
)

// DiffStart opens a chunked sync answering context c: it returns the
// removals, to be joined first (with Join), and start, m's context now, which
// every DiffChunk of this sync takes and the requester joins last (with
// JoinContext). The removals are a Diff-like reply without entries whose
// context is every dot m knows that is not live in m:
//
//	R = C \ dots(S)
//
// They remove, on the requester, every entry m had removed when the sync
// started — including the requester's own entries, whose dots c holds, so
// R does not leave out the dots c knows. R is closed under "overwrote": a
// dot that overwrote another is in C only if the other is, and then the
// other is not live, so joining R keeps the requester causally consistent
// (see the package documentation). If C ⊆ c the removals are empty and so
// will be every chunk.
//
// Cost: one pass over m's entries. R ⊆ Diff(c)'s context: one interval per
// run of dead dots, empty for a store that never overwrote or deleted, and
// in the worst case (keys overwritten many times in random order) up to
// about one interval per live key.
func (m *Map) DiffStart(c Context) (removals Delta, start Context) {
	start = m.Context()
	removals = Delta{origin: m.reps[0], global: true}
	if start.SubsetOf(c) {
		return removals, start
	}
	live := m.liveSets()
	m.tree.ascend("", func(key string, cur *entry) bool {
		if cur.rep&multiBit == 0 {
			live[cur.ri()].add(cur.ctr)
			return true
		}
		for _, e := range m.multi[key] {
			live[e.ri()].add(e.ctr)
		}
		return true
	})
	for i, iv := range m.ctx {
		if row := live[i].subtractFrom(iv); len(row) > 0 {
			removals.ctx.rows = append(removals.ctx.rows, ctxRow{m.reps[i], row})
		}
	}
	slices.SortFunc(removals.ctx.rows, func(a, b ctxRow) int { return strings.Compare(string(a.r), string(b.r)) })
	return removals, start
}

// DiffChunk returns the next piece of a chunked sync answering context c
// (see DiffStart, which gave start): the entries of m with keys from from
// on whose dots start holds and c lacks, stopping at a key boundary once
// about budget bytes are reached (each visited key costs 8, each sent
// entry its key, value and 24 more; at least one key is visited, so every
// chunk makes progress). Entries newer than start are left out: the
// requester gets them as deltas, or from the next sync. The chunk's range
// is [from, Next()), or [from, ∞) if Done.
//
// Cost: a walk over the chunk's range only (none if start ⊆ c: then the
// chunk is empty and Done at once); memory: the chunk.
func (m *Map) DiffChunk(c, start Context, from string, budget int) Chunk {
	if start.SubsetOf(c) {
		return Chunk{from: from, done: true}
	}
	budget = max(budget, 1)
	known := make([]ivs, len(m.reps))
	inStart := make([]ivs, len(m.reps))
	for _, r := range c.rows {
		if i, ok := m.repIdx[r.r]; ok {
			known[i] = r.iv
		}
	}
	for _, r := range start.rows {
		if i, ok := m.repIdx[r.r]; ok {
			inStart[i] = r.iv
		}
	}
	ch := Chunk{from: from, done: true}
	var ents []dentry
	var keys []string
	var ends []int
	var dots []Dot
	cost := 0
	visit := func(key string, e entry) {
		r := e.ri()
		if !inStart[r].contains(e.ctr) || known[r].contains(e.ctr) {
			return
		}
		ents = append(ents, dentry{rep: m.reps[r], ctr: e.ctr, val: e.val, ts: e.ts(), exp: m.expiry(e)})
		dots = append(dots, Dot{m.reps[r], e.ctr})
		cost += len(key) + len(e.val) + entryCost
	}
	m.tree.ascend(from, func(key string, cur *entry) bool {
		if cost >= budget {
			ch.next, ch.done = key, false
			return false
		}
		cost += chunkKeyCost
		n := len(ents)
		if cur.rep&multiBit == 0 {
			visit(key, *cur)
		} else {
			for _, e := range m.multi[key] {
				visit(key, e)
			}
		}
		if len(ents) > n {
			keys = append(keys, key)
			ends = append(ends, len(ents))
		}
		return true
	})
	ch.d.groups = make([]group, len(keys))
	prev := 0
	for i, k := range keys {
		ch.d.groups[i] = group{k, ents[prev:ends[i]:ends[i]]}
		prev = ends[i]
	}
	ch.d.ctx = contextOf(dots)
	return ch
}

// JoinChunk joins a chunk of a chunked sync at wall time now (as JoinAt: an
// entry expired at now is not stored): it adds the entries m lacks and their
// dots, and removes nothing. The removals and the dots of entries removed
// meanwhile come with DiffStart's removals and the final JoinContext. It
// returns ErrForeignDot, and changes nothing, if the chunk holds dots of
// m's own replica that m never minted, and ErrBounds past m's Bounds.
// Join the chunks of one sync in order, after its removals (ChunkSeq
// checks the order).
func (m *Map) JoinChunk(ch Chunk, now int64) ([]Change, error) {
	// A keyed delta without origin or deps is always ready, and joining it
	// visits only its keys; its context is its entries' dots, so it
	// removes no entry of an honest map.
	return m.JoinFrom(ch.d, now, "")
}

// JoinContext unites c into m's context and removes nothing: the last step
// of a chunked sync, with c the start context DiffStart returned. It is
// correct only then — after the sync's removals and every one of its
// chunks, in order, were joined: every dot of c is then either one m holds
// or knows, or one whose entry the sender had removed (at the start, or
// before it sent the dot's range). Joined at any other time it can make m
// skip writes it never received. It returns the changes of held deltas
// that became ready (joined at wall time now, as JoinAt), ErrForeignDot if c claims dots of m's own replica that
// m never minted, and ErrBounds past m's Bounds (changing nothing then).
//
// (Join of an entry-less global delta is not this: it removes every entry
// whose dot its context holds — the sync trap.)
func (m *Map) JoinContext(c Context, now int64) ([]Change, error) {
	return m.JoinFrom(Delta{ctx: c}, now, "")
}

// ChunkSeq follows a chunked sync on the receiving side: Accept checks
// that each chunk starts where the previous one ended, the first at "",
// and Done reports when the last was accepted, so that JoinContext runs
// only after a complete, gap-free sequence. The zero ChunkSeq expects the
// first chunk.
type ChunkSeq struct {
	next string
	done bool
}

// Accept checks that ch is the chunk expected next and advances; it returns
// an error wrapping ErrChunkOrder otherwise, and changes nothing.
func (s *ChunkSeq) Accept(ch Chunk) error {
	switch {
	case s.done:
		return fmt.Errorf("%w: a chunk after the last", ErrChunkOrder)
	case ch.from != s.next:
		return fmt.Errorf("%w: chunk from %q, expected from %q", ErrChunkOrder, ch.from, s.next)
	case !ch.done && ch.next <= ch.from:
		return fmt.Errorf("%w: empty range [%q, %q)", ErrChunkOrder, ch.from, ch.next)
	}
	s.next, s.done = ch.next, ch.done
	return nil
}

// Done reports whether the last chunk was accepted.
func (s *ChunkSeq) Done() bool { return s.done }
