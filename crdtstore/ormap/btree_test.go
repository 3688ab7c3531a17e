package ormap

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func treeKeys(tr *btree, from string) []string {
	var ks []string
	tr.ascend(from, func(k string, _ *entry) bool { ks = append(ks, k); return true })
	return ks
}

func checkTree(t *testing.T, seed uint64, tr *btree, model map[string]uint64) {
	t.Helper()
	if tr.root != nil {
		if _, err := tr.root.verify(true); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	want := make([]string, 0, len(model))
	for k := range model {
		want = append(want, k)
	}
	slices.Sort(want)
	if got := treeKeys(tr, ""); !slices.Equal(got, want) || tr.len != len(want) {
		t.Fatalf("seed %d: tree has %d keys (len %d), want %d", seed, len(got), tr.len, len(want))
	}
	for k, v := range model {
		if it := tr.get(k); it == nil || it.ctr != v {
			t.Fatalf("seed %d: get(%q) = %v", seed, k, it)
		}
	}
}

// TestBtreeRandom runs random inserts and deletes against a Go map.
func TestBtreeRandom(t *testing.T) {
	for seed := uint64(1); seed <= uint64(cases(200)); seed++ {
		rng := rand.New(rand.NewPCG(seed, 2))
		var tr btree
		model := make(map[string]uint64)
		space := 1 + rng.IntN(3000)
		for i := range 4000 {
			k := fmt.Sprintf("%05d", rng.IntN(space))
			if _, ok := model[k]; ok && rng.IntN(2) == 0 {
				if !tr.delete(k) {
					t.Fatalf("seed %d: delete(%q) missed", seed, k)
				}
				delete(model, k)
			} else if !ok {
				tr.insert(item{key: k, e: entry{ctr: uint64(i)}})
				model[k] = uint64(i)
			}
			if tr.delete("absent") {
				t.Fatalf("seed %d: deleted an absent key", seed)
			}
		}
		checkTree(t, seed, &tr, model)
		for k := range model {
			tr.delete(k)
			delete(model, k)
		}
		checkTree(t, seed, &tr, model)
		if tr.root != nil {
			t.Fatalf("seed %d: empty tree keeps a root", seed)
		}
	}
}

// TestBtreeBulkFill: ascending and descending loads leave nodes nearly full.
func TestBtreeBulkFill(t *testing.T) {
	const n = 100000
	for _, order := range []string{"ascending", "descending"} {
		var tr btree
		model := make(map[string]uint64, n)
		for i := range n {
			k := i
			if order == "descending" {
				k = n - 1 - i
			}
			key := fmt.Sprintf("%08d", k)
			tr.insert(item{key: key, e: entry{ctr: uint64(k)}})
			model[key] = uint64(k)
		}
		checkTree(t, 0, &tr, model)
		nodes := 0
		var count func(*node)
		count = func(nd *node) {
			nodes++
			if nd.kids != nil {
				for i := 0; i <= nd.n; i++ {
					count(nd.kids[i])
				}
			}
		}
		count(tr.root)
		if fill := float64(n) / float64(nodes*maxItems); fill < 0.9 {
			t.Errorf("%s: fill %.2f, want ≥ 0.9", order, fill)
		}
	}
}

func TestBtreeAscendFrom(t *testing.T) {
	var tr btree
	for i := 0; i < 500; i += 2 {
		tr.insert(item{key: fmt.Sprintf("%03d", i)})
	}
	for _, from := range []string{"", "000", "001", "250", "251", "498", "499", "zzz"} {
		got := treeKeys(&tr, from)
		var want []string
		for i := 0; i < 500; i += 2 {
			if k := fmt.Sprintf("%03d", i); k >= from {
				want = append(want, k)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("ascend(%q): %d keys, want %d", from, len(got), len(want))
		}
	}
}
