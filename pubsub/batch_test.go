package pubsub

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	author := []byte("12D3KooWauthorauthorauthorauthorauthor")
	cases := [][][]byte{
		{[]byte("x")},
		{{}},
		{[]byte("hello"), []byte(""), bytes.Repeat([]byte("a"), 300), []byte(`{"text":"hi"}`)},
		{bytes.Repeat([]byte{0xff}, 1<<16)},
	}
	for i, msgs := range cases {
		data := encodeBatch(author, uint64(i)*1e18+7, msgs...)
		b, err := decodeBatch(data, 1<<20)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !bytes.Equal(b.author, author) || b.seq != uint64(i)*1e18+7 || len(b.msgs) != len(msgs) {
			t.Fatalf("case %d: got author %q seq %d %d msgs", i, b.author, b.seq, len(b.msgs))
		}
		for j := range msgs {
			if !bytes.Equal(b.msgs[j], msgs[j]) {
				t.Fatalf("case %d msg %d differs", i, j)
			}
		}
		var h batch
		if _, err := batchHeader(data, &h); err != nil || !bytes.Equal(h.id, b.id) || h.switched {
			t.Fatalf("case %d: header id %x vs %x, switched %v (%v)", i, h.id, b.id, h.switched, err)
		}
	}
}

func TestBatchIDsDiffer(t *testing.T) {
	a := encodeBatch([]byte("peerA"), 1, []byte("m"))
	b := encodeBatch([]byte("peerA"), 2, []byte("m"))
	c := encodeBatch([]byte("peerB"), 1, []byte("m"))
	ids := map[string]bool{}
	for _, d := range [][]byte{a, b, c} {
		var h batch
		if _, err := batchHeader(d, &h); err != nil {
			t.Fatal(err)
		}
		ids[string(h.id)] = true
	}
	if len(ids) != 3 {
		t.Fatalf("want 3 distinct ids, got %d", len(ids))
	}
}

// The switched flag survives encoding, is part of the header, and is the
// only flag besides flagHeaders: a batch with another bit set is refused.
func TestBatchSwitchedFlag(t *testing.T) {
	var w batchWriter
	w.add([]byte("m"))
	data := w.encode([]byte("author"), 9, flagSwitched)
	b, err := decodeBatch(data, 10)
	if err != nil || !b.switched || b.seq != 9 {
		t.Fatalf("decoded %+v, %v", b, err)
	}
	plain := w.encode([]byte("author"), 9, 0)
	if b, err := decodeBatch(plain, 10); err != nil || b.switched {
		t.Fatalf("decoded %+v, %v", b, err)
	}
	for _, flags := range []byte{4, 0x80, flagSwitched | 8} {
		if _, err := decodeBatch(w.encode([]byte("author"), 9, flags), 10); !errors.Is(err, ErrMalformed) {
			t.Errorf("flags %#x: got %v, want ErrMalformed", flags, err)
		}
	}
}

func TestBatchDecodeRejects(t *testing.T) {
	good := encodeBatch([]byte("author"), 5, []byte("abc"), []byte("de"))
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"one byte", []byte{1}, ErrMalformed},
		{"version", append([]byte{2}, good[1:]...), ErrVersion},
		{"flags", append([]byte{1, 2}, good[2:]...), ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"trailing", append(append([]byte(nil), good...), 0), ErrMalformed},
		{"zero author", []byte{1, 0, 0, 1, 1, 0}, ErrMalformed},
		{"huge author", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrMalformed},
		{"zero count", []byte{1, 0, 1, 'a', 1, 0}, ErrMalformed},
		// count 2^31 with a few bytes left: must not allocate from it.
		{"lying count", []byte{1, 0, 1, 'a', 1, 0x80, 0x80, 0x80, 0x80, 0x08, 1, 'x'}, ErrMalformed},
		{"lying length", []byte{1, 0, 1, 'a', 1, 1, 0x80, 0x80, 0x80, 0x80, 0x08, 'x'}, ErrMalformed},
		{"overlong varint", []byte{1, 0, 1, 'a', 1, 1, 0x81, 0x00, 'x'}, ErrMalformed},
		{"bad varint", []byte{1, 0, 1, 'a', 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := decodeBatch(c.data, 1<<20); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, err := decodeBatch(encodeBatch([]byte("a"), 1, make([]byte, 101)), 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize message: got %v, want ErrTooLarge", err)
	}
}

func TestDecodeLyingCountAllocatesLittle(t *testing.T) {
	data := []byte{1, 0, 1, 'a', 1, 0x80, 0x80, 0x80, 0x80, 0x08, 1, 'x'}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		_, _ = decodeBatch(data, 1<<20)
	}
	runtime.ReadMemStats(&after)
	if perCall := (after.TotalAlloc - before.TotalAlloc) / 100; perCall > 1024 {
		t.Fatalf("%d bytes allocated per decode of a hostile count", perCall)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch([]byte("author"), 1, []byte("hello")))
	f.Add(encodeBatch([]byte("12D3KooW"), 1<<62, []byte(""), []byte(`{"a":1}`)))
	f.Add([]byte{1, 0, 1, 'a', 1, 0x80, 0x80, 0x80, 0x80, 0x08, 1, 'x'})
	f.Add([]byte{})
	f.Add([]byte{1, flagSwitched, 1, 'a', 7, 1, 1, 'x'})
	f.Add(headerBatch(t0Header(), nil))
	f.Add([]byte{1, flagHeaders, 1, 'a', 7, 1, 4, 1, 'k', 1, 'v', 1, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeBatch(data, 1<<16)
		if err != nil {
			return
		}
		var w batchWriter
		for i, m := range b.msgs {
			hdr, err := encodeHeader(b.header(i))
			if err != nil {
				t.Fatalf("decoded headers do not encode: %v", err)
			}
			w.addHeader(hdr, m)
		}
		var flags byte
		if b.switched {
			flags = flagSwitched
		}
		again := w.encode(b.author, b.seq, flags)
		if b.hdrs == nil && !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", data, again)
		}
		// With headers the encoding is canonical only after one round
		// (keys sorted, empty headers dropped): decode it again.
		b2, err := decodeBatch(again, 1<<16)
		if err != nil || len(b2.msgs) != len(b.msgs) {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		for i := range b.msgs {
			if !bytes.Equal(b.msgs[i], b2.msgs[i]) || !sameHeader(b.header(i), b2.header(i)) {
				t.Fatalf("message %d changed: %q %v → %q %v", i, b.msgs[i], b.header(i), b2.msgs[i], b2.header(i))
			}
		}
		var h batch
		if _, err := batchHeader(data, &h); err != nil || !bytes.Equal(h.id, b.id) || !bytes.Equal(h.author, b.author) || h.seq != b.seq || h.switched != b.switched {
			t.Fatalf("header disagrees with decode: %v", err)
		}
	})
}
