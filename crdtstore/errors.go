package crdtstore

import "errors"

// Errors returned by the store. Match them with errors.Is; returned errors
// wrap them with details.
var (
	// ErrClosed is returned once the store is closed (a second Close too).
	ErrClosed = errors.New("crdtstore: closed")
	// ErrTooLarge is returned by Set for a key or value larger than the
	// limits every peer accepts (4 KiB keys; values up to
	// Options.MaxValueLen: the pub/sub message size minus 4 KiB, about
	// 1 MiB by default).
	ErrTooLarge = errors.New("crdtstore: key or value too large")
	// ErrTTL is returned by SetTTL for a TTL that is not positive.
	ErrTTL = errors.New("crdtstore: invalid TTL")
	// ErrKey is returned for an empty or non-UTF-8 key.
	ErrKey = errors.New("crdtstore: invalid key")
	// ErrConfig reports invalid Options.
	ErrConfig = errors.New("crdtstore: invalid options")
	// ErrProtocol reports a sync peer that broke the protocol (bad frame,
	// oversized frame, undecodable payload). The store is unchanged.
	ErrProtocol = errors.New("crdtstore: sync protocol violation")
	// ErrNoStore reports a peer that does not run this store. A Transport's
	// OpenSync returns it, wrapped, for such a peer; the store then counts
	// the peer as synced.
	ErrNoStore = errors.New("crdtstore: peer does not run this store")
	// ErrDisk reports that the store could not open its Options.Dir
	// (in use by another process, a newer format, corrupt files), or that
	// a write could not be saved there. After a failed save the change is
	// in memory and replicates, but may be gone after a restart; later
	// writes fail with ErrDisk too.
	ErrDisk = errors.New("crdtstore: disk")
)
