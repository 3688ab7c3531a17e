package pnet

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// golden are the version-1 derivation vectors. They were computed once by
// this implementation and checked against an independent one (Python
// cryptography: Argon2id + HKDF-SHA256). They are frozen: if this test
// fails, you changed the derivation. That splits every existing mesh, so it
// requires bumping version in derive.go and adding new vectors, never
// editing these.
var golden = []struct {
	name           string
	secret         string // passphrase; empty means use key
	key            string // hex, for FromKey
	psk            string
	tag, topic     string
	proto, fingerp string
}{
	{
		name:   "passphrase",
		secret: "correct horse battery staple",
		psk:    "30f92defbfacb27a7b7794abfdf8caf9a9a1f7c99fbe147dd30e76b4dd258334",
		tag:    "_rfl-82cfa8d5e3._udp", topic: "rfl/d59ee1011d5767fc/",
		proto: "/rfl/b21ee5e2abdf1b3b", fingerp: "33380c134993c368",
	},
	{
		name:   "one char",
		secret: "a",
		psk:    "00b002ac94c546c2bffea7e064b0a6987b9e6616dd5e1207a319048895b68e4b",
		tag:    "_rfl-593aef931c._udp", topic: "rfl/057d2203d26a64ea/",
		proto: "/rfl/821fb615f29ddb6a", fingerp: "ca5204b78f1b6b2c",
	},
	{
		name:   "non-ASCII, used as UTF-8 bytes",
		secret: "пароль-mesh-🔑",
		psk:    "002b4cf5b0e09b9ff62df0aa8b701f33dd48bc05bb8dbc496769c90afdbc5db1",
		tag:    "_rfl-b8e433717d._udp", topic: "rfl/cad3ed6b96a10713/",
		proto: "/rfl/c821511d58745712", fingerp: "f98ca18cea9527d1",
	},
	{
		name: "raw key",
		key:  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		psk:  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		tag:  "_rfl-f9f557320c._udp", topic: "rfl/c553e8c74c218239/",
		proto: "/rfl/e40e1e9c8a204e57", fingerp: "ee39155f15098b85",
	},
}

func TestGoldenVectors(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			var n *Network
			var err error
			if g.secret != "" {
				n, err = FromPassphrase(g.secret)
			} else {
				n, err = FromKey(mustHex(t, g.key))
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{hex.EncodeToString(n.PSK()), n.ServiceTag(), n.TopicPrefix(), n.ProtocolPrefix(), n.Fingerprint()}
			want := []string{g.psk, g.tag, g.topic, g.proto, g.fingerp}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("field %d = %q, want %q (derivation changed: bump version)", i, got[i], want[i])
				}
			}
		})
	}
}

// fields returns every derived value, for distinctness checks.
func fields(n *Network) []string {
	return []string{string(n.PSK()), n.ServiceTag(), n.TopicPrefix(), n.ProtocolPrefix(), n.Fingerprint()}
}

func TestDistinctSecretsDistinctEverything(t *testing.T) {
	secrets := []string{"a", "b", "A", " a", "a ", "a\n", "secret", "secret\r\n", "correct horse battery staple"}
	var nets []*Network
	for _, s := range secrets {
		n, err := FromPassphrase(s)
		if err != nil {
			t.Fatal(err)
		}
		nets = append(nets, n)
	}
	// The last raw key equals nets[0]'s PSK: it shares that PSK by
	// construction, but none of its names.
	for _, k := range [][]byte{make([]byte, KeySize), bytes.Repeat([]byte{1}, KeySize), nets[0].PSK()} {
		n, err := FromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		nets = append(nets, n)
	}
	for f := range fields(nets[0]) {
		seen := map[string]int{}
		for i, n := range nets {
			v := fields(n)[f]
			if j, dup := seen[v]; dup && !(f == 0 && i == len(nets)-1 && j == 0) {
				t.Errorf("field %d: networks %d and %d share %q", f, j, i, v)
			}
			seen[v] = i
		}
	}
}

// serviceName is RFC 6335 §5.1: 1-15 of [a-z0-9-], starting with a letter,
// no "--", not ending in "-"; as a DNS-SD label "_<name>._udp".
var serviceName = regexp.MustCompile(`^_([a-z0-9-]{1,15})\._udp$`)

func TestNamesWellFormed(t *testing.T) {
	for _, s := range []string{"a", "b", "correct horse battery staple", "x\x00y"} {
		n, err := FromPassphrase(s)
		if err != nil {
			t.Fatal(err)
		}
		m := serviceName.FindStringSubmatch(n.ServiceTag())
		if m == nil || m[1][0] < 'a' || m[1][0] > 'z' || strings.Contains(m[1], "--") || strings.HasSuffix(m[1], "-") {
			t.Errorf("ServiceTag %q is not a valid DNS-SD service name", n.ServiceTag())
		}
		if !regexp.MustCompile(`^rfl/[0-9a-f]{16}/$`).MatchString(n.TopicPrefix()) {
			t.Errorf("TopicPrefix %q", n.TopicPrefix())
		}
		if !regexp.MustCompile(`^/rfl/[0-9a-f]{16}$`).MatchString(n.ProtocolPrefix()) {
			t.Errorf("ProtocolPrefix %q", n.ProtocolPrefix())
		}
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(n.Fingerprint()) {
			t.Errorf("Fingerprint %q", n.Fingerprint())
		}
		if len(n.PSK()) != KeySize {
			t.Errorf("PSK is %d bytes", len(n.PSK()))
		}
	}
}

