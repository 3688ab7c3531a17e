package coarse

import "time"

const (
	// Grid is the spacing of the instants that the delays Delay returns
	// end on.
	Grid = time.Second
	// MinDelay is the shortest delay Delay rounds: below it, a rounding
	// of up to a Grid would change the timer's meaning.
	MinDelay = 2 * time.Second
)

// epoch is the grid's origin, taken as the process starts, with the
// monotonic clock reading that time.Since uses.
var epoch = time.Now()

// Delay returns the delay from now to the first grid instant at or after
// now+d: d rounded up by less than Grid. A d under MinDelay comes back
// unchanged.
func Delay(d time.Duration) time.Duration {
	return delayAt(time.Since(epoch), d)
}

// delayAt is Delay at elapsed since the epoch.
func delayAt(elapsed, d time.Duration) time.Duration {
	if d < MinDelay {
		return d
	}
	return roundUp(elapsed, d)
}

// roundUp returns d plus what takes elapsed+d to the next multiple of Grid.
func roundUp(elapsed, d time.Duration) time.Duration {
	if r := (elapsed + d) % Grid; r != 0 {
		return d + Grid - r
	}
	return d
}
