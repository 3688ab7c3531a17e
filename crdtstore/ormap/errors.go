package ormap

import "errors"

// Sentinel errors. Every error returned by this package is, or wraps with %w,
// exactly one of them: match with errors.Is, never by text.
var (
	// ErrMalformed is returned by the decoders for input that is not a
	// well-formed frame of the kind asked for: truncated data, trailing
	// bytes, a non-minimal varint, a replica index out of range, a counter of
	// 0, unsorted or duplicate keys, replicas or dots, an entry whose dot the
	// frame's own context does not cover, and the like.
	ErrMalformed = errors.New("ormap: malformed frame")

	// ErrTooLarge is returned by the decoders when a frame, or something it
	// declares (a count, a key, a value, a replica id), exceeds the Limits
	// given, and by Limits.CheckSet for a key or value the peers would refuse.
	ErrTooLarge = errors.New("ormap: frame exceeds limits")

	// ErrVersion is returned by the decoders for a frame of a wire-format
	// version this package does not know.
	ErrVersion = errors.New("ormap: unknown frame version")

	// ErrFrameKind is returned by a decoder given a well-versioned frame of
	// another kind (a context frame passed to DecodeDelta, say).
	ErrFrameKind = errors.New("ormap: wrong frame kind")

	// ErrForeignDot is returned by Map.Join for a delta that claims dots of
	// the map's own replica that the map never minted. Honest peers cannot
	// produce one: it means the replica id was reused by another incarnation
	// (every Map must get a fresh id) or the peer is broken or hostile. The
	// map is left unchanged.
	ErrForeignDot = errors.New("ormap: delta holds dots of this replica it never minted")

	// ErrBounds is returned by Map.Join for a delta that would make the map
	// know more replica ids or context intervals than its Bounds allow (so
	// many that its peers could no longer decode its contexts). The map is
	// left unchanged.
	ErrBounds = errors.New("ormap: delta exceeds the map's bounds")

	// ErrNotOwn is returned by Delta.CheckOwn for a delta that is not one
	// replica's own writes: one from Diff, one without an origin, or one
	// carrying entries written by another replica.
	ErrNotOwn = errors.New("ormap: delta is not its origin's own writes")

	// ErrChunkOrder is returned by ChunkSeq.Accept for a chunk of a
	// chunked sync that does not start where the previous one ended, or
	// that comes after the last one. The sync must be abandoned (joining the
	// final context after a gap could lose writes).
	ErrChunkOrder = errors.New("ormap: sync chunk out of order")

	// ErrCorruptRecord is returned by Restore for a record it cannot
	// decode or that contradicts another one: an unknown kind or record
	// version, truncated or trailing bytes, a counter out of range, an empty
	// or duplicated record, a dot live under two keys. The error names the
	// record.
	ErrCorruptRecord = errors.New("ormap: corrupt persisted record")
)
