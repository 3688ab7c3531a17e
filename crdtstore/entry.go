package crdtstore

import (
	"encoding/hex"
	"iter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/crdtstore/ormap"
)

// Entry is a key's value with what the store knows of it: GetEntry and
// ScanEntries return one, and every Change carries one.
type Entry struct {
	Key   string
	Value []byte
	// Time is when the value was written, by the writer's hybrid logical
	// clock: the wall-clock part of HLC, which also holds the logical
	// counter that orders writes within one nanosecond.
	Time time.Time
	HLC  ormap.Timestamp
	// Writer is the replica that wrote the value, in hex: one incarnation
	// of the store on one node (a restarted node is a new replica, unless
	// its store resumed from Options.Dir under the same peer id). Compare
	// it with Store.ReplicaID.
	Writer string
	// Peer is the peer id of the node whose store wrote the value (on a
	// node, its text form, as peer.ID's String gives it), when
	// this store knows it: for its own writes, and for those of every
	// store it has received a delta from or synced with since it opened.
	// Empty for a value written by a store not met (one that left before
	// this one joined, or an earlier incarnation of a node).
	Peer string
	// Siblings is how many concurrent values the key has (see GetAll): 1
	// when there is no conflict.
	Siblings int
	// Expires is when the value expires (SetTTL): its write time plus the
	// TTL. Zero if it does not expire.
	Expires time.Time
}

// entry converts an entry of the map.
func (s *Store) entry(key string, e ormap.Entry, siblings int) Entry {
	out := Entry{
		Key:      key,
		Value:    e.Value,
		Time:     time.Unix(0, e.Time.Wall),
		HLC:      e.Time,
		Siblings: siblings,
	}
	if e.Dot.Replica == s.m.Replica() {
		out.Writer = s.self
	} else {
		out.Writer = hex.EncodeToString([]byte(e.Dot.Replica))
	}
	out.Peer = s.peerText(s.writers[e.Dot.Replica])
	if e.Expires != 0 {
		out.Expires = time.Unix(0, e.Expires)
	}
	return out
}

// ReplicaID returns this store's replica id in hex, as Entry.Writer shows
// the values it wrote.
func (s *Store) ReplicaID() string { return s.self }

// GetEntry returns key's value with its metadata (see Entry), and whether it
// has one. Like Get, it never returns an expired value.
func (s *Store) GetEntry(key string) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.viewLocked()
	e, ok := v.Get(key)
	if !ok {
		return Entry{}, false
	}
	return s.entry(key, e, v.Siblings(key)), true
}

// scanChunk is how many keys Scan reads per hold of the store's lock.
const scanChunk = 256

// Scan iterates over the keys starting with prefix, in key order, with
// their values, without copying the store:
//
//	for key, value := range kv.Scan("user/") { … }
//
// It reads the keys in chunks of 256, each under the store's lock, and runs
// the loop body without it (the body may use the store). So each key is
// visited at most once, in order, with its value at the moment its chunk
// was read; a key set or deleted while the loop runs is seen or not
// depending on whether its chunk was read after or before. For a snapshot
// of one moment use List.
func (s *Store) Scan(prefix string) iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		for e := range scan(s, prefix, func(_ ormap.View, k string, e ormap.Entry) KeyValue { return KeyValue{k, e.Value} }) {
			if !yield(e.Key, e.Value) {
				return
			}
		}
	}
}

// ScanEntries is Scan with each value's metadata.
func (s *Store) ScanEntries(prefix string) iter.Seq2[string, Entry] {
	return func(yield func(string, Entry) bool) {
		for e := range scan(s, prefix, func(v ormap.View, k string, e ormap.Entry) Entry { return s.entry(k, e, v.Siblings(k)) }) {
			if !yield(e.Key, e) {
				return
			}
		}
	}
}

// scan yields conv of the keys under prefix, read in chunks of scanChunk
// under the lock, each chunk resuming after the last key of the previous.
func scan[T interface{ key() string }](s *Store, prefix string, conv func(ormap.View, string, ormap.Entry) T) iter.Seq[T] {
	return func(yield func(T) bool) {
		from := prefix
		buf := make([]T, 0, scanChunk)
		for {
			buf = buf[:0]
			s.mu.Lock()
			v := s.viewLocked()
			for k, e := range v.ScanFrom(prefix, from) {
				buf = append(buf, conv(v, k, e))
				if len(buf) == scanChunk {
					break
				}
			}
			s.mu.Unlock()
			for _, x := range buf {
				if !yield(x) {
					return
				}
			}
			if len(buf) < scanChunk {
				return
			}
			from = buf[len(buf)-1].key() + "\x00" // the least key after it
		}
	}
}

func (kv KeyValue) key() string { return kv.Key }

func (e Entry) key() string { return e.Key }

// peerText is the text form of a transport's peer id: on a node, peer.ID's
// String (the transport's ids are the ids' bytes); elsewhere the id itself.
func (s *Store) peerText(p string) string {
	if s.node != nil && p != "" {
		return peer.ID(p).String()
	}
	return p
}
