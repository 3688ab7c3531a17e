package pnet

import "errors"

// Sentinel errors. Every error returned by FromPassphrase, FromKey and
// ParseSwarmKey is, or wraps with %w, exactly one of them: match with
// errors.Is, never by text.
var (
	// ErrEmptySecret is returned by FromPassphrase for an empty secret.
	// A private network needs a secret; there is no "open" default.
	ErrEmptySecret = errors.New("pnet: empty secret")

	// ErrKeySize is returned by FromKey when the key is not exactly
	// KeySize (32) bytes.
	ErrKeySize = errors.New("pnet: key must be 32 bytes")

	// ErrSwarmKey is returned by ParseSwarmKey for anything that is not a
	// well-formed libp2p swarm key file: wrong or missing header, unknown
	// encoding, bad hex or base64, wrong key length, trailing data, a file
	// larger than maxSwarmKeyFile, or a read error from the source.
	ErrSwarmKey = errors.New("pnet: invalid swarm key")
)
