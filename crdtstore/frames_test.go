package crdtstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	for _, p := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("y"), 70000)} {
		if err := writeFrame(&buf, frameDelta, p); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&buf)
	for _, want := range []int{0, 1, 70000} {
		kind, p, err := readFrame(r, 1<<20)
		if err != nil || kind != frameDelta || len(p) != want {
			t.Fatalf("got kind %d, %d bytes, %v; want %d bytes", kind, len(p), err, want)
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
		if _, _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), 1<<20); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: got %v, want ErrProtocol", name, err)
		}
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
	f.Fuzz(func(t *testing.T, in []byte) {
		kind, p, err := readFrame(bufio.NewReader(bytes.NewReader(in)), 4096)
		if err != nil {
			return
		}
		if len(p)+1 > 4096 {
			t.Fatalf("accepted a %d-byte frame over the limit", len(p)+1)
		}
		var out bytes.Buffer
		if err := writeFrame(&out, kind, p); err != nil {
			t.Fatal(err)
		}
		kind2, p2, err := readFrame(bufio.NewReader(&out), 4096)
		if err != nil || kind2 != kind || !bytes.Equal(p2, p) {
			t.Fatalf("round trip: kind %d→%d, %d→%d bytes, %v", kind, kind2, len(p), len(p2), err)
		}
	})
}
