package pubsub

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func t0Header() Header {
	h := Header{}
	h.Set("trace-id", "abc123")
	h.Add("accept", "json")
	h.Add("accept", "text")
	h.Set("empty", "")
	return h
}

// headerBatch encodes one batch of three messages: with h, without headers,
// and with second.
func headerBatch(h, second Header) []byte {
	var w batchWriter
	for i, hh := range []Header{h, nil, second} {
		enc, err := encodeHeader(hh)
		if err != nil {
			panic(err)
		}
		w.addHeader(enc, []byte{'m', byte('0' + i)})
	}
	return w.encode([]byte("author"), 3, 0)
}

// sameHeader compares headers, nil and empty alike.
func sameHeader(a, b Header) bool {
	return maps.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

func TestHeaderRoundTrip(t *testing.T) {
	h := t0Header()
	second := Header{"k": {"v"}}
	b, err := decodeBatch(headerBatch(h, second), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.msgs) != 3 || string(b.msgs[1]) != "m1" {
		t.Fatalf("messages %q", b.msgs)
	}
	if !sameHeader(b.header(0), h) || b.header(1) != nil || !sameHeader(b.header(2), second) {
		t.Fatalf("headers %v", b.hdrs)
	}
	if got := b.header(0).Values("accept"); !slices.Equal(got, []string{"json", "text"}) {
		t.Fatalf("accept = %q", got)
	}
	if b.header(0).Get("trace-id") != "abc123" || b.header(0).Get("missing") != "" {
		t.Fatalf("Get: %v", b.header(0))
	}
	c := h.Clone()
	c.Add("accept", "xml")
	c.Del("trace-id")
	if len(h["accept"]) != 2 || h.Get("trace-id") == "" {
		t.Fatal("Clone shares values with the original")
	}
}

// A batch whose messages have no headers is encoded exactly as before
// headers existed: no flag, no bytes.
func TestHeadersFreeWhenUnused(t *testing.T) {
	var w batchWriter
	w.addHeader(nil, []byte("x"))
	enc, _ := encodeHeader(Header{})
	w.addHeader(enc, []byte("y"))
	got := w.encode([]byte("a"), 7, 0)
	want := []byte{batchVersion, 0, 1, 'a', 7, 2, 1, 'x', 1, 'y'}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded %x, want %x", got, want)
	}
	if w.encodedLen([]byte("a"), 7) != len(got) {
		t.Fatalf("encodedLen %d, encoded %d", w.encodedLen([]byte("a"), 7), len(got))
	}
	var hw batchWriter
	hw.addHeader([]byte{1, 'k', 1, 'v'}, []byte("x"))
	if n := len(hw.encode([]byte("a"), 7, 0)); n != hw.encodedLen([]byte("a"), 7) {
		t.Fatalf("with headers: encodedLen %d, encoded %d", hw.encodedLen([]byte("a"), 7), n)
	}
}

func TestEncodeHeaderRefuses(t *testing.T) {
	for name, h := range map[string]Header{
		"empty key":       {"": {"v"}},
		"non-UTF-8 key":   {"\xff": {"v"}},
		"non-UTF-8 value": {"k": {"\xfe"}},
		"too large":       {"k": {strings.Repeat("x", MaxHeaderBytes)}},
	} {
		if _, err := encodeHeader(h); !errors.Is(err, ErrHeader) {
			t.Errorf("%s: err = %v, want ErrHeader", name, err)
		}
	}
}

func TestDecodeMalformedHeaders(t *testing.T) {
	for name, data := range map[string][]byte{
		"header length past end": {1, flagHeaders, 1, 'a', 7, 1, 9, 1, 'k'},
		"empty key":              {1, flagHeaders, 1, 'a', 7, 1, 2, 0, 0, 1, 'x'},
		"value past end":         {1, flagHeaders, 1, 'a', 7, 1, 3, 1, 'k', 5, 1, 'x'},
		"non-UTF-8 key":          {1, flagHeaders, 1, 'a', 7, 1, 3, 1, 0xff, 0, 1, 'x'},
	} {
		if _, err := decodeBatch(data, 100); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzDecodeHeader(f *testing.F) {
	enc, _ := encodeHeader(t0Header())
	f.Add(enc)
	f.Add([]byte{1, 'k', 0})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHeader(data)
		if err != nil {
			return
		}
		again, err := encodeHeader(h)
		if err != nil {
			t.Fatalf("decoded headers do not encode: %v", err)
		}
		h2, err := decodeHeader(again)
		if err != nil || !sameHeader(h, h2) {
			t.Fatalf("round trip: %v %v → %v", err, h, h2)
		}
	})
}

// The cost of a 2-key header per message, both sides.
func BenchmarkHeader(b *testing.B) {
	h := Header{"trace-id": {"4bf92f3577b34da6a3ce929d0e0e4736"}, "content-type": {"application/json"}}
	b.ReportAllocs()
	for b.Loop() {
		enc, err := encodeHeader(h)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeHeader(enc); err != nil {
			b.Fatal(err)
		}
	}
}
