package testutil

import (
	"testing"
	"time"
)

// pollEvery is how often Eventually looks at its condition again.
const pollEvery = 5 * time.Millisecond

// Eventually calls cond every few milliseconds until it returns true, and
// fails t (naming what it waited for) if d passes first. It is for states
// that no event announces; where a channel or callback says when something
// happened, wait on that instead.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(pollEvery)
	}
}
