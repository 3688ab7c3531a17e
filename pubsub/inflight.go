package pubsub

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"time"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	lp2pps "github.com/libp2p/go-libp2p-pubsub"
)

// Copies of a message still being validated.
//
// GossipSub marks a message seen only once its signature has been
// verified (so that a forged copy cannot make the real one look like a
// duplicate), and the verification runs in the validation queue. Every
// copy that arrives while the first one waits there is queued too, and its
// signature verified, before it is found to be a duplicate. On a busy node
// that is every copy: while a mesh of 100 formed, each of its processes
// received each announcement from 3 or 4 GossipSub peers, and verifying
// the copies' Ed25519 signatures was the largest single cost (19 % of the
// processes' CPU by perf; 6 % with this).
//
// So an RPC inspector, which runs on GossipSub's event loop before the
// RPC's messages are looked at, drops a copy identical to one taken less
// than inflightTTL ago: same signature, same content, byte for byte. A
// forged copy differs from the real one (its signature does not verify
// for what it carries), so it never shadows it; a copy that GossipSub
// turned away before it was validated (the queue full) forgets its entry,
// so the next copy is taken. Once the first copy has been validated,
// GossipSub's own seen cache drops the later ones, as before; so the
// entries only need to outlive the wait in the queue, and expire in
// order of arrival. Dropped copies count as duplicates.

// inflightTTL is how long a taken copy shadows identical ones: longer than
// a message waits for validation on a loaded node.
const inflightTTL = 5 * time.Second

// maxInflight bounds the entries; beyond it copies are taken as before.
const maxInflight = 1 << 16

type inflight struct {
	seed  maphash.Seed
	wires *sync.Map // the wire names of the topics we validate: only their copies are dropped
	dup   func(wire string)
	now   func() time.Time

	mu    sync.Mutex
	at    map[uint64]time.Time
	order []inflightEntry // by arrival: the oldest first, from head on
	head  int
}

type inflightEntry struct {
	key uint64
	at  time.Time
}

func newInflight(wires *sync.Map, dup func(wire string)) *inflight {
	return &inflight{seed: maphash.MakeSeed(), wires: wires, dup: dup, now: time.Now, at: map[uint64]time.Time{}}
}

// key identifies a message by everything GossipSub verifies and delivers.
func (f *inflight) key(m *pb.Message) uint64 {
	var h maphash.Hash
	h.SetSeed(f.seed)
	field := func(b []byte) { // length-prefixed: fields cannot run into each other
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		_, _ = h.Write(n[:])
		_, _ = h.Write(b)
	}
	field(m.GetFrom())
	field(m.GetSeqno())
	_, _ = h.WriteString(m.GetTopic())
	_ = h.WriteByte(0)
	field(m.GetSignature())
	field(m.GetKey())
	field(m.GetData())
	return h.Sum64()
}

// inspect is GossipSub's RPC inspector: it removes from rpc the copies of
// messages taken less than inflightTTL ago. It never rejects an RPC.
func (f *inflight) inspect(_ peer.ID, rpc *lp2pps.RPC) error {
	msgs := rpc.GetPublish()
	if len(msgs) == 0 {
		return nil
	}
	now := f.now()
	kept := msgs[:0]
	f.mu.Lock()
	f.expireLocked(now)
	for _, m := range msgs {
		if _, ours := f.wires.Load(m.GetTopic()); !ours {
			kept = append(kept, m)
			continue
		}
		k := f.key(m)
		if _, ok := f.at[k]; ok {
			f.dup(m.GetTopic())
			continue
		}
		if len(f.at) < maxInflight {
			f.at[k] = now
			f.order = append(f.order, inflightEntry{k, now})
		}
		kept = append(kept, m)
	}
	f.mu.Unlock()
	clear(msgs[len(kept):]) // no stale pointers past the end
	rpc.Publish = kept
	return nil
}

// expireLocked drops the entries older than inflightTTL; f.mu held.
func (f *inflight) expireLocked(now time.Time) {
	for ; f.head < len(f.order) && now.Sub(f.order[f.head].at) >= inflightTTL; f.head++ {
		e := f.order[f.head]
		if at, ok := f.at[e.key]; ok && at.Equal(e.at) {
			delete(f.at, e.key)
		}
	}
	switch {
	case f.head == len(f.order):
		f.order, f.head = f.order[:0], 0
	case f.head > len(f.order)/2:
		f.order, f.head = append(f.order[:0], f.order[f.head:]...), 0
	}
}

// forget lets the next copy of m in: GossipSub turned m away before it was
// validated.
func (f *inflight) forget(m *pb.Message) {
	if _, ours := f.wires.Load(m.GetTopic()); !ours {
		return
	}
	k := f.key(m)
	f.mu.Lock()
	delete(f.at, k)
	f.mu.Unlock()
}
