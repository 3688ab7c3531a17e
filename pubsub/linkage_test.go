package pubsub

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A node lists the age of each link younger than linkAgeCap in what it
// announces, and no other.
func TestYoungAges(t *testing.T) {
	topo := newTopology("me")
	for _, q := range []peer.ID{"a", "b", "c"} {
		topo.setConnected(q, true)
		topo.setReady(q, true)
	}
	now := time.Now()
	topo.mu.Lock()
	topo.ready["a"] = now.Add(-5 * time.Second)
	topo.ready["b"] = now.Add(-300*time.Millisecond - 400*time.Microsecond)
	topo.ready["c"] = now.Add(-linkAgeCap)
	topo.mu.Unlock()
	ps := topo.announced()
	if !slices.Equal(ps, []peer.ID{"a", "b", "c"}) {
		t.Fatalf("announced %v", ps)
	}
	if got, want := topo.youngAges(ps, now), []linkAge{{1, 300 * time.Millisecond}}; !slices.Equal(got, want) {
		t.Fatalf("ages %+v, want %+v", got, want)
	}
	topo.setReady("b", false)
	if got := topo.youngAges(topo.announced(), now); len(got) != 0 {
		t.Fatalf("ages %+v after b's loss, want none", got)
	}
	topo.setReady("b", true) // ready again: a new link
	ps = topo.announced()
	if got := topo.youngAges(ps, time.Now()); len(got) != 1 || got[0].index != 1 || got[0].age > time.Second {
		t.Fatalf("ages %+v after b came back, want b's, young", got)
	}
}

// Announced gives each member beyond the neighbours the time since which a
// path of announced links to it has stood: a link announced with an age
// from when it became ready, one without from linkAgeCap before it was
// learnt, the earliest of a link's announcements; a path's time is its
// latest link's, and the best path counts.
func TestAnnouncedSince(t *testing.T) {
	topo := newTopology("me")
	topo.setConnected("a", true)
	topo.setReady("a", true)
	t0 := time.Now()
	learn := func(p peer.ID, at time.Time, peers []peer.ID, ages ...linkAge) {
		t.Helper()
		topo.learnAnnouncement(p, announcement{peers: peers, ages: ages}, at)
	}
	got := func() map[peer.ID]time.Time {
		far, _ := topo.announcedByOthers()
		return far
	}
	// me → a → b (an old link) → c (a young one, 200 ms old).
	learn("a", t0, []peer.ID{"me", "b"})
	learn("b", t0, []peer.ID{"a", "c"}, linkAge{1, 200 * time.Millisecond})
	far := got()
	if want := t0.Add(-linkAgeCap); !far["b"].Equal(want) {
		t.Errorf("b reached since %v, want %v (an old link)", far["b"].Sub(t0), want.Sub(t0))
	}
	if want := t0.Add(-200 * time.Millisecond); !far["c"].Equal(want) {
		t.Errorf("c reached since %v, want %v (its link's age)", far["c"].Sub(t0), want.Sub(t0))
	}
	if _, ok := far["me"]; ok || len(far) != 3 {
		t.Errorf("announced %v, want a (b names it), b and c", far)
	}
	// b's refresh, 2 s later, no longer lists the link's age: the
	// earlier time stays; and nothing changed to wake the node for.
	woke := topo.updates()
	learn("b", t0.Add(2*time.Second), []peer.ID{"a", "c"})
	if far := got(); !far["c"].Equal(t0.Add(-200 * time.Millisecond)) {
		t.Errorf("c reached since %v after the refresh, want -200ms", far["c"].Sub(t0))
	}
	select {
	case <-woke:
		t.Error("a refresh that changes nothing woke the node")
	default:
	}
	// d is reached only through e, whose link from a is young: the path
	// counts from its latest link, however old e's link to d is.
	learn("a", t0.Add(time.Second), []peer.ID{"me", "b", "e"}, linkAge{2, 100 * time.Millisecond})
	learn("e", t0.Add(time.Second), []peer.ID{"a", "d"})
	far = got()
	if want := t0.Add(900 * time.Millisecond); !far["d"].Equal(want) || !far["e"].Equal(want) {
		t.Errorf("d, e reached since %v, %v, want %v (a's link to e)", far["d"].Sub(t0), far["e"].Sub(t0), want.Sub(t0))
	}
	// c also links to d, with an old link: d's best path is now through b
	// and c, whose latest link (b → c) is older than a → e.
	learn("c", t0.Add(time.Second), []peer.ID{"b", "d"})
	if far := got(); !far["d"].Equal(t0.Add(-200 * time.Millisecond)) {
		t.Errorf("d reached since %v with a second path, want -200ms", far["d"].Sub(t0))
	}
	// An announcement that names a link as older than this node knew it
	// moves its time earlier, and wakes the node.
	woke = topo.updates()
	learn("e", t0.Add(1100*time.Millisecond), []peer.ID{"a", "d"})
	select {
	case <-woke:
		t.Error("no time moved earlier, yet the node woke")
	default:
	}
	learn("a", t0.Add(1100*time.Millisecond), []peer.ID{"me", "b", "e"}) // e's link now old: since t0+1.1 s-linkAgeCap
	select {
	case <-woke:
	default:
		t.Error("a link's time moved earlier and the node was not woken")
	}
	if want := t0.Add(1100*time.Millisecond - linkAgeCap); !got()["e"].Equal(want) {
		t.Errorf("e reached since %v, want %v", got()["e"].Sub(t0), want.Sub(t0))
	}
}
