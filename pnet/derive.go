package pnet

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"runtime/debug"

	"golang.org/x/crypto/argon2"
)

// Derivation parameters, version 1. Everything that influences a derived
// value lives here. Changing any of them changes every PSK and name, so
// existing meshes would silently split: never change them without bumping
// version (and the golden vectors in pnet_test.go).
const (
	version = "v1"

	// argonSalt is the fixed, public Argon2id salt. A per-mesh random salt
	// is impossible: every member must derive the same key from the secret
	// alone.
	argonSalt = "reflect/pnet/" + version

	// Argon2id cost: OWASP's minimum recommendation (t=2, m=19 MiB, p=1).
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1

	// HKDF-SHA256 info labels, one per derived value.
	labelPSK         = argonSalt + "/psk"
	labelMDNS        = argonSalt + "/mdns"
	labelTopic       = argonSalt + "/topic"
	labelProto       = argonSalt + "/proto"
	labelFingerprint = argonSalt + "/fingerprint"

	// Bytes of HKDF output per name, rendered as lowercase hex (2 chars per
	// byte). The mDNS tag is bounded by DNS-SD's 15-character service name:
	// "rfl-" + 10 hex = 14.
	mdnsBytes        = 5
	topicBytes       = 8
	protoBytes       = 8
	fingerprintBytes = 8
)

// KeySize is the size in bytes of a libp2p private network key (PSK).
const KeySize = 32

// argonMaster stretches a passphrase into a 32-byte master key, then gives
// Argon2id's working memory back to the OS (releaseArgonMemory).
func argonMaster(secret string) [KeySize]byte {
	m := argonKey(secret)
	releaseArgonMemory()
	return m
}

// argonKey is the Argon2id step alone. It allocates argonMemory KiB, which
// are garbage once it returns.
func argonKey(secret string) [KeySize]byte {
	var m [KeySize]byte
	copy(m[:], argon2.IDKey([]byte(secret), []byte(argonSalt), argonTime, argonMemory, argonThreads, KeySize))
	return m
}

// releaseArgonMemory frees Argon2id's block at once. Left to the runtime,
// it stayed resident in an idle node: the collection that its allocation
// triggers sees it live and doubles the heap goal (to about 42 MB), so an
// idle node runs the next one only when the runtime forces it (every two
// minutes); and even after a runtime.GC, the scavenger had returned only 1
// to 3 of the 19 MiB 30 s later. FreeOSMemory collects now, with the block
// dead, and returns every free span. It costs one forced collection per
// derivation, that is once per secret per process (FromPassphrase caches).
func releaseArgonMemory() { debug.FreeOSMemory() }

// expand returns n bytes of HKDF-SHA256(ikm, salt = none, info = label).
func expand(ikm []byte, label string, n int) []byte {
	out, err := hkdf.Key(sha256.New, ikm, nil, label, n)
	if err != nil {
		// Only possible for n > 255*32 or a FIPS-mode short key; both are
		// programming errors here (n is a small constant, ikm is 32 bytes).
		panic("pnet: hkdf: " + err.Error())
	}
	return out
}

// fromPassphraseMaster builds the Network for a stretched passphrase: the
// PSK is itself an HKDF output, so the master key never leaves this file.
func fromPassphraseMaster(master [KeySize]byte) *Network {
	var psk [KeySize]byte
	copy(psk[:], expand(master[:], labelPSK, KeySize))
	return newNetwork(psk, master[:], sourcePassphrase)
}

// fromRawKey builds the Network whose PSK is key itself.
func fromRawKey(key [KeySize]byte, src source) *Network {
	return newNetwork(key, key[:], src)
}

// newNetwork derives the public names from ikm with their own labels.
func newNetwork(psk [KeySize]byte, ikm []byte, src source) *Network {
	h := func(label string, n int) string { return hex.EncodeToString(expand(ikm, label, n)) }
	return &Network{
		psk:         psk,
		src:         src,
		serviceTag:  "_rfl-" + h(labelMDNS, mdnsBytes) + "._udp",
		topicPrefix: "rfl/" + h(labelTopic, topicBytes) + "/",
		protoPrefix: "/rfl/" + h(labelProto, protoBytes),
		fingerprint: h(labelFingerprint, fingerprintBytes),
	}
}
