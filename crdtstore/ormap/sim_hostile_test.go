package ormap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// Hostile replicas in the simulator (issue 11, attacks 1-3): members that
// publish deltas claiming other replicas' dots (with their own origin, with
// a victim's, with none), deltas carrying a victim's entries, floods of new
// replica ids, and large deltas that never become ready. Honest receivers
// check each delta as package crdtstore does (Delta.CheckOwn, origin bound
// to the sender) and join it on the sender's account (JoinFrom), within
// hostileBounds. Hostile replicas do not sync: sync replies are trusted.

// hostileBounds are small, so that the hostile floods hit them.
var hostileBounds = Bounds{MaxPending: 64, MaxPendingBytes: 48 << 10, MaxSourceBytes: 16 << 10}

type simHostile struct {
	id  ReplicaID
	ctr uint64
}

func (s *sim) startHostile() {
	if s.cfg.Hostile == 0 {
		return
	}
	for _, r := range s.rs {
		r.m.SetBounds(hostileBounds)
	}
	for i := range s.cfg.Hostile {
		s.hostile = append(s.hostile, &simHostile{id: ReplicaID("evil-" + strconv.Itoa(i))})
	}
}

// replicaOf returns the replica id of sender i, honest or hostile.
func (s *sim) replicaOf(i int) ReplicaID {
	if i < len(s.rs) {
		return s.rs[i].m.Replica()
	}
	return s.hostile[i-len(s.rs)].id
}

// attack makes a random hostile replica publish one hostile delta.
func (s *sim) attack() {
	hi := s.rnd.intn(len(s.hostile))
	h := s.hostile[hi]
	victim := s.rs[s.rnd.intn(len(s.rs))].m
	v := victim.Replica()
	h.ctr++
	self := Dot{h.id, h.ctr}
	fresh := func(n uint64) ReplicaID { return ReplicaID(fmt.Sprintf("%s-new-%d-%d", h.id, h.ctr, n)) }
	all := Context{rows: []ctxRow{{v, ivs{{1, maxCounter}}}}}
	var d Delta
	switch s.rnd.intn(7) {
	case 0: // attack 1 with its own origin: waits forever
		d = Delta{origin: h.id, ctx: contextOf([]Dot{self}).Union(all)}
	case 1: // attack 1 as filed, impersonating the victim
		d = Delta{origin: v, ctx: all}
	case 2: // attack 1 with no origin
		d = Delta{ctx: all}
	case 3: // claims the victim's next dots: ready once they come, harmless then
		near := Context{rows: []ctxRow{{v, ivs{{1, victim.ctx[0].max() + 3}}}}}
		d = Delta{origin: h.id, ctx: contextOf([]Dot{self}).Union(near)}
	case 4: // a victim's entry, overwriting it everywhere
		c := victim.ctx[0].max() + 1
		d = Delta{origin: h.id, ctx: contextOf([]Dot{self, {v, c}}),
			groups: []group{{key: "k0", ents: []dentry{{rep: v, ctr: c, val: "forged", ts: Timestamp{Wall: 1 << 60}}}}}}
	case 5: // attack 2: a flood of new replica ids
		dots := []Dot{self}
		for n := range uint64(20) {
			dots = append(dots, Dot{fresh(n), 1})
		}
		d = Delta{origin: h.id, ctx: contextOf(dots)}
	default: // attack 3: large, never ready
		dep := Dot{fresh(0), 1}
		d = Delta{origin: h.id, ctx: contextOf([]Dot{self, dep}), deps: contextOf([]Dot{dep}),
			groups: []group{{key: "k1", ents: []dentry{{rep: h.id, ctr: h.ctr, val: strings.Repeat("x", 4096)}}}}}
	}
	s.rep.Attacks++
	frame := EncodeDelta(d)
	from := len(s.rs) + hi
	for j := range s.rs {
		if s.rnd.chance(s.cfg.Drop) {
			continue
		}
		s.send(simMsg{from: from, to: j, kind: msgDelta, frame: frame})
		if s.rnd.chance(s.cfg.Dup) {
			s.send(simMsg{from: from, to: j, kind: msgDelta, frame: frame})
		}
	}
}

