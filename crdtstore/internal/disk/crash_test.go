package disk

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// A child process commits records from childGoros goroutines and prints
// each acknowledged one; the test SIGKILLs it (by its PID) mid-stream,
// reopens the directory and checks that every acknowledged record is there
// with its data. Three rounds in Crash mode (on the same directory, so later
// rounds also recover logs of earlier kills), one in Power mode.
func TestKill9KeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	rounds := []Durability{Crash, Crash, Crash, Power}
	dirs := map[Durability]string{Crash: t.TempDir(), Power: t.TempDir()}
	acked := map[Durability]map[string]int{Crash: {}, Power: {}}
	for round, dur := range rounds {
		dir := dirs[dur]
		cmd, out := startChild(t, "write", dir, dur, fmt.Sprintf("%s=%d", childKeyEnv, round*1_000_000))
		if !out.Scan() || out.Text() != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child did not start: %q", round, out.Text())
		}
		// Kill after a random number of acks (bounded in count and time).
		killAfter := 2000 + rand.IntN(8000)
		deadline := time.Now().Add(20 * time.Second)
		n, killed := 0, false
		for out.Scan() {
			var g, i int
			if _, err := fmt.Sscanf(out.Text(), "ack %d %d", &g, &i); err != nil {
				t.Fatalf("child printed %q", out.Text())
			}
			acked[dur][childKey(g, i)] = g<<32 | i
			n++
			if !killed && (n >= killAfter || time.Now().After(deadline)) {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL to our child's PID
					t.Fatal(err)
				}
				killed = true
			}
		}
		cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child exited by itself after %d acks", round, n)
		}

		db := openT(t, dir, Options{Durability: dur})
		got := scanAll(t, db)
		missing := 0
		for k, gi := range acked[dur] {
			if v, ok := got["k"+k]; !ok || v != string(childValue(gi>>32, gi&(1<<32-1))) {
				missing++
			}
		}
		t.Logf("round %d (%s): %d acked this round, %d acked in all, %d on disk, %d missing",
			round, dur, n, len(acked[dur]), len(got), missing)
		if missing > 0 {
			t.Errorf("round %d (%s): %d acknowledged records missing or wrong after kill -9", round, dur, missing)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
