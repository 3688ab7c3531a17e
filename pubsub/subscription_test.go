package pubsub

import "testing"

// After halt, offer takes nothing and says so (its callers then answer
// "no responder" or count the message).
func TestOfferAfterHalt(t *testing.T) {
	ps := newMesh(t, 1, Config{})
	tp, err := ps[0].topic("t", false)
	if err != nil {
		t.Fatal(err)
	}
	s := newSubscription(tp, func(Message) {}, 10, 1<<20)
	if !s.offer(Message{Data: []byte("a")}) {
		t.Fatal("a live subscription refused a message")
	}
	s.halt()
	if s.offer(Message{Data: []byte("b")}) {
		t.Fatal("a halted subscription took a message")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.halted || len(s.q)-s.head != 1 {
		t.Fatalf("halted %v, %d queued", s.halted, len(s.q)-s.head)
	}
}
