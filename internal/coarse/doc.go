// Package coarse lines up a process's slow periodic timers on one grid of
// whole seconds, so that an idle process wakes once for all the work due
// within the same second instead of once for each timer.
//
// Every wake-up of an idle Go process costs far more than the work it
// wakes for: the runtime's sysmon thread and a second thread looking for
// work wake with it, and on a virtual machine waking from idle is dear (on
// issue 16's VM, about half a millisecond of CPU each time). An idle node
// has half a dozen slow periodic timers (the membership sweep, peer
// exchange, a peered node's mDNS questions, the forgetting of candidates,
// anti-entropy, announcement refreshes and catch-ups); with phases of their
// own, each fired alone. (GossipSub's heartbeat keeps its own phase: its
// ticker starts when its event loop first takes it, which a busy start
// delays by any amount.)
//
// Delay rounds a slow timer's delay up to the next grid instant, at most a
// Grid later than asked. Delays under MinDelay are left as they are: they
// are the timers whose timing matters (retries, debounces, flow control).
// The grid's origin is the moment the process started, so
// processes started apart keep their timers apart, and a jittered period
// stays jittered from one node to the next.
package coarse
