package ormap

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// fb builds frames by hand.
type fb []byte

func (b fb) u(xs ...uint64) fb {
	for _, x := range xs {
		b = binary.AppendUvarint(b, x)
	}
	return b
}
func (b fb) s(str string) fb  { return append(b.u(uint64(len(str))), str...) }
func (b fb) raw(x ...byte) fb { return append(b, x...) }

// goldenDelta is New("a").Set("k", "v", 5.1): version 1, kind 2 (delta),
// table [a], flags 0, origin a, context {a:1}, deps {}, key k with one
// entry (a:1, wall 5, logical 1, "v").
const goldenDelta = "0102" + "010161" + "00" + "01" + "0100010000" + "00" + "01" + "00016b" + "01" + "0001" + "0a" + "01" + "0176"

// goldenContext is {a:1-3,7 b:2}.
const goldenContext = "0101" + "02016101" + "62" + "02" + "0002" + "0002" + "0200" + "01010100"

func TestWireGolden(t *testing.T) {
	d := New("a").Set("k", []byte("v"), ts(5, 1))
	if got := hex.EncodeToString(EncodeDelta(d)); got != goldenDelta {
		t.Errorf("delta frame\n got %s\nwant %s", got, goldenDelta)
	}
	c := contextOf([]Dot{{"a", 1}, {"a", 2}, {"a", 3}, {"a", 7}, {"b", 2}})
	if got := hex.EncodeToString(EncodeContext(c)); got != goldenContext {
		t.Errorf("context frame\n got %s\nwant %s", got, goldenContext)
	}
	if got := hex.EncodeToString(EncodeContext(Context{})); got != "01010000" {
		t.Errorf("empty context frame %s", got)
	}
	b, _ := hex.DecodeString(goldenDelta)
	if got, err := DecodeDelta(b, Limits{}); err != nil || !deltaEqual(got, d) || got.Origin() != "a" {
		t.Errorf("decode golden delta: %v", err)
	}
}

// head is a delta frame up to the context: table [a b], flags, origin a.
func head(flags byte) fb { return fb{1, 2}.u(2).s("a").s("b").raw(flags).u(1) }

// ctxAB is the context {a:1-2 b:1}, then no deps.
func ctxAB(b fb) fb { return b.u(2, 0, 1, 0, 1, 1, 1, 0, 0).u(0) }

