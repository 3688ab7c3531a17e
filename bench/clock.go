package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// The send time carried in every message (recorder.go) is read from
// CLOCK_MONOTONIC, which is one clock for the whole machine: a subscriber
// in another process (-procs) computes receive time − send time with no
// clock skew, exactly as one in the publisher's process does.
//
// Reading it with clock_gettime on every message would cost a system call
// each; Go's own monotonic clock is the same CLOCK_MONOTONIC read through
// the vDSO, only counted from an origin of its own. So now() is
// time.Since(epoch) plus clockBase, the CLOCK_MONOTONIC reading at epoch,
// found once per process (calibrateClock).

// epoch is the origin of Go's monotonic readings used by now().
var epoch = time.Now()

// clockBase is CLOCK_MONOTONIC at epoch, in nanoseconds.
var clockBase = calibrateClock()

// now returns CLOCK_MONOTONIC in nanoseconds.
func now() int64 { return int64(time.Since(epoch)) + clockBase }

// calibrateClock returns CLOCK_MONOTONIC − time.Since(epoch), taken from
// the tightest of a few bracketed readings (their gap bounds the error,
// well under a microsecond).
func calibrateClock() int64 {
	best, gap := int64(0), int64(-1)
	for range 20 {
		a := int64(time.Since(epoch))
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			return 0 // only differences within this process are then meaningful
		}
		b := int64(time.Since(epoch))
		if gap < 0 || b-a < gap {
			gap, best = b-a, ts.Nano()-(a+b)/2
		}
	}
	return best
}

// monotonic reads CLOCK_MONOTONIC directly (for tests of now()).
func monotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