func TestFromPassphraseEmpty(t *testing.T) {
	n, err := FromPassphrase("")
	if !errors.Is(err, ErrEmptySecret) || n != nil {
		t.Fatalf("FromPassphrase(\"\") = %v, %v; want nil, ErrEmptySecret", n, err)
	}
}

func TestFromPassphraseCachedPointer(t *testing.T) {
	a, err1 := FromPassphrase("cached secret")
	b, err2 := FromPassphrase("cached secret")
	if err1 != nil || err2 != nil || a != b {
		t.Fatalf("second call: %p %v %v, first %p", b, err1, err2, a)
	}
}

func TestCacheComputesOnce(t *testing.T) {
	var calls atomic.Int32
	fake := func(s string) [KeySize]byte { calls.Add(1); return sha256.Sum256([]byte(s)) }
	c := &passphraseCache{master: fake}

	const workers = 16
	got := make([]*Network, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { <-start; got[i] = c.get("s") })
	}
	close(start)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("master computed %d times for concurrent first calls, want 1", n)
	}
	for i, n := range got {
		if n != got[0] {
			t.Fatalf("caller %d got a different *Network", i)
		}
	}
	if want := fromPassphraseMaster(fake("s")); !bytes.Equal(got[0].PSK(), want.PSK()) || got[0].Fingerprint() != want.Fingerprint() {
		t.Fatal("cached Network differs from a fresh derivation")
	}
	calls.Store(0)
	if c.get("s") != got[0] || calls.Load() != 0 {
		t.Fatal("repeat call recomputed")
	}
	if c.get("t") == got[0] || calls.Load() != 1 {
		t.Fatal("new secret not computed exactly once")
	}
}

func TestFromKey(t *testing.T) {
	for _, size := range []int{0, 1, 16, 31, 33, 64} {
		n, err := FromKey(make([]byte, size))
		if !errors.Is(err, ErrKeySize) || n != nil {
			t.Errorf("FromKey(%d bytes) = %v, %v; want ErrKeySize", size, n, err)
		}
	}
	if _, err := FromKey(nil); !errors.Is(err, ErrKeySize) {
		t.Errorf("FromKey(nil) = %v", err)
	}
	key := bytes.Repeat([]byte{7}, KeySize)
	n, err := FromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	key[0] = 0 // FromKey must have copied.
	psk := n.PSK()
	if psk[0] != 7 {
		t.Fatal("FromKey aliases its argument")
	}
	psk[1] = 0 // PSK must return a copy.
	if n.PSK()[1] != 7 {
		t.Fatal("PSK returns internal storage")
	}
}

func TestStringHidesKey(t *testing.T) {
	pp, _ := FromPassphrase("correct horse battery staple")
	rk, _ := FromKey(bytes.Repeat([]byte{0xab}, KeySize))
	for _, n := range []*Network{pp, rk} {
		psk := n.PSK()
		secrets := []string{hex.EncodeToString(psk), strings.ToUpper(hex.EncodeToString(psk)), string(psk), fmt.Sprint([]byte(psk)), fmt.Sprint(psk[:4]), "171 171"}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
			for _, arg := range []any{n, *n} {
				out := fmt.Sprintf(verb, arg)
				if verb == "%v" && !strings.Contains(out, n.Fingerprint()) {
					t.Errorf("%s of %T = %q lacks the fingerprint", verb, arg, out)
				}
				for _, s := range secrets {
					if strings.Contains(out, strings.Trim(s, "[]")) {
						t.Errorf("%s of %T = %q leaks key material", verb, arg, out)
					}
				}
			}
		}
	}
	if got := pp.String(); got != "pnet(33380c134993c368, passphrase)" {
		t.Errorf("String() = %q", got)
	}
}

func TestGenerateSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		if seen[s] {
			t.Fatalf("duplicate secret %q", s)
		}
		seen[s] = true
		if Weak(s) || len(s) != 32 || !regexp.MustCompile(`^[a-z2-7]+$`).MatchString(s) || url.QueryEscape(s) != s {
			t.Fatalf("GenerateSecret() = %q: want 32 chars of [a-z2-7], not weak", s)
		}
		if got := len(s) * 5; got < 128 {
			t.Fatalf("only %d bits", got)
		}
	}
}

func TestWeak(t *testing.T) {
	for _, tc := range []struct {
		s    string
		weak bool
	}{
		{"", true},
		{"a", true},
		{strings.Repeat("x", MinSecretLength-1), true},
		{strings.Repeat("x", MinSecretLength), false},
		{strings.Repeat("é", MinSecretLength-1), true}, // 30 bytes, 15 characters
		{strings.Repeat("é", MinSecretLength), false},
		{"correct horse battery staple", false},
	} {
		if got := Weak(tc.s); got != tc.weak {
			t.Errorf("Weak(%q) = %v, want %v", tc.s, got, tc.weak)
		}
	}
}

// BenchmarkArgon2id measures the passphrase stretching (uncached), what a
// guess costs an attacker: from the second round on, the block reuses the
// heap memory of the last one.
func BenchmarkArgon2id(b *testing.B) {
	for b.Loop() {
		argonKey("correct horse battery staple")
	}
}

// BenchmarkArgon2idReleased adds the release of the memory to the OS, as
// FromPassphrase does; each round then faults in a fresh 19 MiB, as the
// first derivation of a process does anyway.
func BenchmarkArgon2idReleased(b *testing.B) {
	for b.Loop() {
		argonMaster("correct horse battery staple")
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