func TestDecodeRejects(t *testing.T) {
	valid := ctxAB(head(0)).u(1).u(0).s("k").u(1).u(0, 2).u(0, 0).s("v")
	if _, err := DecodeDelta(valid, Limits{}); err != nil {
		t.Fatalf("the base frame is invalid: %v", err)
	}
	tests := []struct {
		name  string
		frame []byte
		lim   Limits
		want  error
	}{
		{"empty", nil, Limits{}, ErrMalformed},
		{"one byte", []byte{1}, Limits{}, ErrMalformed},
		{"version 0", fb{0, 2}, Limits{}, ErrVersion},
		{"version 3", append(fb{3}, valid[1:]...), Limits{}, ErrVersion},
		{"version 2 without an expiring entry", append(fb{2}, valid[1:]...), Limits{}, ErrMalformed},
		{"context frame", fb{1, 1, 0, 0}, Limits{}, ErrFrameKind},
		{"trailing byte", append(valid, 0), Limits{}, ErrMalformed},
		{"truncated", valid[:len(valid)-1], Limits{}, ErrMalformed},
		{"frame too large", valid, Limits{MaxFrameBytes: 10}, ErrTooLarge},
		{"non-minimal varint", fb{1, 2}.raw(0x81, 0x00).s("a"), Limits{}, ErrMalformed},
		{"varint overflow", fb{1, 2}.raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), Limits{}, ErrMalformed},
		{"huge replica count", fb{1, 2}.u(1 << 40), Limits{MaxReplicas: 1 << 50}, ErrMalformed},
		{"replica count over limit", fb{1, 2}.u(5000), Limits{}, ErrTooLarge},
		{"replica ids unsorted", fb{1, 2}.u(2).s("b").s("a"), Limits{}, ErrMalformed},
		{"replica ids duplicate", fb{1, 2}.u(2).s("a").s("a"), Limits{}, ErrMalformed},
		{"empty replica id", fb{1, 2}.u(1).s("").raw(0, 0, 0), Limits{}, ErrMalformed},
		{"replica id too long", fb{1, 2}.u(1).s(strings.Repeat("x", MaxReplicaIDLen+1)), Limits{}, ErrTooLarge},
		{"unknown flag", ctxAB(head(2)).u(0), Limits{}, ErrMalformed},
		{"origin out of range", fb{1, 2}.u(2).s("a").s("b").raw(0).u(3), Limits{}, ErrMalformed},
		{"unused replica", fb{1, 2}.u(2).s("a").s("b").raw(0).u(1).u(1, 0, 1, 0, 0).u(0).u(0), Limits{}, ErrMalformed},
		{"context row out of range", head(0).u(1, 2, 1, 0, 0), Limits{}, ErrMalformed},
		{"context rows out of order", head(0).u(2, 1, 1, 0, 0, 0, 1, 0, 0), Limits{}, ErrMalformed},
		{"more rows than replicas", head(0).u(3).raw(make([]byte, 12)...), Limits{}, ErrMalformed},
		{"empty context row", head(0).u(1, 0, 0).raw(0, 0, 0), Limits{}, ErrMalformed},
		{"intervals over limit", head(0).u(1, 0, 3, 0, 0, 0, 0, 0, 0), Limits{MaxIntervals: 2}, ErrTooLarge},
		{"counter beyond range", head(0).u(1, 0, 1, 1<<62, 0), Limits{}, ErrMalformed},
		{"interval beyond range", head(0).u(1, 0, 2, 0, 0, 1<<62, 0), Limits{}, ErrMalformed},
		{"deps outside context", head(0).u(2, 0, 1, 0, 1, 1, 1, 0, 0).u(1, 1, 1, 5, 0).u(0), Limits{}, ErrMalformed},
		{"too many keys", ctxAB(head(0)).u(3), Limits{MaxKeys: 2}, ErrTooLarge},
		{"key count beyond the bytes", ctxAB(head(0)).u(1000), Limits{}, ErrMalformed},
		{"key too long", ctxAB(head(0)).u(1).u(0).s("kk"), Limits{MaxKeyLen: 1}, ErrTooLarge},
		{"keys not increasing", ctxAB(head(0)).u(2).u(0).s("k").u(0).u(0).s("j").u(0), Limits{}, ErrMalformed},
		{"key repeated", ctxAB(head(0)).u(2).u(0).s("k").u(0).u(1).s("").u(0), Limits{}, ErrMalformed},
		{"prefix not canonical", ctxAB(head(0)).u(2).u(0).s("ka").u(0).u(0).s("kb").u(0), Limits{}, ErrMalformed},
		{"prefix longer than the key", ctxAB(head(0)).u(2).u(0).s("k").u(0).u(2).s("x").u(0), Limits{}, ErrMalformed},
		{"empty key in global delta", ctxAB(head(1)).u(1).u(0).s("k").u(0), Limits{}, ErrMalformed},
		{"too many entries", ctxAB(head(0)).u(1).u(0).s("k").u(2).u(0, 1, 0, 0).s("").u(0, 2, 0, 0).s(""), Limits{MaxEntries: 1}, ErrTooLarge},
		{"entry replica out of range", ctxAB(head(0)).u(1).u(0).s("k").u(1).u(2, 1, 0, 0).s(""), Limits{}, ErrMalformed},
		{"counter 0", ctxAB(head(0)).u(1).u(0).s("k").u(1).u(0, 0, 0, 0).s(""), Limits{}, ErrMalformed},
		{"dot not in the context", ctxAB(head(0)).u(1).u(0).s("k").u(1).u(1, 2, 0, 0).s(""), Limits{}, ErrMalformed},
		{"logical too large", ctxAB(head(0)).u(1).u(0).s("k").u(1).u(0, 1, 0, 1<<32).s(""), Limits{}, ErrMalformed},
		{"value too long", ctxAB(head(0)).u(1).u(0).s("k").u(1).u(0, 1, 0, 0).s("vv"), Limits{MaxValueLen: 1}, ErrTooLarge},
		{"value beyond the bytes", ctxAB(head(0)).u(1).u(0).s("k").u(1).u(0, 1, 0, 0).u(50), Limits{}, ErrMalformed},
		{"entries out of order", ctxAB(head(0)).u(1).u(0).s("k").u(2).u(0, 1, 0, 0).s("").u(0, 2, 2, 0).s(""), Limits{}, ErrMalformed},
		{"duplicate dot in a key", ctxAB(head(0)).u(1).u(0).s("k").u(2).u(0, 1, 2, 0).s("").u(0, 1, 0, 0).s(""), Limits{}, ErrMalformed},
		{"duplicate sparse dot", fb{1, 2}.u(1).s("x").raw(0).u(0).u(1, 0, 2, 0, 0, 1e9-1, 0).u(0).u(2).u(0).s("a").u(1).u(0, 1e9+2, 0, 0).s("").u(0).s("b").u(1).u(0, 1e9+2, 0, 0).s(""), Limits{}, ErrMalformed},
		{"duplicate dot across keys", ctxAB(head(0)).u(2).u(0).s("j").u(1).u(0, 1, 0, 0).s("").u(0).s("k").u(1).u(0, 1, 0, 0).s(""), Limits{}, ErrMalformed},
	}
	for _, tt := range tests {
		d, err := DecodeDelta(tt.frame, tt.lim)
		if testing.Verbose() {
			t.Logf("%s: %v", tt.name, err)
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && (d.Len() != 0 || !d.ctx.IsEmpty()) {
			t.Errorf("%s: a rejected frame returned data", tt.name)
		}
	}
}

