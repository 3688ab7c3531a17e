package participant

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeMember records what Serve asks of it; Publish hands every message
// to the subscriber's deliver, as a system of one publisher and one
// subscriber in one process would.
type fakeMember struct {
	Base
	mu      sync.Mutex
	deliver func([]byte)
	sent    int
	closed  int
}

func (f *fakeMember) Subscribe(_ context.Context, deliver func([]byte)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deliver = deliver
	return nil
}

func (f *fakeMember) Publish(_ context.Context, data []byte) error {
	f.mu.Lock()
	d := f.deliver
	f.sent++
	f.mu.Unlock()
	if d != nil {
		d(data)
	}
	return nil
}

func (f *fakeMember) Drops() map[string]uint64 { return map[string]uint64{"Dropped": 7} }

func (f *fakeMember) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

// client drives Serve over pipes, as the bench does over the process's
// stdin and stdout.
type client struct {
	t   *testing.T
	in  *io.PipeWriter
	out *bufio.Reader
}

func (c *client) call(cmd Command) Reply {
	c.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("%s: write: %v", cmd.Op, err)
	}
	return c.read(cmd.Op)
}

func (c *client) read(op string) Reply {
	c.t.Helper()
	line, err := c.out.ReadBytes('\n')
	if err != nil {
		c.t.Fatalf("%s: read: %v", op, err)
	}
	var r Reply
	if err := json.Unmarshal(line, &r); err != nil {
		c.t.Fatalf("%s: reply %q: %v", op, line, err)
	}
	return r
}

func startServe(t *testing.T, m Member) (*client, <-chan error) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Serve(context.Background(), inR, outW, m)
		outW.Close()
		done <- err
	}()
	t.Cleanup(func() { inW.Close() })
	return &client{t: t, in: inW, out: bufio.NewReader(outR)}, done
}

// TestServe runs every command of the protocol once, in the order the
// bench uses them, on a member whose publisher and subscriber are one.
func TestServe(t *testing.T) {
	m := &fakeMember{}
	c, done := startServe(t, m)

	if r := c.call(Command{Op: "addr"}); r.Err != ErrUnsupported.Error() {
		t.Errorf("addr on a member without one: err %q, want %q", r.Err, ErrUnsupported)
	}
	if r := c.call(Command{Op: "subscribe"}); r.Err != "" {
		t.Fatalf("subscribe: %s", r.Err)
	}
	if r := c.call(Command{Op: "wait_subscribers", N: 1}); r.Err != "" {
		t.Fatalf("wait_subscribers: %s", r.Err)
	}

	// Trial 3 keeps the latencies of its first 10 messages; a message of
	// trial 2 still arriving is not counted.
	if r := c.call(Command{Op: "begin", Trial: 3, Keep: 10}); r.Err != "" {
		t.Fatal(r.Err)
	}
	stale := make([]byte, HeaderLen)
	PutHeader(stale, 2, 0, Now())
	_ = m.Publish(context.Background(), stale)

	r := c.call(Command{Op: "publish", Trial: 3, Size: 256, Count: 20, Rate: 10_000, LimitNS: int64(time.Second)})
	if r.Err != "" || r.Pub == nil {
		t.Fatalf("publish: %+v", r)
	}
	if p := r.Pub; p.Sent != 20 || p.Errors != 0 || p.EndNS <= p.StartNS || p.StartNS <= 0 {
		t.Errorf("publish report %+v: want 20 sent, no error, start > 0 and before end", p)
	}
	// 20 messages at 10,000/s take at least 1.9 ms by the clock.
	if span := r.Pub.EndNS - r.Pub.StartNS; span < int64(1900*time.Microsecond) {
		t.Errorf("20 messages at 10,000/s published in %v: not paced", time.Duration(span))
	}
	cnt := c.call(Command{Op: "count"})
	if cnt.Count != 20 || cnt.All != 21 || cnt.Last < r.Pub.StartNS || cnt.Last > r.Pub.EndNS {
		t.Errorf("count %+v: want 20 of trial 3, 21 in all, last within [%d, %d]", cnt, r.Pub.StartNS, r.Pub.EndNS)
	}
	lat := c.call(Command{Op: "latencies"}).Lat
	if len(lat) != 10 {
		t.Errorf("%d latencies, want the first 10", len(lat))
	}
	if slices.ContainsFunc(lat, func(v int64) bool { return v < 0 || v > int64(time.Second) }) {
		t.Errorf("latencies %v: want each in [0, 1 s]", lat)
	}

	if r := c.call(Command{Op: "drops"}); r.Drops["Dropped"] != 7 {
		t.Errorf("drops %v, want Dropped 7", r.Drops)
	}
	if r := c.call(Command{Op: "publish", Size: 4, Count: 1}); r.Err == "" {
		t.Errorf("publish of 4 B (shorter than the header) succeeded")
	}
	if r := c.call(Command{Op: "nonsense"}); r.Err == "" {
		t.Errorf("an unknown op succeeded")
	}
	if _, err := c.in.Write([]byte("{not json\n")); err != nil {
		t.Fatal(err)
	}
	if r := c.read("garbage"); r.Err == "" {
		t.Errorf("a malformed line succeeded")
	}
	if r := c.call(Command{Op: "quit"}); r.Err != "" {
		t.Errorf("quit: %s", r.Err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if m.closed != 1 {
		t.Errorf("member closed %d times, want 1", m.closed)
	}
}

// TestServeEOF checks that the end of stdin (the bench gone) closes the
// member too.
func TestServeEOF(t *testing.T) {
	m := &fakeMember{}
	c, done := startServe(t, m)
	c.in.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if m.closed != 1 {
		t.Errorf("member closed %d times, want 1", m.closed)
	}
}

// TestNow checks that Now is CLOCK_MONOTONIC: another process's reading
// of that clock, not this process's own origin.
func TestNow(t *testing.T) {
	for range 5 {
		a := Now()
		m, err := monotonic()
		if err != nil {
			t.Skip("no CLOCK_MONOTONIC:", err)
		}
		b := Now()
		if m < a-int64(time.Millisecond) || m > b+int64(time.Millisecond) {
			t.Fatalf("CLOCK_MONOTONIC %d outside Now's readings [%d, %d] ± 1 ms", m, a, b)
		}
	}
}

func TestHeader(t *testing.T) {
	b := make([]byte, HeaderLen+3)
	PutHeader(b, 9, 1<<40, -5)
	if id, seq, sent, ok := ReadHeader(b); !ok || id != 9 || seq != 1<<40 || sent != -5 {
		t.Errorf("read back %d %d %d %v", id, seq, sent, ok)
	}
	if _, _, _, ok := ReadHeader(b[:HeaderLen-1]); ok {
		t.Errorf("a short message has a header")
	}
}
