package ormap

import (
	"fmt"
	"math"
)

// Timestamp is a hybrid logical clock reading: wall-clock nanoseconds (Unix
// epoch, as given by the caller) and a logical counter that orders readings
// within the same wall value. The zero Timestamp is the earliest.
type Timestamp struct {
	Wall    int64
	Logical uint32
}

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.Wall < u.Wall:
		return -1
	case t.Wall > u.Wall:
		return 1
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	}
	return 0
}

// IsZero reports whether t is the zero Timestamp.
func (t Timestamp) IsZero() bool { return t == Timestamp{} }

// String formats t as wall.logical.
func (t Timestamp) String() string { return fmt.Sprintf("%d.%d", t.Wall, t.Logical) }

// HLC is a hybrid logical clock. It is pure: the caller passes the wall
// clock (e.g. time.Now().UnixNano()) to every call. Readings from Now are
// strictly increasing, never behind the wall clock passed, and after
// Observe(r, …) strictly after r. The zero HLC is ready to use; it is not
// safe for concurrent use.
//
// Timestamps only order concurrent siblings (see Map.Get); causality, not
// time, decides which write overwrites which, so a wrong clock can never
// lose a write.
type HLC struct {
	// MaxOffset, if positive, bounds how far ahead of the local wall clock
	// an observed timestamp may be: Observe ignores (and reports false for)
	// a remote timestamp more than MaxOffset nanoseconds ahead, so one peer
	// with a clock set to the far future cannot drag this clock along. Zero
	// means no bound.
	MaxOffset int64

	last Timestamp
}

// Now returns a new reading: (wall, 0) if wall is ahead of every earlier
// reading and observed timestamp, else the last one with Logical+1. If the
// logical counter is exhausted it moves to the next nanosecond. At the very
// end of time (Wall = MaxInt64, Logical = MaxUint32) it stops advancing.
func (c *HLC) Now(wall int64) Timestamp {
	switch {
	case wall > c.last.Wall:
		c.last = Timestamp{Wall: wall}
	case c.last.Logical < math.MaxUint32:
		c.last.Logical++
	case c.last.Wall < math.MaxInt64:
		c.last = Timestamp{Wall: c.last.Wall + 1}
	}
	return c.last
}

// Observe moves the clock past remote, a timestamp received from a peer
// (see Delta.MaxTime), so that later readings of Now order after it. It
// returns false, and leaves the clock alone, if MaxOffset is set and remote
// is more than MaxOffset ahead of wall.
func (c *HLC) Observe(remote Timestamp, wall int64) bool {
	if c.MaxOffset > 0 && remote.Wall > wall && uint64(remote.Wall)-uint64(wall) > uint64(c.MaxOffset) {
		return false
	}
	if remote.Compare(c.last) > 0 {
		c.last = remote
	}
	return true
}

// Last returns the latest reading or observed timestamp (zero at first).
func (c *HLC) Last() Timestamp { return c.last }