func TestDecodeContextRejects(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"delta frame", fb{1, 2}, ErrFrameKind},
		{"trailing", fb{1, 1, 0, 0, 0}, ErrMalformed},
		{"unused replica", fb{1, 1}.u(1).s("a").u(0), ErrMalformed},
		{"truncated interval", fb{1, 1}.u(1).s("a").u(1, 0, 1, 0), ErrMalformed},
		{"adjacent by overflow", fb{1, 1}.u(1).s("a").u(1, 0, 2, 0, 1<<62, 0, 0), ErrMalformed},
	}
	for _, tt := range tests {
		if _, err := DecodeContext(tt.frame, Limits{}); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	b, _ := hex.DecodeString(goldenContext)
	c, err := DecodeContext(b, Limits{})
	if err != nil || c.String() != "{a:1-3,7 b:2}" {
		t.Fatalf("golden context: %v %v", c, err)
	}
}

func TestLimitsCheckSet(t *testing.T) {
	l := Limits{MaxKeyLen: 3, MaxValueLen: 4}
	if err := l.CheckSet("abc", []byte("1234")); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckSet("abcd", nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long key: %v", err)
	}
	if err := l.CheckSet("a", make([]byte, 5)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long value: %v", err)
	}
	if err := (Limits{}).CheckSet(strings.Repeat("k", 4096), make([]byte, 1<<20)); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// TestCodecLargeRoundTrip: keys sharing prefixes, empty and binary values,
// negative and huge timestamps, many replicas, cloud intervals.
func TestCodecLargeRoundTrip(t *testing.T) {
	ms := []*Map{New("\x00"), New("zz\xff"), New("m")}
	for i := range 300 {
		m := ms[i%3]
		key := strings.Repeat("p", i%7) + string(rune('a'+i%26)) + strings.Repeat("\x00", i%3)
		m.Set(key, []byte(strings.Repeat("\xfe", i%5)), ts(int64(i)*-1e15+int64(i%2)*(1<<62), uint32(i)*7))
		if i%4 == 0 {
			m.Delete(key)
		}
		if i%10 == 9 {
			mustJoin(t, ms[(i+1)%3], snapshot(m))
		}
	}
	for _, m := range ms {
		for _, d := range []Delta{snapshot(m), m.Diff(ms[0].Context())} {
			got, err := DecodeDelta(EncodeDelta(d), Limits{})
			if err != nil || !deltaEqual(got, d) {
				t.Fatalf("round trip: %v", err)
			}
			o := New("observer")
			mustJoin(t, o, got)
		}
	}
}
