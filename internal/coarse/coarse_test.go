package coarse

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestDelayAt(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct{ elapsed, d, want time.Duration }{
		{0, 5 * time.Second, 5 * time.Second},               // on the grid already
		{300 * ms, 5 * time.Second, 5*time.Second + 700*ms}, // to 6 s
		{999 * ms, 2 * time.Second, 2*time.Second + ms},     // to 3 s
		{1500 * ms, 1999 * ms, 1999 * ms},                   // under MinDelay: as asked
		{1500 * ms, 0, 0},
		{1500 * ms, -time.Second, -time.Second},
	} {
		if got := delayAt(c.elapsed, c.d); got != c.want {
			t.Errorf("delayAt(%v, %v) = %v, want %v", c.elapsed, c.d, got, c.want)
		}
	}
}

// Every rounded delay ends on the grid, no sooner than asked and less
// than a Grid later; timers asked for within one second end together.
func TestDelayEndsOnTheGrid(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		elapsed := time.Duration(r.Int64N(int64(time.Hour)))
		d := MinDelay + time.Duration(r.Int64N(int64(10*time.Minute)))
		got := delayAt(elapsed, d)
		if got < d || got >= d+Grid {
			t.Fatalf("delayAt(%v, %v) = %v: not in [d, d+Grid)", elapsed, d, got)
		}
		if (elapsed+got)%Grid != 0 {
			t.Fatalf("delayAt(%v, %v) = %v ends off the grid", elapsed, d, got)
		}
		other := d + time.Duration(r.Int64N(int64(Grid)))
		if end := elapsed + delayAt(elapsed, other); end != elapsed+got && end != elapsed+got+Grid {
			t.Fatalf("delays %v and %v within a Grid end %v apart", d, other, end-(elapsed+got))
		}
	}
}

func TestRoundUp(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct{ elapsed, d, want time.Duration }{
		{0, 50 * ms, time.Second},
		{900 * ms, 50 * ms, 100 * ms},
		{960 * ms, 50 * ms, 1040 * ms},
		{time.Second, 0, 0},
	} {
		if got := roundUp(c.elapsed, c.d); got != c.want {
			t.Errorf("roundUp(%v, %v) = %v, want %v", c.elapsed, c.d, got, c.want)
		}
	}
}

// Timers set through Delay from different moments fire at the same
// instant: the point of the package.
func TestTimersFireTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for real timers (2-3 s)")
	}
	a := time.NewTimer(Delay(MinDelay))
	time.Sleep(100 * time.Millisecond)
	// The second timer, asked for 100 ms later, fires with the first, or a
	// Grid after it if the first fell in the 100 ms between.
	b := time.NewTimer(Delay(MinDelay))
	ta, tb := <-a.C, <-b.C
	if gap := tb.Sub(ta); gap > 200*time.Millisecond && gap < Grid-200*time.Millisecond {
		t.Fatalf("timers fired %v apart; want together or a Grid apart", gap)
	}
}
