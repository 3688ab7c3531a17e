package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Stat is a figure over several runs: the median and the range.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Runs   int     `json:"runs"`
}

// statOf summarises values, skipping NaN (a run that did not measure it).
func statOf(values []float64) Stat {
	var v []float64
	for _, x := range values {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Stat{Median: med, Min: v[0], Max: v[len(v)-1], Runs: len(v)}
}

func (s Stat) ok() bool { return s.Runs > 0 && !math.IsNaN(s.Median) }

// format prints the median with the range when there is more than one run,
// using the given precision verb for each number.
func (s Stat) format(verb string) string {
	if !s.ok() {
		return "–"
	}
	m := fmt.Sprintf(verb, s.Median)
	if s.Runs < 2 || s.Min == s.Max {
		return m
	}
	return fmt.Sprintf("%s ("+verb+"–"+verb+")", m, s.Min, s.Max)
}

// num prints a figure with a sensible number of digits.
func num(x float64) string {
	switch a := math.Abs(x); {
	case math.IsNaN(x):
		return "–"
	case a < 100 && x == math.Trunc(x):
		return fmt.Sprintf("%.0f", x)
	case a >= 100_000:
		return fmt.Sprintf("%.0fk", x/1000)
	case a >= 10_000:
		return fmt.Sprintf("%.1fk", x/1000)
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}

// short prints median and range with num.
func (s Stat) short() string {
	if !s.ok() {
		return "–"
	}
	if s.Runs < 2 || num(s.Min) == num(s.Max) {
		return num(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.Median), num(s.Min), num(s.Max))
}

// MarshalJSON writes null for the figures of a Stat that was not measured
// (JSON has no NaN).
func (s Stat) MarshalJSON() ([]byte, error) {
	if !s.ok() {
		return []byte("null"), nil
	}
	type plain Stat
	return json.Marshal(plain(s))
}

// count prints a count of keys: 1,000,000 as 1M, 100,000 as 100k.
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + "M"
	case n >= 1_000 && n%100 == 0:
		return strconv.FormatFloat(float64(n)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.Itoa(n)
}
