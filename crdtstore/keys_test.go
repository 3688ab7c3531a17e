package crdtstore_test

import (
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// A member's delta whose key the store's own Set would refuse (not UTF-8,
// or empty) is refused and counted, and the member's later valid writes
// still arrive (issue 11: "remote keys bypass the UTF-8 check").
func TestRemoteKeysMustBeValid(t *testing.T) {
	a, b, m := attackMesh(t)
	M := string(crdtstore.NewReplicaID(string(m.n.ID())))
	bad := func(key string, ctr uint64) []byte {
		return rawDelta{origin: M, ctx: map[string][]ormap.Interval{M: one(ctr, ctr)},
			keys: []rawKey{{key: key, ents: []rawEntry{{rep: M, ctr: ctr, val: []byte("v")}}}}}.encode()
	}
	good := rawDelta{origin: M, ctx: map[string][]ormap.Interval{M: one(1, 3)},
		keys: []rawKey{{key: "m/ok", ents: []rawEntry{{rep: M, ctr: 3, val: []byte("ok")}}}}}.encode()
	publishRaw(t, m, bad("m/\xff\xfe", 1), bad("", 2), good)
	for _, x := range []testNode{a, b} {
		testutil.Eventually(t, 5*time.Second, "m's valid write", func() bool { return has(x.s, "m/ok") })
		if st := x.s.Stats(); st.DeltasInvalid != 2 {
			t.Errorf("DeltasInvalid = %d, want 2", st.DeltasInvalid)
		}
		for _, k := range x.s.Keys("") {
			if k != "m/ok" {
				t.Errorf("the store holds the key %q", k)
			}
		}
	}
}

// A sync reply holding a non-UTF-8 key is refused whole.
func TestRemoteKeysMustBeValidInSync(t *testing.T) {
	net := crdttest.NewNetwork()
	b := openMem(t, net, "b", fastOptions())
	mustSet(t, b, "k", "v") // so that b answers an empty context with a delta
	att := newSyncAttacker(t, net, "m")
	M := string(crdtstore.NewReplicaID("m"))
	reply := rawDelta{global: true, ctx: map[string][]ormap.Interval{M: one(1, 2)},
		keys: []rawKey{
			// Keys in byte order, with no shared prefix (rawDelta does not
			// compress them).
			{key: "ok", ents: []rawEntry{{rep: M, ctr: 2, val: []byte("ok")}}},
			{key: "\xff", ents: []rawEntry{{rep: M, ctr: 1, val: []byte("bad")}}},
		}}
	failures := b.Stats().SyncFailures
	att.answer(t, "b", reply.encode())
	testutil.Eventually(t, 5*time.Second, "b to refuse the reply", func() bool { return b.Stats().SyncFailures > failures })
	if ks := b.Keys(""); len(ks) != 1 || ks[0] != "k" {
		t.Fatalf("b holds %q", ks)
	}
}
