package pubsub

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Link ages.
//
// A node that announces a new peer passes the others' messages on to it
// only once its GossipSub heartbeat (or the peer's) has grafted it into
// the node's meshes for the topics: about a second after the peer became
// ready. Package node counts a member beyond the neighbours once the links
// that reach it have stood that long (Announced; node's farJoinAfter), so
// a broadcast made when WaitPeers returns reaches it. Timed from when this
// node learnt of a link, every member that joined a forming mesh waited
// the full second after the announcement arrived, though most links were
// older by then (the announcement waited for its author's debounce, and
// for relays that were forming themselves).
//
// So an announcement tells how long each of its young links has stood:
// a link that became ready less than linkAgeCap before the announcement
// was made is listed with its age, in milliseconds, after the registry
// entries (the entries' count written as 0 when there are none):
//
//	ages   count (uvarint, 1 or more), then for each young link the
//	       index of its peer in the announcement (uvarint, increasing)
//	       and its age in ms (uvarint, below linkAgeCap)
//
// A settled node's announcements carry no ages, and are as before. The
// receiver takes a link to have stood since it received the announcement
// less the age (less linkAgeCap for a link without one, at the earliest
// of its announcements while the link lasts): a link is never older than
// that, whatever the announcement's delay on the way.
//
// (A node of a version without ages refuses an announcement with them as
// malformed: in a mesh of mixed versions, it learns a new link from the
// author's repeat 1.5 s after its last change, which has none.)

const (
	// linkAgeCap: links younger than this when announced carry their age.
	// It is above node's farJoinAfter, so that a link announced without
	// an age counts at once; and it is announceAgain, so that the repeat
	// after a node's last change carries no ages (each gain's
	// announcement waits at least announceGrowQuiet, and the repeat
	// announceAgain after the last one).
	linkAgeCap = announceAgain
)

// linkAge is a young link in an announcement: the index of its peer in the
// announcement's list, and how long the link had stood when the
// announcement was made.
type linkAge struct {
	index int
	age   time.Duration
}

// appendAges appends an announcement's ages section (nothing for none).
func appendAges(b []byte, ages []linkAge) []byte {
	if len(ages) == 0 {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(ages)))
	for _, a := range ages {
		b = binary.AppendUvarint(b, uint64(a.index))
		b = binary.AppendUvarint(b, uint64(a.age/time.Millisecond))
	}
	return b
}

// decodeAges decodes an ages section for an announcement of n peers: the
// whole of b, at least one entry, indexes increasing and below n, ages
// below linkAgeCap.
func decodeAges(b []byte, n int) ([]linkAge, error) {
	count, b, err := readUvarint(b, "link age count")
	if err != nil {
		return nil, err
	}
	if count == 0 || count > uint64(n) {
		return nil, fmt.Errorf("%w: %d link ages for %d peers", ErrMalformed, count, n)
	}
	out := make([]linkAge, 0, count)
	for range count {
		var i, ms uint64
		if i, b, err = readUvarint(b, "link age index"); err != nil {
			return nil, err
		}
		if ms, b, err = readUvarint(b, "link age"); err != nil {
			return nil, err
		}
		if i >= uint64(n) || (len(out) > 0 && int(i) <= out[len(out)-1].index) {
			return nil, fmt.Errorf("%w: link age index %d", ErrMalformed, i)
		}
		if ms >= uint64(linkAgeCap/time.Millisecond) {
			return nil, fmt.Errorf("%w: link age %d ms", ErrMalformed, ms)
		}
		out = append(out, linkAge{index: int(i), age: time.Duration(ms) * time.Millisecond})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in a peer announcement", ErrMalformed, len(b))
	}
	return out, nil
}

// youngAges returns the ages of our links younger than linkAgeCap among
// ps (what we announce, in its order), at now.
func (t *topology) youngAges(ps []peer.ID, now time.Time) []linkAge {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []linkAge
	for i, q := range ps {
		at, ok := t.ready[q]
		if !ok {
			continue
		}
		if age := now.Sub(at); age < linkAgeCap {
			out = append(out, linkAge{index: i, age: max(0, age).Truncate(time.Millisecond)})
		}
	}
	return out
}

// learnSinceLocked records since when each link of p's announcement a,
// received at now, has stood at the latest; t.mu held. It reports whether
// a link's time moved earlier: an earlier announcement gave the link an
// age, and this one says it is older than that.
func (t *topology) learnSinceLocked(p peer.ID, a announcement, now time.Time) (earlier bool) {
	old := t.since[p]
	since := make(map[peer.ID]time.Time, len(a.peers))
	ages := a.ages // by increasing index (decodeAges, youngAges)
	for i, q := range a.peers {
		age := linkAgeCap
		if len(ages) > 0 && ages[0].index == i {
			age, ages = ages[0].age, ages[1:]
		}
		s := now.Add(-age)
		if o, ok := old[q]; ok {
			if !o.After(s) {
				s = o
			} else {
				earlier = true
			}
		}
		since[q] = s
	}
	t.since[p] = since
	return earlier
}

// reachSinceLocked returns, for every node reachable through announced
// links, the earliest time since which a path to it has stood: each of
// its links beyond our own since its time (learnSinceLocked). Our own
// links count from the start: what we publish goes to every peer we send
// to directly. t.mu held.
//
// A path's time is its latest link's, so this is a shortest-path search
// where the latest link counts instead of a sum: nodes are settled in
// order of their time, each once (Dijkstra's). Relaxing every link until
// nothing improved took several passes over the mesh's links: 0.35 ms
// for 100 nodes of 10 links each, against 0.12 ms now
// (BenchmarkReachSince), and node's membership view recomputes this
// after every change while a mesh forms.
func (t *topology) reachSinceLocked() map[peer.ID]time.Time {
	best := make(map[peer.ID]time.Time, len(t.theirs)+len(t.ready))
	var h reachHeap
	for q := range t.ready {
		best[q] = time.Time{}
		h = append(h, reachItem{node: q})
	}
	heap.Init(&h)
	done := make(map[peer.ID]struct{}, len(best))
	for h.Len() > 0 {
		it := heap.Pop(&h).(reachItem)
		if _, ok := done[it.node]; ok {
			continue // settled earlier by a better path
		}
		done[it.node] = struct{}{}
		since := t.since[it.node]
		for v := range t.theirs[it.node] {
			if v == t.self {
				continue
			}
			if _, ok := done[v]; ok {
				continue
			}
			s := since[v]
			if s.Before(it.since) {
				s = it.since
			}
			if bv, ok := best[v]; !ok || s.Before(bv) {
				best[v] = s
				heap.Push(&h, reachItem{node: v, since: s})
			}
		}
	}
	return best
}

// reachItem is a node reached since a time, in reachSinceLocked's heap.
type reachItem struct {
	node  peer.ID
	since time.Time
}

// reachHeap orders reachItems by their time, the earliest first
// (container/heap).
type reachHeap []reachItem

func (h reachHeap) Len() int           { return len(h) }
func (h reachHeap) Less(i, j int) bool { return h[i].since.Before(h[j].since) }
func (h reachHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *reachHeap) Push(x any)        { *h = append(*h, x.(reachItem)) }
func (h *reachHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