// receive joins a published delta at msg.to. With hostile replicas in the
// run it first checks the delta as the wrapper does: refused (ok false,
// counted) unless it is its origin's own writes and its origin is the
// sender; a Join error on a hostile delta is a refusal too.
func (s *sim) receive(msg simMsg) (d Delta, ok bool, err error) {
	if s.cfg.Hostile > 0 && !s.cfg.NoGuard {
		if d, err = DecodeDelta(msg.frame, Limits{}); err != nil {
			return d, false, fmt.Errorf("decoding a published frame: %w", err)
		}
		if d.CheckOwn() != nil || d.Origin() != s.replicaOf(msg.from) {
			s.rep.Refused++
			return d, false, nil
		}
	}
	d, err = s.joinFrom(msg.to, msg.frame, strconv.Itoa(msg.from))
	if err != nil && msg.from >= len(s.rs) {
		s.rep.Refused++
		return d, false, nil
	}
	return d, err == nil, err
}

// noteHeld records the most bytes a replica holds back.
func (s *sim) noteHeld() {
	for _, r := range s.rs {
		s.rep.MaxHeld = max(s.rep.MaxHeld, r.m.PendingStats().Bytes)
	}
}

// honestHeld counts the deltas of honest senders m still holds; it adds up
// the hostile ones held and the drops in the report.
func (s *sim) honestHeld(m *Map) int {
	n := 0
	for _, p := range m.pending {
		if i, _ := strconv.Atoi(p.src); i < len(s.rs) {
			n++
		} else {
			s.rep.HostileHeld++
		}
	}
	s.rep.HeldDropped += int(m.PendingStats().Dropped)
	return n
}

// checkHostile: no honest replica knows a replica id of the floods (those
// deltas never become ready). A hostile replica's own id may be known: a
// delta claiming only dots the receiver has seen joins, harmlessly; its
// entries would fail check (nobody wrote them).
func (s *sim) checkHostile() error {
	for _, r := range s.rs {
		for _, id := range r.m.reps {
			if strings.Contains(string(id), "-new-") {
				return fmt.Errorf("replica %s joined a flood of replica ids (%q)", r.m.Replica(), id)
			}
		}
	}
	return nil
}

func hostileSimConfig(seed uint64) simConfig {
	cfg := defaultSimConfig(seed)
	cfg.Hostile, cfg.HostileRate = 2, 0.3
	return cfg
}

// TestSimulationHostile: with hostile replicas publishing into the lossy
// network, every honest write is present everywhere after the heal, none
// lost or resurrected; no hostile dot is joined; what the replicas held
// back stayed within the bounds (checked every 16 steps by verify).
func TestSimulationHostile(t *testing.T) {
	var total simReport
	for seed := uint64(1); seed <= uint64(cases(200)); seed++ {
		rep, err := simulate(hostileSimConfig(seed))
		if err != nil {
			t.Fatal(err)
		}
		total.Attacks += rep.Attacks
		total.Refused += rep.Refused
		total.Sets += rep.Sets
		total.Deletes += rep.Deletes
		total.MaxHeld = max(total.MaxHeld, rep.MaxHeld)
		total.HeldDropped += rep.HeldDropped
		total.HostileHeld += rep.HostileHeld
		total.Gaps += rep.Gaps
	}
	if total.Attacks == 0 || total.Refused == 0 || total.HeldDropped == 0 || total.HostileHeld == 0 {
		t.Fatalf("the hostile replicas did not exercise the guard: %+v", total)
	}
	if total.MaxHeld > hostileBounds.MaxPendingBytes {
		t.Fatalf("held %d bytes, bound %d", total.MaxHeld, hostileBounds.MaxPendingBytes)
	}
	t.Logf("attacks %d, refused %d, held at most %d bytes (bound %d), dropped %d, hostile still held %d; honest: %d sets, %d deletes, %d gaps",
		total.Attacks, total.Refused, total.MaxHeld, hostileBounds.MaxPendingBytes, total.HeldDropped, total.HostileHeld, total.Sets, total.Deletes, total.Gaps)
}

// TestSimulationCatchesImpersonation: without the wrapper's checks (origin
// bound to the sender, own writes only) a hostile replica's deltas, joined
// as its victims', erase or forge their writes, or claim their future dots
// (which then come back to them in sync replies, refused): the simulation
// must notice.
func TestSimulationCatchesImpersonation(t *testing.T) {
	caught := 0
	n := max(cases(30), 10)
	for seed := uint64(1); seed <= uint64(n); seed++ {
		cfg := hostileSimConfig(seed)
		cfg.NoGuard = true
		_, err := simulate(cfg)
		if err == nil {
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "lost") && !strings.Contains(msg, "nobody wrote") && !strings.Contains(msg, "differ") && !errors.Is(err, ErrForeignDot) {
			t.Fatalf("seed %d: unexpected failure: %v", seed, err)
		}
		caught++
	}
	if caught < n*3/4 {
		t.Fatalf("impersonation caught in %d runs of %d", caught, n)
	}
}
