package ormap

import (
	"math"
	"testing"
)

func TestHLC(t *testing.T) {
	type step struct {
		observe bool
		remote  Timestamp
		wall    int64
		want    Timestamp // after the step: Now's result, or Last
		ok      bool      // Observe's result
	}
	tests := []struct {
		name      string
		maxOffset int64
		steps     []step
	}{
		{"wall moves forward", 0, []step{
			{wall: 10, want: ts(10, 0)},
			{wall: 20, want: ts(20, 0)},
		}},
		{"same or earlier wall counts logically", 0, []step{
			{wall: 10, want: ts(10, 0)},
			{wall: 10, want: ts(10, 1)},
			{wall: 5, want: ts(10, 2)},
			{wall: 11, want: ts(11, 0)},
		}},
		{"observe the future", 0, []step{
			{wall: 10, want: ts(10, 0)},
			{observe: true, remote: ts(50, 3), wall: 11, want: ts(50, 3), ok: true},
			{wall: 12, want: ts(50, 4)},
			{wall: 60, want: ts(60, 0)},
		}},
		{"observe the past changes nothing", 0, []step{
			{wall: 10, want: ts(10, 0)},
			{observe: true, remote: ts(5, 9), wall: 11, want: ts(10, 0), ok: true},
			{wall: 11, want: ts(11, 0)},
		}},
		{"max offset refuses a far future", 100, []step{
			{wall: 10, want: ts(10, 0)},
			{observe: true, remote: ts(111, 0), wall: 10, want: ts(10, 0), ok: false},
			{observe: true, remote: ts(110, 0), wall: 10, want: ts(110, 0), ok: true},
			{observe: true, remote: ts(math.MaxInt64, 0), wall: math.MinInt64, want: ts(110, 0), ok: false},
		}},
		{"logical overflow moves to the next nanosecond", 0, []step{
			{observe: true, remote: ts(7, math.MaxUint32), wall: 0, want: ts(7, math.MaxUint32), ok: true},
			{wall: 7, want: ts(8, 0)},
		}},
		{"end of time saturates", 0, []step{
			{observe: true, remote: ts(math.MaxInt64, math.MaxUint32), wall: 0, want: ts(math.MaxInt64, math.MaxUint32), ok: true},
			{wall: 1, want: ts(math.MaxInt64, math.MaxUint32)},
		}},
	}
	for _, tt := range tests {
		c := HLC{MaxOffset: tt.maxOffset}
		for i, s := range tt.steps {
			var got Timestamp
			if s.observe {
				if ok := c.Observe(s.remote, s.wall); ok != s.ok {
					t.Errorf("%s step %d: Observe = %v", tt.name, i, ok)
				}
				got = c.Last()
			} else {
				got = c.Now(s.wall)
			}
			if got != s.want {
				t.Errorf("%s step %d: got %v, want %v", tt.name, i, got, s.want)
			}
		}
	}
}

func TestTimestampCompare(t *testing.T) {
	order := []Timestamp{{}, ts(0, 1), ts(1, 0), ts(1, 5), ts(2, 0)}
	for i, a := range order {
		for j, b := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", a, b, got, want)
			}
		}
	}
	if !(Timestamp{}).IsZero() || ts(0, 1).IsZero() || ts(3, 4).String() != "3.4" {
		t.Error("IsZero/String")
	}
}
