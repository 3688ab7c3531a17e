package statuspage

import (
	"fmt"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
)

// Event is one line of the page's recent events.
type Event struct {
	Time time.Time `json:"time"`
	// Kind is "peer" (joined, left), "key" (set, deleted, expired: key
	// names and value sizes, never values), "sync" (the store synced with
	// a peer) or "missed" (changes not shown: the page fell behind).
	Kind string `json:"kind"`
	Peer string `json:"peer,omitempty"`
	Key  string `json:"key,omitempty"`
	Text string `json:"text"`
}

func (p *Page) addLocked(e Event) {
	if len(p.events) == maxEvents {
		copy(p.events, p.events[1:])
		p.events = p.events[:maxEvents-1]
	}
	p.events = append(p.events, e)
}

func (p *Page) add(e Event) {
	p.mu.Lock()
	p.addLocked(e)
	p.mu.Unlock()
}

// peerEvent records a peer joining or leaving (Node.OnPeer).
func (p *Page) peerEvent(e node.PeerEvent) {
	p.add(Event{Time: time.Now(), Kind: "peer", Peer: e.ID.String(), Text: e.State.String()})
}

// watchLoop records the store's changes until the watcher stops.
func (p *Page) watchLoop() {
	defer p.wg.Done()
	for c := range p.watcher.Updates() {
		now := time.Now()
		if c.Missed > 0 {
			p.add(Event{Time: now, Kind: "missed", Text: fmt.Sprintf("%d changes not shown", c.Missed)})
		}
		p.add(changeEvent(now, c))
	}
}

// changeEvent describes c without its value.
func changeEvent(now time.Time, c crdtstore.Change) Event {
	e := Event{Time: now, Kind: "key", Key: c.Key, Peer: c.Peer}
	switch {
	case c.Origin == crdtstore.OriginExpired:
		e.Text = "expired"
	case c.Deleted:
		e.Text = "deleted (" + c.Origin.String() + ")"
	default:
		e.Text = fmt.Sprintf("set, %d bytes (%s)", len(c.Value), c.Origin)
	}
	return e
}

// syncEventsLocked records each peer the store has newly synced with.
func (p *Page) syncEventsLocked(now time.Time, peers []crdtstore.PeerSyncStatus) {
	seen := make(map[string]bool, len(peers))
	for _, ps := range peers {
		if ps.Synced && !p.synced[ps.Peer] {
			p.addLocked(Event{Time: now, Kind: "sync", Peer: ps.Peer, Text: "store synced"})
		}
		seen[ps.Peer] = ps.Synced
	}
	p.synced = seen
}
