package crdtstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"
)

// read reads one frame without a gate.
func read(r *bufio.Reader, limit int) (frame, error) {
	return readFrame(r, limit, reading{}, nil)
}

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	for _, p := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("y"), 70000)} {
		if err := writeFrame(&buf, frameDelta, p); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&buf)
	for _, want := range []int{0, 1, 70000} {
		f, err := read(r, 1<<20)
		if err != nil || f.kind != frameDelta || len(f.payload) != want {
			t.Fatalf("got kind %d, %d bytes, %v; want %d bytes", f.kind, len(f.payload), err, want)
		}
	}
}

func TestFrameRefusesHostileLengths(t *testing.T) {
	for name, in := range map[string][]byte{
		"zero length":    {0},
		"over the limit": binary.AppendUvarint(nil, 1<<31),
		"truncated body": append(binary.AppendUvarint(nil, 100), frameDelta, 1, 2, 3),
		"bad varint":     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		var g readGate
		if _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), 1<<20, reading{gate: &g, deadline: time.Now().Add(time.Second)}, nil); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: got %v, want ErrProtocol", name, err)
		}
		if b := g.buffered.Load(); b != 0 {
			t.Errorf("%s: %d bytes still accounted after the error", name, b)
		}
	}
	_, err := read(bufio.NewReader(bytes.NewReader(binary.AppendUvarint(nil, 1<<31))), 1<<20)
	if !errors.Is(err, errFrameLimit) {
		t.Errorf("a frame over the limit: %v, want errFrameLimit", err)
	}
}

// trickle is a reader that yields at most n bytes per Read.
type trickle struct {
	r io.Reader
	n int
}

func (t trickle) Read(p []byte) (int, error) { return t.r.Read(p[:min(len(p), t.n)]) }

