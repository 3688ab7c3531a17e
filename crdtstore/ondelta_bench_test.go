package crdtstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/crdtstore/ormap"
	"github.com/reflectmesh/reflect/internal/testutil"
)

// BenchmarkOnDelta times the receive path of a one-key delta from a joined
// peer (decoded already, as pub/sub hands it): the causality guard, the
// join, and the replica lag's bookkeeping.
func BenchmarkOnDelta(b *testing.B) {
	net := crdttest.NewNetwork()
	s := openMem(b, net, "b", crdtstore.Options{SyncInterval: -1})
	tr := net.Transport("a")
	if err := tr.Start(crdtstore.Handlers{
		DecodeDelta: func(data []byte) (ormap.Delta, error) { return ormap.DecodeDelta(data, ormap.Limits{}) },
		Delta:       func(string, ormap.Delta) {},
		Sync:        func(_ string, st crdtstore.Stream) { answerEqual(st) },
		PeerUp:      func(string) {}, PeerDown: func(string) {},
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Close() })
	testutil.Eventually(b, 5*time.Second, "a joined", func() bool { return crdtstore.Joined(s, "a") })
	m := ormap.New(ormap.ReplicaID(crdtstore.NewReplicaID("a")))
	v := []byte("a hundred bytes of value, more or less, to look like a small JSON document....")
	ds := make([]ormap.Delta, b.N)
	for i := range ds {
		ds[i] = m.Set(fmt.Sprintf("key/%06d", i%10000), v, ormap.Timestamp{Wall: time.Now().UnixNano()})
	}
	b.ResetTimer()
	for _, d := range ds {
		crdtstore.DeliverDelta(s, "a", d)
	}
}
