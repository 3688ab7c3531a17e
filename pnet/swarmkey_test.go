package pnet

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	ipnet "github.com/libp2p/go-libp2p/core/pnet"
)

var (
	testKey    = bytes.Repeat([]byte{0x00, 0x11, 0xa2, 0xff}, KeySize/4)
	testHex    = hex.EncodeToString(testKey)
	testB64    = base64.StdEncoding.EncodeToString(testKey)
	hdr        = "/key/swarm/psk/1.0.0/\n"
	validFiles = map[string]string{
		"base16":              hdr + "/base16/\n" + testHex + "\n",
		"base16 no newline":   hdr + "/base16/\n" + testHex,
		"base16 CRLF":         "/key/swarm/psk/1.0.0/\r\n/base16/\r\n" + testHex + "\r\n",
		"base16 upper":        hdr + "/base16/\n" + strings.ToUpper(testHex) + "\n",
		"base16 trailing ws":  hdr + "/base16/\n" + testHex + " \n\n\t",
		"base64":              hdr + "/base64/\n" + testB64 + "\n",
		"base64 wrapped line": hdr + "/base64/\n" + testB64[:20] + "\n" + testB64[20:] + "\n",
		"bin":                 hdr + "/bin/\n" + string(testKey),
	}
)

func TestParseSwarmKeyValid(t *testing.T) {
	want, _ := FromKey(testKey)
	for name, file := range validFiles {
		t.Run(name, func(t *testing.T) {
			n, err := ParseSwarmKey(strings.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(n.PSK(), testKey) {
				t.Fatalf("PSK = %x, want %x", n.PSK(), testKey)
			}
			if fields := [2][]string{fields(n), fields(want)}; strings.Join(fields[0], "|") != strings.Join(fields[1], "|") {
				t.Fatal("ParseSwarmKey and FromKey of the same key differ")
			}
			// Whatever we accept, go-libp2p's own decoder accepts too.
			psk, err := ipnet.DecodeV1PSK(strings.NewReader(file))
			if err != nil || !bytes.Equal(psk, testKey) {
				t.Fatalf("go-libp2p DecodeV1PSK disagrees: %x, %v", psk, err)
			}
		})
	}
}

func TestParseSwarmKeyInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
	}{
		{"empty", ""},
		{"header only", hdr},
		{"header without newline", "/key/swarm/psk/1.0.0/"},
		{"wrong header", "/key/swarm/psk/2.0.0/\n/base16/\n" + testHex},
		{"leading space", " " + hdr + "/base16/\n" + testHex},
		{"missing encoding line", hdr + testHex + "\n"},
		{"unknown encoding", hdr + "/base32/\n" + testHex},
		{"encoding without slashes", hdr + "base16\n" + testHex},
		{"base16 short", hdr + "/base16/\n" + testHex[:62]},
		{"base16 long", hdr + "/base16/\n" + testHex + "00"},
		{"base16 odd", hdr + "/base16/\n" + testHex[:63]},
		{"base16 bad hex", hdr + "/base16/\n" + "zz" + testHex[2:]},
		{"base16 inner space", hdr + "/base16/\n" + testHex[:32] + " " + testHex[32:]},
		{"base16 trailing garbage", hdr + "/base16/\n" + testHex + "\nextra"},
		{"base16 empty body", hdr + "/base16/\n"},
		{"base64 short", hdr + "/base64/\n" + base64.StdEncoding.EncodeToString(testKey[:24])},
		{"base64 unpadded", hdr + "/base64/\n" + strings.TrimRight(testB64, "=")},
		{"base64 url alphabet", hdr + "/base64/\n" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, KeySize))},
		{"base64 trailing garbage", hdr + "/base64/\n" + testB64 + "AAAA"},
		{"bin short", hdr + "/bin/\n" + string(testKey[:31])},
		{"bin long", hdr + "/bin/\n" + string(testKey) + "\n"},
		{"huge", hdr + "/base16/\n" + testHex + strings.Repeat(" ", maxSwarmKeyFile)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ParseSwarmKey(strings.NewReader(tc.file))
			if !errors.Is(err, ErrSwarmKey) || n != nil {
				t.Fatalf("ParseSwarmKey = %v, %v; want ErrSwarmKey", n, err)
			}
			if strings.Contains(strings.ToLower(err.Error()), testHex[:16]) {
				t.Fatalf("error %q echoes key material", err)
			}
		})
	}
}

func TestParseSwarmKeyReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ParseSwarmKey(iotest.ErrReader(boom))
	if !errors.Is(err, ErrSwarmKey) || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want ErrSwarmKey wrapping the read error", err)
	}
	// A reader that trickles one byte at a time still parses.
	if _, err := ParseSwarmKey(iotest.OneByteReader(strings.NewReader(validFiles["base16"]))); err != nil {
		t.Fatal(err)
	}
}

func TestSwarmKeyRoundTrip(t *testing.T) {
	for _, mk := range []func() (*Network, error){
		func() (*Network, error) { return FromPassphrase("correct horse battery staple") },
		func() (*Network, error) { return FromKey(testKey) },
	} {
		n, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		file := n.SwarmKey()
		if want := hdr + "/base16/\n" + hex.EncodeToString(n.PSK()) + "\n"; string(file) != want {
			t.Fatalf("SwarmKey() = %q, want %q", file, want)
		}
		m, err := ParseSwarmKey(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.PSK(), n.PSK()) {
			t.Fatal("round trip changed the PSK")
		}
		if psk, err := ipnet.DecodeV1PSK(bytes.NewReader(file)); err != nil || !bytes.Equal(psk, n.PSK()) {
			t.Fatalf("go-libp2p cannot read our swarm key: %v", err)
		}
	}
}

func FuzzParseSwarmKey(f *testing.F) {
	for _, file := range validFiles {
		f.Add([]byte(file))
	}
	for _, s := range []string{"", hdr, hdr + "/base16/\n", hdr + "/bin/\n", hdr + "/base64/\n====", hdr + "/base16/\n" + testHex + "\nx"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseSwarmKey(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrSwarmKey) || n != nil {
				t.Fatalf("error %v does not wrap ErrSwarmKey", err)
			}
			return
		}
		m, err := ParseSwarmKey(bytes.NewReader(n.SwarmKey()))
		if err != nil || !bytes.Equal(m.PSK(), n.PSK()) {
			t.Fatalf("re-encoded file does not parse to the same PSK: %v", err)
		}
		// We are stricter than go-libp2p, never looser or different.
		psk, err := ipnet.DecodeV1PSK(bytes.NewReader(data))
		if err != nil || !bytes.Equal(psk, n.PSK()) {
			t.Fatalf("go-libp2p DecodeV1PSK disagrees on %q: %x, %v", data, psk, err)
		}
	})
}
