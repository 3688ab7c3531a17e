package ormap

import (
	"strings"
	"testing"
	"time"
)

// simRegressions holds seeds (and configurations) that once failed; they
// run first, always.
var simRegressions = []simConfig{
	// Seed 1 with 2 replicas, 1 key: the smallest world with concurrency.
	{Seed: 1, Replicas: 2, Keys: 1, Ops: 200, Drop: 0.5, Dup: 0.3, MaxDelay: 20, Partition: 0.1, Flush: 0.3, AntiEntropy: 0.01},
}

func TestSimulation(t *testing.T) {
	seeds := uint64(500)
	if raceEnabled {
		seeds = 40
	}
	start := time.Now()
	cfgs := append([]simConfig(nil), simRegressions...)
	for s := uint64(1); s <= seeds; s++ {
		cfgs = append(cfgs, defaultSimConfig(s))
	}
	var total simReport
	for _, cfg := range cfgs {
		rep, err := simulate(cfg)
		if err != nil {
			t.Fatal(err) // the error names the seed
		}
		total.Steps += rep.Steps
		total.Sets += rep.Sets
		total.Deletes += rep.Deletes
		total.Sent += rep.Sent
		total.Dropped += rep.Dropped
		total.Duplicated += rep.Duplicated
		total.Gaps += rep.Gaps
		total.Syncs += rep.Syncs
		total.SyncsCut += rep.SyncsCut
		total.FinalSyncs += rep.FinalSyncs
		total.FinalRoundTrips += rep.FinalRoundTrips
		total.FinalRounds = max(total.FinalRounds, rep.FinalRounds)
		total.TTLSets += rep.TTLSets
		total.Expirations += rep.Expirations
		total.Expired += rep.Expired
		total.LiveTTL += rep.LiveTTL
	}
	if total.Dropped == 0 || total.Duplicated == 0 || total.Gaps == 0 || total.SyncsCut == 0 || total.Deletes == 0 ||
		total.Expirations == 0 || total.Expired == 0 || total.LiveTTL == 0 {
		t.Fatalf("the simulation did not exercise its faults: %+v", total)
	}
	t.Logf("%d runs in %v; totals (FinalRounds: max) %+v", len(cfgs), time.Since(start).Round(time.Millisecond), total)
}

// TestSimulationVariants: other shapes of the network.
func TestSimulationVariants(t *testing.T) {
	variants := map[string]func(*simConfig){
		"no loss":              func(c *simConfig) { c.Drop, c.Dup, c.Partition = 0, 0, 0 },
		"heavy loss":           func(c *simConfig) { c.Drop = 0.6 },
		"long partitions":      func(c *simConfig) { c.Partition = 0.2 },
		"no anti-entropy":      func(c *simConfig) { c.AntiEntropy = 0 },
		"one key, 8 nodes":     func(c *simConfig) { c.Keys, c.Replicas = 1, 8 },
		"many keys":            func(c *simConfig) { c.Keys, c.Ops = 200, 600 },
		"no coalescing":        func(c *simConfig) { c.Flush = 1 },
		"no TTL":               func(c *simConfig) { c.TTL = 0 },
		"TTLs within the skew": func(c *simConfig) { c.TTL, c.MaxTTL = 0.6, 300 },
		"skew of 3 steps":      func(c *simConfig) { c.Skew = 3000 },
		"lazy timers":          func(c *simConfig) { c.Expire, c.ExpireBatch = 0.02, 1 },
		"no timers":            func(c *simConfig) { c.Expire = 0 },
	}
	for name, mod := range variants {
		for s := uint64(1); s <= uint64(cases(30)); s++ {
			cfg := defaultSimConfig(s)
			mod(&cfg)
			if _, err := simulate(cfg); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
}

// TestSimulationCatchesTheTrap: a simulator whose checks cannot fail proves
// nothing. With the naive sync reply (missing entries plus the full
// context) every run must report lost writes or diverged replicas.
func TestSimulationCatchesTheTrap(t *testing.T) {
	for s := uint64(1); s <= uint64(cases(50)); s++ {
		cfg := defaultSimConfig(s)
		cfg.NaiveDiff = true
		_, err := simulate(cfg)
		if err == nil {
			t.Fatalf("seed %d: the naive diff went unnoticed", s)
		}
		if msg := err.Error(); !strings.Contains(msg, "differ") && !strings.Contains(msg, "lost") {
			t.Fatalf("seed %d: unexpected failure: %v", s, err)
		}
	}
}

func TestSimulationDeterministic(t *testing.T) {
	a, errA := simulate(defaultSimConfig(42))
	b, errB := simulate(defaultSimConfig(42))
	if a != b || errA != nil || errB != nil {
		t.Fatalf("two runs of seed 42 differ: %+v vs %+v", a, b)
	}
	if _, err := simulate(simConfig{Replicas: 1}); err == nil {
		t.Fatal("a bad configuration was accepted")
	}
}

// TestSimulationCatchesLostTTL: with receivers that drop expiries, the
// expiry checks must fail. Not on every seed: a writer's own expiry also
// spreads through the sync replies it sends (removals of dots it knows), so
// some runs heal the broken receivers; 47 of the first 50 seeds fail.
func TestSimulationCatchesLostTTL(t *testing.T) {
	n, caught := max(cases(50), 20), 0
	for s := uint64(1); s <= uint64(n); s++ {
		cfg := defaultSimConfig(s)
		cfg.LoseTTL = true
		if _, err := simulate(cfg); err != nil {
			caught++
		}
	}
	if caught < n*3/4 {
		t.Fatalf("lost expiries caught in %d runs of %d", caught, n)
	}
}
