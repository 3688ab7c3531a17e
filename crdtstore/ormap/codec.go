package ormap

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Wire format, versions 1 and 2 (see the package documentation for the
// layout). Version 2 is version 1 with expiring entries; a frame without
// one is always written, and only accepted, as version 1, so peers that
// know only version 1 read every frame of a store that does not use TTLs.
const (
	wireVersion  = 1
	wireTTL      = 2 // a delta frame with expiring entries
	kindContext  = 1
	kindDelta    = 2
	kindChunk    = 3 // a sync chunk: a range, then a delta body
	flagGlobal   = 1 // delta is not keyed (from Diff)
	minEntrySize = 5 // rep, counter, wall, logical, value length: 1 byte each at least
)

// Limits bound what a decoder accepts; a frame beyond any of them fails with
// ErrTooLarge before anything is allocated for it. A zero field takes its
// default, so Limits{} is the default set, sized for sync replies and
// snapshots; a wrapper should pass tighter limits for pubsub deltas.
type Limits struct {
	MaxFrameBytes int // whole frame; default 64 MiB
	MaxReplicas   int // replica ids in one frame; default 4,096
	MaxIntervals  int // intervals in one frame's context; default 1,048,576
	MaxKeys       int // keys in one delta; default 1,048,576
	MaxEntries    int // entries in one delta, all keys; default 2,097,152
	MaxKeyLen     int // bytes in one key; default 4,096
	MaxValueLen   int // bytes in one value; default 1 MiB
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxFrameBytes, 64<<20)
	def(&l.MaxReplicas, 4096)
	def(&l.MaxIntervals, 1<<20)
	def(&l.MaxKeys, 1<<20)
	def(&l.MaxEntries, 1<<21)
	def(&l.MaxKeyLen, 4096)
	def(&l.MaxValueLen, 1<<20)
	return l
}

// CheckSet returns an error wrapping ErrTooLarge if peers decoding with l
// would refuse a delta carrying key and value. Call it before Map.Set: a
// write no peer accepts would never replicate.
func (l Limits) CheckSet(key string, value []byte) error {
	l = l.withDefaults()
	if len(key) > l.MaxKeyLen {
		return fmt.Errorf("%w: key of %d bytes (limit %d)", ErrTooLarge, len(key), l.MaxKeyLen)
	}
	if len(value) > l.MaxValueLen {
		return fmt.Errorf("%w: value of %d bytes (limit %d)", ErrTooLarge, len(value), l.MaxValueLen)
	}
	return nil
}

// EncodeContext encodes c as a context frame: the sync request.
func EncodeContext(c Context) []byte {
	b := []byte{wireVersion, kindContext}
	table := c.Replicas()
	b = appendTable(b, table)
	return appendContext(b, c, table)
}

// EncodeDelta encodes d as a delta frame.
func EncodeDelta(d Delta) []byte { return encodeDelta(d, kindDelta, nil) }

