package pnet

import (
	"crypto/sha256"
	"fmt"
	"sync"

	ipnet "github.com/libp2p/go-libp2p/core/pnet"
)

// source records how a Network was obtained; it only feeds String.
type source uint8

const (
	sourcePassphrase source = iota + 1
	sourceKey
	sourceSwarmKey
)

func (s source) String() string {
	switch s {
	case sourcePassphrase:
		return "passphrase"
	case sourceKey:
		return "key"
	case sourceSwarmKey:
		return "swarm key"
	}
	return "unknown"
}

// Network is everything derived from one mesh secret: the private network
// key and the per-mesh names. It is immutable and safe for concurrent use.
// Obtain one with FromPassphrase, FromKey or ParseSwarmKey; the zero value
// is not usable.
//
// Formatting a Network with any fmt verb (including %#v) prints only its
// fingerprint and source, never key material.
type Network struct {
	psk         [KeySize]byte
	src         source
	serviceTag  string
	topicPrefix string
	protoPrefix string
	fingerprint string
}

// PSK returns a copy of the 32-byte key for libp2p.PrivateNetwork.
func (n *Network) PSK() ipnet.PSK {
	return append(ipnet.PSK(nil), n.psk[:]...)
}

// ServiceTag returns the mDNS (DNS-SD) service name for this mesh, of the
// form "_rfl-<10 hex>._udp", for mdns.NewMdnsService. Peers of other meshes
// on the LAN browse a different name and never see our adverts as theirs.
func (n *Network) ServiceTag() string { return n.serviceTag }

// TopicPrefix returns "rfl/<16 hex>/", to be prepended to every pubsub
// topic name.
func (n *Network) TopicPrefix() string { return n.topicPrefix }

// ProtocolPrefix returns "/rfl/<16 hex>", the base of this mesh's stream
// protocol IDs (the store's sync protocol is
// ProtocolPrefix()+"/store/<store name>/sync/1.0.0").
func (n *Network) ProtocolPrefix() string { return n.protoPrefix }

// Fingerprint returns a short non-secret identifier (16 hex) for logs. It is
// derived with its own HKDF label, so it reveals nothing about the PSK; see
// the package documentation for what it does reveal about a weak secret.
func (n *Network) Fingerprint() string { return n.fingerprint }

// String returns e.g. "pnet(1a2b3c4d5e6f7a8b, passphrase)": the fingerprint
// and how the network was obtained, never key material.
//
// String and Format have value receivers so that formatting a dereferenced
// Network cannot fall back to printing its fields.
func (n Network) String() string {
	return "pnet(" + n.fingerprint + ", " + n.src.String() + ")"
}

// Format implements fmt.Formatter so that every verb, including %#v, %x and
// %d, prints String rather than the struct fields.
func (n Network) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte(n.String()))
}

// FromPassphrase derives a Network from a human secret with Argon2id and
// HKDF (see the package documentation for parameters). The secret is used
// exactly as given: no trimming, case folding or Unicode normalization, so
// "secret" and "secret\n" are different meshes.
//
// Argon2id is deliberately slow (tens of milliseconds, 19 MiB of memory),
// so results are cached per secret for the life of the process; concurrent
// first calls for the same secret compute it once and all callers receive
// the same *Network. The call that computes it returns the 19 MiB to the
// OS before it returns, at the cost of one forced garbage collection
// (runtime/debug.FreeOSMemory). An empty secret returns ErrEmptySecret.
// Use Weak to warn about short secrets.
func FromPassphrase(secret string) (*Network, error) {
	if secret == "" {
		return nil, ErrEmptySecret
	}
	return defaultCache.get(secret), nil
}

// FromKey returns the Network whose PSK is key itself (which must be exactly
// KeySize bytes, else ErrKeySize); the names are derived from key with
// HKDF. key is copied. Use this for a key that is already uniformly random;
// a human secret belongs in FromPassphrase.
func FromKey(key []byte) (*Network, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: got %d", ErrKeySize, len(key))
	}
	return fromRawKey([KeySize]byte(key), sourceKey), nil
}

// passphraseCache memoizes the Argon2id step. master is a test seam.
type passphraseCache struct {
	master func(secret string) [KeySize]byte
	m      sync.Map // [sha256.Size]byte -> *cacheEntry
}

type cacheEntry struct {
	once sync.Once
	n    *Network
}

var defaultCache = &passphraseCache{master: argonMaster}

// get returns the cached Network for secret, computing it at most once.
// Entries are keyed by SHA-256 of the secret so that the cache does not
// retain the passphrase itself. The cache is never pruned: a process is
// expected to use a handful of secrets.
func (c *passphraseCache) get(secret string) *Network {
	k := sha256.Sum256([]byte(secret))
	v, ok := c.m.Load(k)
	if !ok {
		v, _ = c.m.LoadOrStore(k, new(cacheEntry))
	}
	e := v.(*cacheEntry)
	e.once.Do(func() { e.n = fromPassphraseMaster(c.master(secret)) })
	return e.n
}
