package pubsub

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// wantLinks waits until p.Links() is want, and reports the last one seen
// if it never is.
func wantLinks(t *testing.T, p *PubSub, what string, want map[peer.ID][]peer.ID) {
	t.Helper()
	var got map[peer.ID][]peer.ID
	deadline := time.Now().Add(20 * time.Second)
	for {
		got = p.Links()
		if maps.EqualFunc(got, want, slices.Equal) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: Links\n%v\nwant\n%v", what, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sorted returns ids sorted, as Links lists them.
func sorted(ids ...peer.ID) []peer.ID { return slices.Sorted(slices.Values(ids)) }

// Each node of a full mesh of 3 sees the 3 nodes, each linked to the other
// two; a node that closes goes, with its links. The result is a copy.
func TestLinksFullMesh(t *testing.T) {
	hosts := newHosts(t, 3)
	ps := pubsubsOn(t, hosts, Config{})
	id := func(i int) peer.ID { return hosts[i].ID() }
	full := map[peer.ID][]peer.ID{
		id(0): sorted(id(1), id(2)),
		id(1): sorted(id(0), id(2)),
		id(2): sorted(id(0), id(1)),
	}
	for i, p := range ps {
		wantLinks(t, p, fmt.Sprint("node ", i), full)
	}

	got := ps[0].Links()
	got[id(0)][0] = "mutated"
	delete(got, id(1))
	if again := ps[0].Links(); !maps.EqualFunc(again, full, slices.Equal) {
		t.Fatalf("changing the result changed the next one: %v", again)
	}

	closePubSub(t, ps[2])
	if err := hosts[2].Close(); err != nil {
		t.Fatal(err)
	}
	pair := map[peer.ID][]peer.ID{id(0): {id(1)}, id(1): {id(0)}}
	for i, p := range ps[:2] {
		wantLinks(t, p, fmt.Sprint("node ", i, " after node 2 closed"), pair)
	}
}

// On a star, a leaf sees the other leaf through the hub's announcements
// and the other leaf's own (relayed by the hub); when that leaf closes, the
// hub announces it gone and it drops out of the graph, although its last
// announcement is still held.
func TestLinksPartialMesh(t *testing.T) {
	hosts, ps := starOf(t, 2)
	id := func(i int) peer.ID { return hosts[i].ID() }
	wantLinks(t, ps[1], "leaf 1", map[peer.ID][]peer.ID{
		id(0): sorted(id(1), id(2)),
		id(1): {id(0)},
		id(2): {id(0)},
	})

	closePubSub(t, ps[2])
	if err := hosts[2].Close(); err != nil {
		t.Fatal(err)
	}
	wantLinks(t, ps[1], "leaf 1 after leaf 2 closed", map[peer.ID][]peer.ID{
		id(0): {id(1)},
		id(1): {id(0)},
	})
	ps[1].topo.mu.Lock()
	_, held := ps[1].topo.theirs[id(2)]
	ps[1].topo.mu.Unlock()
	t.Logf("leaf 2's last announcement still held: %v", held)
}
