package disk

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzDecodeFormat(f *testing.F) {
	f.Add(encodeFormat(formatVersion))
	f.Add(encodeFormat(formatVersion + 1))
	f.Add([]byte("reflect\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeFormat(b)
		switch {
		case err == nil:
			if v != formatVersion || !bytes.Equal(encodeFormat(v), b) {
				t.Fatalf("accepted %q as version %d", b, v)
			}
		case errors.Is(err, ErrFormat):
			if !bytes.Equal(encodeFormat(v), b) || v == formatVersion {
				t.Fatalf("ErrFormat for %q (version %d)", b, v)
			}
		case !errors.Is(err, ErrCorrupt):
			t.Fatalf("decodeFormat(%q): %v, want ErrFormat or ErrCorrupt", b, err)
		}
	})
}