// A frame's buffer grows with the bytes that arrived, never to the length
// declared, and is accounted in the gate until released.
func TestFrameBufferGrowsWithTheBytes(t *testing.T) {
	const declared = 8 << 20
	in := append(binary.AppendUvarint(nil, declared), frameDelta)
	in = append(in, make([]byte, 100<<10)...) // 100 KiB of 8 MiB, then EOF
	var g readGate
	_, err := readFrame(bufio.NewReader(trickle{bytes.NewReader(in), 4096}), declared, reading{gate: &g, deadline: time.Now().Add(time.Second)}, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
	if peak := g.peak.Load(); peak > 2*100<<10+frameChunk {
		t.Fatalf("held %d bytes for 100 KiB received", peak)
	}
	if b := g.buffered.Load(); b != 0 {
		t.Fatalf("%d bytes still accounted", b)
	}

	full := append(binary.AppendUvarint(nil, declared), frameDelta)
	full = append(full, make([]byte, declared-1)...)
	f, err := readFrame(bufio.NewReader(bytes.NewReader(full)), declared, reading{gate: &g, deadline: time.Now().Add(time.Second)}, nil)
	if err != nil || len(f.payload) != declared-1 {
		t.Fatalf("got %d bytes, %v", len(f.payload), err)
	}
	if cap(f.payload) != declared-1 || g.buffered.Load() != declared-1 {
		t.Fatalf("buffer of %d bytes, %d accounted; want exactly the %d declared", cap(f.payload), g.buffered.Load(), declared-1)
	}
	f.release()
	f.release()
	if b := g.buffered.Load(); b != 0 {
		t.Fatalf("%d bytes accounted after release", b)
	}
}

// At most largeReads frames larger than smallFrame are read at once; the
// next waits for a slot until its deadline.
func TestLargeReadSlots(t *testing.T) {
	var g readGate
	big := append(binary.AppendUvarint(nil, smallFrame+2), frameDelta)
	big = append(big, make([]byte, smallFrame+1)...)
	var held []frame
	for range largeReads {
		f, err := readFrame(bufio.NewReader(bytes.NewReader(big)), 2*smallFrame, reading{gate: &g, deadline: time.Now().Add(time.Second)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, f)
	}
	_, err := readFrame(bufio.NewReader(bytes.NewReader(big)), 2*smallFrame, reading{gate: &g, deadline: time.Now().Add(50 * time.Millisecond)}, nil)
	if !errors.Is(err, errReadSlot) {
		t.Fatalf("a third large frame: %v, want errReadSlot", err)
	}
	if w := g.waits.Load(); w != 1 {
		t.Fatalf("%d waits counted, want 1", w)
	}
	// A small frame needs no slot.
	small := append(binary.AppendUvarint(nil, 11), frameContext)
	small = append(small, make([]byte, 10)...)
	sf, err := readFrame(bufio.NewReader(bytes.NewReader(small)), 2*smallFrame, reading{gate: &g, deadline: time.Now().Add(time.Second)}, nil)
	if err != nil {
		t.Fatalf("a small frame while the slots are taken: %v", err)
	}
	sf.release()
	// A waiting reader gets the slot freed.
	got := make(chan error, 1)
	go func() {
		f, err := readFrame(bufio.NewReader(bytes.NewReader(big)), 2*smallFrame, reading{gate: &g, deadline: time.Now().Add(10 * time.Second)}, nil)
		f.release()
		got <- err
	}()
	held[0].release()
	if err := <-got; err != nil {
		t.Fatalf("waiting reader: %v", err)
	}
	held[1].release()
	// Served streams take one slot less: one stays for the syncs we start.
	sv, err := readFrame(bufio.NewReader(bytes.NewReader(big)), 2*smallFrame, reading{gate: &g, served: true, deadline: time.Now().Add(time.Second)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = readFrame(bufio.NewReader(bytes.NewReader(big)), 2*smallFrame, reading{gate: &g, served: true, deadline: time.Now().Add(50 * time.Millisecond)}, nil)
	if !errors.Is(err, errReadSlot) {
		t.Fatalf("a served stream took slot %d: %v", largeReads, err)
	}
	ours, err := readFrame(bufio.NewReader(bytes.NewReader(big)), 2*smallFrame, reading{gate: &g, deadline: time.Now().Add(time.Second)}, nil)
	if err != nil {
		t.Fatalf("a sync we started found no slot while served streams hold theirs: %v", err)
	}
	sv.release()
	ours.release()
	if b, l, s := g.buffered.Load(), g.large, g.served; b != 0 || l != 0 || s != 0 {
		t.Fatalf("%d bytes, %d slots (%d served) held after every release", b, l, s)
	}
	if b, l := g.buffered.Load(), g.large; b != 0 || l != 0 {
		t.Fatalf("%d bytes and %d slots held after every release", b, l)
	}
	// A closed store ends the wait.
	for range largeReads {
		f, _ := readFrame(bufio.NewReader(bytes.NewReader(big)), 2*smallFrame, reading{gate: &g, deadline: time.Now().Add(time.Second)}, nil)
		defer f.release()
	}
	done := make(chan struct{})
	close(done)
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(big)), 2*smallFrame, reading{gate: &g, deadline: time.Now().Add(10 * time.Second), done: done}, nil); err == nil {
		t.Fatal("a wait for a slot outlived the store")
	}
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, frameContext, []byte("ctx")); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(binary.AppendUvarint(nil, 1<<31))
	f.Add([]byte{0})
	f.Add(append(binary.AppendUvarint(nil, 3000), frameDelta, 1, 2))
	f.Fuzz(func(t *testing.T, in []byte) {
		const lim = 4096
		var g readGate
		fr, err := readFrame(bufio.NewReader(bytes.NewReader(in)), lim, reading{gate: &g, deadline: time.Now().Add(time.Second)}, nil)
		if err != nil {
			if b := g.buffered.Load(); b != 0 {
				t.Fatalf("a failed read left %d bytes accounted", b)
			}
			return
		}
		if len(fr.payload)+1 > lim {
			t.Fatalf("accepted a %d-byte frame over the limit", len(fr.payload)+1)
		}
		if cap(fr.payload) != len(fr.payload) || g.buffered.Load() != int64(cap(fr.payload)) {
			t.Fatalf("a %d-byte payload in a %d-byte buffer, %d bytes accounted", len(fr.payload), cap(fr.payload), g.buffered.Load())
		}
		var out bytes.Buffer
		if err := writeFrame(&out, fr.kind, fr.payload); err != nil {
			t.Fatal(err)
		}
		fr2, err := read(bufio.NewReader(&out), lim)
		if err != nil || fr2.kind != fr.kind || !bytes.Equal(fr2.payload, fr.payload) {
			t.Fatalf("round trip: kind %d→%d, %d→%d bytes, %v", fr.kind, fr2.kind, len(fr.payload), len(fr2.payload), err)
		}
		fr.release()
		if g.buffered.Load() != 0 {
			t.Fatal("bytes accounted after release")
		}
	})
}

// A released frame leaves its buffer for the next one, which reads into it
// when it fits (no allocation per chunk of a reply), accounted while in
// use; a frame larger than smallFrame does not stay.
func TestFrameBufferReused(t *testing.T) {
	var g readGate
	var spare []byte
	in := bytes.NewReader(nil)
	r := bufio.NewReader(in)
	read := func(n int) frame {
		t.Helper()
		b := append(binary.AppendUvarint(nil, uint64(n)), frameSyncChunk)
		in.Reset(append(b, bytes.Repeat([]byte{7}, n-1)...))
		r.Reset(in)
		f, err := readFrame(r, 4*smallFrame, reading{gate: &g, deadline: time.Now().Add(time.Second)}, spare)
		if err != nil {
			t.Fatal(err)
		}
		spare = nil
		f.keep = &spare
		return f
	}
	f := read(100 << 10)
	first := &f.payload[:1][0]
	f.release()
	f = read(80 << 10)
	if &f.payload[:1][0] != first || g.buffered.Load() != int64(cap(f.payload)) {
		t.Fatalf("the second frame did not reuse the first's buffer (or is not accounted: %d)", g.buffered.Load())
	}
	f.release()
	f = read(2 * smallFrame)
	f.release()
	if cap(spare) > smallFrame || g.buffered.Load() != 0 {
		t.Fatalf("kept a buffer of %d bytes; %d accounted", cap(spare), g.buffered.Load())
	}
}
