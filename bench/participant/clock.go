package participant

import (
	"time"

	"golang.org/x/sys/unix"
)

// Reading CLOCK_MONOTONIC with clock_gettime for every message would cost
// a system call each; Go's own monotonic clock is the same CLOCK_MONOTONIC
// read through the vDSO, only counted from an origin of its own. So Now is
// time.Since(epoch) plus clockBase, the CLOCK_MONOTONIC reading at epoch,
// found once per process.

// epoch is the origin of Go's monotonic readings used by Now.
var epoch = time.Now()

// clockBase is CLOCK_MONOTONIC at epoch, in nanoseconds.
var clockBase = calibrate()

// Now returns CLOCK_MONOTONIC in nanoseconds.
func Now() int64 { return int64(time.Since(epoch)) + clockBase }

// calibrate returns CLOCK_MONOTONIC − time.Since(epoch), from the tightest
// of a few bracketed readings (their gap bounds the error, well under a
// microsecond).
func calibrate() int64 {
	best, gap := int64(0), int64(-1)
	for range 20 {
		a := int64(time.Since(epoch))
		m, err := monotonic()
		if err != nil {
			return 0 // differences within this process stay right
		}
		b := int64(time.Since(epoch))
		if gap < 0 || b-a < gap {
			gap, best = b-a, m-(a+b)/2
		}
	}
	return best
}

// monotonic reads CLOCK_MONOTONIC with a system call.
func monotonic() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return ts.Nano(), nil
}