// encodeDelta writes version, kind, head, then d's body.
func encodeDelta(d Delta, kind byte, head []byte) []byte {
	table := d.ctx.Replicas()
	if d.origin != "" {
		if i, ok := slices.BinarySearch(table, d.origin); !ok {
			table = slices.Insert(table, i, d.origin)
		}
	}
	size := 64 + 16*len(table) + 8*d.ctx.Intervals() + 8*d.deps.Intervals()
	for _, g := range d.groups {
		size += len(g.key) + 4
		for _, e := range g.ents {
			size += len(e.val) + 24
		}
	}
	version := byte(wireVersion)
	for _, g := range d.groups {
		for _, e := range g.ents {
			if e.exp != 0 {
				version = wireTTL
			}
		}
	}
	b := make([]byte, 2, size+len(head))
	b[0], b[1] = version, kind
	b = append(b, head...)
	b = appendTable(b, table)
	flags := byte(0)
	if d.global {
		flags |= flagGlobal
	}
	b = append(b, flags)
	origin := uint64(0)
	if d.origin != "" {
		i, _ := slices.BinarySearch(table, d.origin)
		origin = uint64(i) + 1
	}
	b = binary.AppendUvarint(b, origin)
	b = appendContext(b, d.ctx, table)
	b = appendContext(b, d.deps, table)
	b = binary.AppendUvarint(b, uint64(len(d.groups)))
	prev := ""
	for _, g := range d.groups {
		shared := commonPrefix(prev, g.key)
		b = binary.AppendUvarint(b, uint64(shared))
		b = appendString(b, g.key[shared:])
		prev = g.key
		b = binary.AppendUvarint(b, uint64(len(g.ents)))
		for _, e := range g.ents {
			i, _ := slices.BinarySearch(table, e.rep)
			b = binary.AppendUvarint(b, uint64(i))
			b = binary.AppendUvarint(b, e.ctr)
			b = binary.AppendVarint(b, e.ts.Wall)
			switch {
			case version == wireVersion:
				b = binary.AppendUvarint(b, uint64(e.ts.Logical))
			case e.exp == 0:
				b = binary.AppendUvarint(b, uint64(e.ts.Logical)<<1)
			default:
				b = binary.AppendUvarint(b, uint64(e.ts.Logical)<<1|1)
				b = binary.AppendUvarint(b, uint64(e.exp)-uint64(e.ts.Wall))
			}
			b = appendString(b, e.val)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTable(b []byte, table []ReplicaID) []byte {
	b = binary.AppendUvarint(b, uint64(len(table)))
	for _, r := range table {
		b = appendString(b, string(r))
	}
	return b
}

// appendContext writes the rows of c; table is sorted and holds every
// replica of c.
func appendContext(b []byte, c Context, table []ReplicaID) []byte {
	b = binary.AppendUvarint(b, uint64(len(c.rows)))
	for _, row := range c.rows {
		i, _ := slices.BinarySearch(table, row.r)
		b = binary.AppendUvarint(b, uint64(i))
		b = appendIntervals(b, row.iv)
	}
	return b
}

// appendIntervals writes a row's interval count and its intervals,
// delta-encoded: the first as (Lo-1, Hi-Lo), each next as
// (Lo-prevHi-2, Hi-Lo), so only valid lists can be written (reader.intervals
// reads them back).
func appendIntervals(b []byte, row ivs) []byte {
	b = binary.AppendUvarint(b, uint64(len(row)))
	var prev uint64
	for k, iv := range row {
		if k == 0 {
			b = binary.AppendUvarint(b, iv.Lo-1)
		} else {
			b = binary.AppendUvarint(b, iv.Lo-prev-2)
		}
		b = binary.AppendUvarint(b, iv.Hi-iv.Lo)
		prev = iv.Hi
	}
	return b
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// DecodeContext decodes a context frame within the limits l.
func DecodeContext(b []byte, l Limits) (Context, error) {
	r, err := newReader(b, l, kindContext, wireVersion)
	if err != nil {
		return Context{}, err
	}
	table := r.table()
	used := make([]bool, len(table))
	c, _ := r.context(table, used)
	r.end(used)
	if r.err != nil {
		return Context{}, r.err
	}
	return c, nil
}

// DecodeDelta decodes a delta frame within the limits l. Whatever it
// returns without error is a valid delta: joining it cannot break a Map.
func DecodeDelta(b []byte, l Limits) (Delta, error) {
	r, err := newReader(b, l, kindDelta, wireTTL)
	if err != nil {
		return Delta{}, err
	}
	return r.delta()
}

// delta reads the body of a delta frame (after version and kind) to the
// end of the frame.
func (r *reader) delta() (Delta, error) {
	expiring := false
	table := r.table()
	used := make([]bool, len(table))
	var d Delta
	flags := r.byte()
	if flags&^flagGlobal != 0 {
		r.fail(ErrMalformed, "unknown flags %#x", flags)
	}
	d.global = flags&flagGlobal != 0
	if o := r.uv(); o > uint64(len(table)) {
		r.fail(ErrMalformed, "origin index %d out of range", o)
	} else if o > 0 {
		d.origin = table[o-1]
		used[o-1] = true
	}
	var byIdx []ivs
	d.ctx, byIdx = r.context(table, used)
	d.deps, _ = r.context(table, used)
	if r.err == nil && !d.deps.SubsetOf(d.ctx) {
		r.fail(ErrMalformed, "dependencies outside the context")
	}

	n := r.count(r.lim.MaxKeys, 3, "keys")
	if n > 0 {
		d.groups = make([]group, 0, n)
	}
	// Duplicate dots: a bitmap per replica over its context span when that
	// is small next to the bytes left (so its size is bounded by the input),
	// else a list sorted at the end.
	seen := make([]liveSet, len(table))
	budget := uint64(len(r.b))/minEntrySize/64 + 1024
	for i, iv := range byIdx {
		if len(iv) > 0 {
			seen[i].base = iv[0].Lo
			if words := (iv.max()-iv[0].Lo)/64 + 1; words <= budget {
				seen[i].bits = make([]uint64, words)
				budget -= words
			}
		}
	}
	var dots []dotKey
	ents := make([]dentry, 0, n)
	ends := make([]int, 0, n)
	prev := ""
	for k := 0; k < n && r.err == nil; k++ {
		key := r.key(prev, k == 0)
		prev = key
		ne := r.count(r.lim.MaxEntries-len(ents), minEntrySize, "entries")
		if ne == 0 && d.global && r.err == nil {
			r.fail(ErrMalformed, "empty key in a global delta")
		}
		for e := 0; e < ne && r.err == nil; e++ {
			ri := r.uv()
			ctr := r.uv()
			wall := r.sv()
			lg := r.uv()
			var exp int64
			if r.version == wireTTL {
				if lg&1 != 0 {
					exp = r.expiry(wall)
					expiring = true
				}
				lg >>= 1
			}
			val := r.str(r.lim.MaxValueLen, "value")
			switch {
			case r.err != nil:
			case ri >= uint64(len(table)):
				r.fail(ErrMalformed, "replica index %d out of range", ri)
			case ctr == 0 || ctr > maxCounter:
				r.fail(ErrMalformed, "counter %d out of range", ctr)
			case lg > math.MaxUint32:
				r.fail(ErrMalformed, "logical clock %d out of range", lg)
			case !byIdx[ri].contains(ctr):
				r.fail(ErrMalformed, "entry dot not covered by the frame's context")
			}
			if r.err != nil {
				break
			}
			de := dentry{rep: table[ri], ctr: ctr, val: val, ts: Timestamp{wall, uint32(lg)}, exp: exp}
			if e > 0 && !betterD(ents[len(ents)-1], de) {
				r.fail(ErrMalformed, "entries out of order")
				break
			}
			ents = append(ents, de)
			if seen[ri].bits == nil {
				dots = append(dots, dotKey{uint32(ri), ctr})
			} else if seen[ri].testAndSet(ctr) {
				r.fail(ErrMalformed, "duplicate dot")
			}
		}
		d.groups = append(d.groups, group{key: key})
		ends = append(ends, len(ents))
	}
	if r.err == nil && r.version == wireTTL && !expiring {
		r.fail(ErrMalformed, "version %d frame without an expiring entry", wireTTL)
	}
	r.end(used)
	if r.err != nil {
		return Delta{}, r.err
	}
	slices.SortFunc(dots, func(a, b dotKey) int {
		if a.rep != b.rep {
			return cmp.Compare(uint64(a.rep), uint64(b.rep))
		}
		return cmp.Compare(a.ctr, b.ctr)
	})
	for i := 1; i < len(dots); i++ {
		if dots[i] == dots[i-1] {
			return Delta{}, fmt.Errorf("%w: duplicate dot", ErrMalformed)
		}
	}
	start := 0
	for i := range d.groups {
		if ends[i] > start {
			d.groups[i].ents = ents[start:ends[i]:ends[i]]
		}
		start = ends[i]
	}
	return d, nil
}

// reader decodes one frame; the first error sticks and stops everything.
type reader struct {
	b       []byte
	lim     Limits
	version byte
	err     error
}

// newReader starts decoding a frame of kind in a version from 1 to maxVersion.
func newReader(b []byte, l Limits, kind, maxVersion byte) (*reader, error) {
	l = l.withDefaults()
	switch {
	case len(b) > l.MaxFrameBytes:
		return nil, fmt.Errorf("%w: frame of %d bytes (limit %d)", ErrTooLarge, len(b), l.MaxFrameBytes)
	case len(b) < 2:
		return nil, fmt.Errorf("%w: short frame", ErrMalformed)
	case b[0] < wireVersion || b[0] > wireTTL:
		return nil, fmt.Errorf("%w: %d", ErrVersion, b[0])
	case b[1] != kind:
		return nil, fmt.Errorf("%w: %d, want %d", ErrFrameKind, b[1], kind)
	case b[0] > maxVersion:
		return nil, fmt.Errorf("%w: %d for frame kind %d", ErrVersion, b[0], kind)
	}
	return &reader{b: b[2:], lim: l, version: b[0]}, nil
}

// expiry reads the TTL of an entry written at wall and returns its expiry:
// the TTL is at least 1 and the expiry at most MaxInt64, and not 0.
func (r *reader) expiry(wall int64) int64 {
	ttl := r.uv()
	if r.err != nil {
		return 0
	}
	if ttl == 0 || ttl > uint64(math.MaxInt64)-uint64(wall) || uint64(wall)+ttl == 0 {
		r.fail(ErrMalformed, "TTL %d out of range", ttl) // expiry 0 means none
		return 0
	}
	return int64(uint64(wall) + ttl)
}

func (r *reader) fail(sentinel error, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail(ErrMalformed, "truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// uv reads a minimal unsigned varint.
func (r *reader) uv() uint64 {
	if r.err != nil {
		return 0
	}
	var x uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if i >= len(r.b) {
			r.fail(ErrMalformed, "truncated")
			return 0
		}
		c := r.b[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				break // non-minimal
			}
			r.b = r.b[i+1:]
			return x
		}
	}
	r.fail(ErrMalformed, "bad varint")
	return 0
}

// sv reads a zig-zag signed varint.
func (r *reader) sv() int64 {
	u := r.uv()
	return int64(u>>1) ^ -int64(u&1)
}

// count reads a count bounded by limit (ErrTooLarge) and by the bytes left,
// given that each counted item takes at least minSize bytes (ErrMalformed).
func (r *reader) count(limit, minSize int, what string) int {
	n := r.uv()
	switch {
	case r.err != nil:
		return 0
	case n > uint64(limit):
		r.fail(ErrTooLarge, "%d %s (limit %d)", n, what, limit)
		return 0
	case n > uint64(len(r.b)/minSize):
		r.fail(ErrMalformed, "%d %s in %d bytes", n, what, len(r.b))
		return 0
	}
	return int(n)
}

func (r *reader) str(limit int, what string) string {
	n := r.uv()
	switch {
	case r.err != nil:
		return ""
	case n > uint64(limit):
		r.fail(ErrTooLarge, "%s of %d bytes (limit %d)", what, n, limit)
		return ""
	case n > uint64(len(r.b)):
		r.fail(ErrMalformed, "truncated %s", what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// key reads a prefix-compressed key that must sort after prev.
func (r *reader) key(prev string, first bool) string {
	shared := r.uv()
	if r.err == nil && shared > uint64(len(prev)) {
		r.fail(ErrMalformed, "key prefix longer than the previous key")
	}
	suffix := r.str(r.lim.MaxKeyLen, "key")
	if r.err != nil {
		return ""
	}
	if int(shared)+len(suffix) > r.lim.MaxKeyLen {
		r.fail(ErrTooLarge, "key of %d bytes (limit %d)", int(shared)+len(suffix), r.lim.MaxKeyLen)
		return ""
	}
	key := prev[:shared] + suffix
	if !first && (commonPrefix(prev, key) != int(shared) || key <= prev) {
		r.fail(ErrMalformed, "keys not strictly increasing or not canonically compressed")
	}
	return key
}

// table reads the replica table: sorted, distinct, non-empty ids.
func (r *reader) table() []ReplicaID {
	n := r.count(r.lim.MaxReplicas, 2, "replicas")
	if n == 0 {
		return nil
	}
	t := make([]ReplicaID, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		id := ReplicaID(r.str(MaxReplicaIDLen, "replica id"))
		switch {
		case r.err != nil:
		case id == "":
			r.fail(ErrMalformed, "empty replica id")
		case i > 0 && id <= t[i-1]:
			r.fail(ErrMalformed, "replica ids not strictly increasing")
		}
		t = append(t, id)
	}
	return t
}

// context reads context rows; it marks the replicas it uses and returns the
// intervals by table index too.
func (r *reader) context(table []ReplicaID, used []bool) (Context, []ivs) {
	n := r.count(r.lim.MaxReplicas, 3, "context rows")
	if n > len(table) {
		r.fail(ErrMalformed, "%d context rows for %d replicas", n, len(table))
	}
	var c Context
	byIdx := make([]ivs, len(table))
	if n > 0 {
		c.rows = make([]ctxRow, 0, n)
	}
	total := 0
	last := -1
	for k := 0; k < n && r.err == nil; k++ {
		ri := r.uv()
		if r.err == nil && (ri >= uint64(len(table)) || int(ri) <= last) {
			r.fail(ErrMalformed, "context row replica index %d out of order or range", ri)
		}
		m := r.count(r.lim.MaxIntervals-total, 2, "intervals")
		if r.err == nil && m == 0 {
			r.fail(ErrMalformed, "empty context row")
		}
		if r.err != nil {
			break
		}
		total += m
		iv := r.intervals(m)
		last = int(ri)
		used[ri] = true
		byIdx[ri] = iv
		c.rows = append(c.rows, ctxRow{table[ri], iv})
	}
	return c, byIdx
}

// intervals reads a row of n intervals (n > 0): each a gap after the
// previous one and a span, so that rows are canonical by construction.
func (r *reader) intervals(n int) ivs {
	iv := make(ivs, 0, n)
	var prev uint64
	for j := 0; j < n && r.err == nil; j++ {
		gap, span := r.uv(), r.uv()
		base := uint64(1)
		if j > 0 {
			base = prev + 2
		}
		// base itself passes maxCounter after an interval that ends at
		// it: checked first, or maxCounter-base wraps around.
		if r.err == nil && (base > maxCounter || gap > maxCounter-base || span > maxCounter-(base+gap)) {
			r.fail(ErrMalformed, "counter out of range")
		}
		lo := base + gap
		prev = lo + span
		iv = append(iv, Interval{lo, prev})
	}
	return iv
}

// end checks that the frame is fully consumed and every replica used.
func (r *reader) end(used []bool) {
	if r.err != nil {
		return
	}
	if len(r.b) > 0 {
		r.fail(ErrMalformed, "%d trailing bytes", len(r.b))
		return
	}
	for i, u := range used {
		if !u {
			r.fail(ErrMalformed, "replica %d in the table but unused", i)
			return
		}
	}
}
