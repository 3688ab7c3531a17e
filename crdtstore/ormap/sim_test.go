package ormap

import "testing"

func TestSimSmoke(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rep, err := Simulate(DefaultSimConfig(seed))
		if err != nil {
			t.Fatal(err)
		}
		if seed == 1 {
			t.Logf("%+v", rep)
		}
	}
	for seed := uint64(1); seed <= 5; seed++ {
		cfg := DefaultSimConfig(seed)
		cfg.NaiveDiff = true
		_, err := Simulate(cfg)
		t.Logf("naive seed %d: %v", seed, err)
	}
}
