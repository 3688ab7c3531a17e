package crdtstore

import "github.com/reflectmesh/reflect/crdtstore/ormap"

// Sync protocol SyncV1, spoken with peers of earlier releases, on a stream
// opened by A to B:
//
//	A → B  context C_A
//	B → A  "equal"                          if C_B = C_A: done, one round trip
//	B → A  delta B.Diff(C_A), context C_B   otherwise
//	A → B  "equal" or delta A.Diff(C_B)     after A joined B's delta
//
// Each delta is one frame of at most Options.MaxSyncFrame: a store larger
// than that cannot reach a new replica this way (SyncV2 chunks it).

// initiateV1 runs the initiator's side of SyncV1.
func (x *exchange) initiateV1() error {
	s := x.s
	if err := x.request(); err != nil {
		return err
	}
	d, equal, done, err := x.readDelta()
	defer done() // the frame stays accounted until joined
	if err != nil || equal {
		return err
	}
	theirs, err := x.readContext()
	if err != nil {
		return err
	}
	if err := x.joinReply(d); err != nil {
		return err
	}
	done()
	s.mu.Lock()
	back := s.m.Diff(theirs)
	s.mu.Unlock()
	if back.IsEmpty() {
		return x.write(frameEqual, nil)
	}
	return x.write(frameDelta, ormap.EncodeDelta(back))
}

// serveV1 runs the responder's side of SyncV1. The reply is charged to
// p's budget; overBudget refuses every request but one this replica is in
// sync with.
func (x *exchange) serveV1(overBudget bool) error {
	s := x.s
	theirs, err := x.readContext()
	if err != nil {
		return err
	}
	s.mu.Lock()
	mine := s.m.Context()
	equal := mine.Equal(theirs)
	refuse := overBudget && !mine.SubsetOf(theirs)
	var d ormap.Delta
	if !equal && !refuse {
		d = s.m.Diff(theirs)
	}
	s.mu.Unlock()
	switch {
	case equal:
		return x.write(frameEqual, nil)
	case refuse:
		return x.refuseOverBudget()
	}
	delta, ctx := ormap.EncodeDelta(d), ormap.EncodeContext(mine)
	s.chargeServe(x.p, len(delta)+len(ctx))
	if err := x.write(frameDelta, delta); err != nil {
		return err
	}
	if err := x.write(frameContext, ctx); err != nil {
		return err
	}
	back, equal, done, err := x.readAnswer()
	defer done()
	if err != nil || equal {
		return err
	}
	return x.joinReply(back)
}
