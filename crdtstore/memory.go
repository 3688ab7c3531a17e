package crdtstore

import "time"

// Returning the memory of a bulk load (see "Memory" in the package
// documentation). A store that receives many bytes at once — a sync that
// fills a new replica, a writer's burst of deltas — makes the Go heap grow
// to about twice what the data needs (the garbage collector lets the heap
// reach GOGC percent more than the live data before it collects), and the
// runtime keeps those pages: an idle holder of 100,000 keys of 100 bytes
// held 36 MB of private memory for 21 MB of live heap. Once such a load
// has ended (nothing more received for releaseQuiet), the store gives the
// freed pages back to the OS with one forced collection
// (runtime/debug.FreeOSMemory), as package pnet does after Argon2id.
const (
	// releaseMin is the bytes to receive since the last release before the
	// next one is considered: smaller loads are left to the runtime.
	releaseMin = 4 << 20
	// releaseShare: and at least the store's size (Stats.Bytes) divided by
	// it, so that a large store does not collect its whole heap for a
	// small share of new data.
	releaseShare = 4
	// releaseQuiet is how long nothing must be received before a release.
	releaseQuiet = time.Second
)

// noteReceived counts n bytes received from peers (a delta, a sync's
// reads) and wakes the release loop when a release may be due.
func (s *Store) noteReceived(n int) {
	if s.opts.KeepFreedMemory || n <= 0 {
		return
	}
	if s.received.Add(uint64(n))-s.releasedAt.Load() >= releaseMin {
		select {
		case s.relKick <- struct{}{}:
		default:
		}
	}
}

// releaseLoop returns the memory of a bulk load to the OS once it has
// ended: woken by noteReceived, it waits until nothing has been received
// for releaseQuiet and no sync runs, then releases if at least releaseMin
// bytes and a releaseShare of the store arrived since the last release.
// Idle, it sleeps without a timer.
func (s *Store) releaseLoop() {
	t := time.NewTimer(releaseQuiet)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.relKick:
		}
		for quiet := false; !quiet; {
			r := s.received.Load()
			s.mu.Lock()
			wait := s.releaseQuiet
			s.mu.Unlock()
			t.Reset(wait)
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
			}
			s.mu.Lock()
			quiet = s.running == 0 && s.received.Load() == r
			s.mu.Unlock()
		}
		r := s.received.Load()
		s.mu.Lock()
		due := r-s.releasedAt.Load() >= max(releaseMin, uint64(s.m.Bytes()/releaseShare))
		free := s.freeOSMemory
		s.mu.Unlock()
		if due {
			s.releasedAt.Store(r)
			free()
		}
	}
}
