package participant

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// The bench drives a participant over its stdin and stdout, one JSON
// object per line each way. Every Command gets exactly one Reply, in
// order; a Reply with Err set is a failed command, and the participant
// carries on. Ops:
//
//	addr                   the participant's address for peers (Reflect), a server's URL
//	connect Addrs          dial these peers (Reflect)
//	wait_peers N           wait until N peers are connected (Reflect)
//	subscribe              subscribe to the topic; the reply comes once the system has it
//	wait_subscribers N     publisher: wait until N subscribers are known
//	begin Trial Keep       subscriber: count deliveries of trial Trial from now on,
//	                       keeping the latencies of seq < Keep
//	count                  subscriber: Count and Last of the trial, All deliveries ever
//	latencies              subscriber: the trial's recorded latencies (ns)
//	publish Trial Size Count Rate LimitNS
//	                       publisher: publish (publish.go); Pub says what it sent
//	drops                  the system's drop counters
//	kv_ready N             store participants (-kv, members with KV): ready with N others
//	kv_fill Count Size     write Count keys of Size-byte values, unpaced, and flush;
//	                       StartNS and DoneNS bracket it
//	kv_keys                Count is the keys the participant holds (-1: none locally)
//	kv_join Addrs Count    connect to Addrs (Reflect), load the store until Count keys
//	                       are held; UpNS is when the participant was up (Main), DoneNS now
//	quit                   close the participant; its reply is the last line
//
// Times are CLOCK_MONOTONIC nanoseconds (clock.go).

// Command is one line from the bench.
type Command struct {
	Op      string   `json:"op"`
	Addrs   []string `json:"addrs,omitempty"`
	N       int      `json:"n,omitempty"`
	Trial   uint32   `json:"trial,omitempty"`
	Keep    int      `json:"keep,omitempty"`
	Size    int      `json:"size,omitempty"`
	Count   int      `json:"count,omitempty"`
	Rate    float64  `json:"rate,omitempty"`
	LimitNS int64    `json:"limit_ns,omitempty"`
}

// Reply is one line from the participant.
type Reply struct {
	Err   string            `json:"err,omitempty"`
	Addr  string            `json:"addr,omitempty"`
	Count int64             `json:"count,omitempty"`
	Last  int64             `json:"last,omitempty"`
	All   uint64            `json:"all,omitempty"`
	Lat   []int64           `json:"lat,omitempty"`
	Pub   *PubReport        `json:"pub,omitempty"`
	Drops map[string]uint64 `json:"drops,omitempty"`
	// Store commands' times, CLOCK_MONOTONIC.
	StartNS int64 `json:"start_ns,omitempty"`
	UpNS    int64 `json:"up_ns,omitempty"`
	DoneNS  int64 `json:"done_ns,omitempty"`
}

// Member is one participant of a system. Operations its system or role
// does not have return ErrUnsupported (embed Base).
type Member interface {
	Addr() (string, error)
	Connect(ctx context.Context, addrs []string) error
	WaitPeers(ctx context.Context, n int) error
	// Subscribe starts delivering every message of the topic to deliver,
	// from the system's goroutines; it returns once the system has the
	// subscription (a message published from now on reaches it).
	Subscribe(ctx context.Context, deliver func(data []byte)) error
	WaitSubscribers(ctx context.Context, n int) error
	// Publish sends one message; data is only valid during the call.
	// Blocking is the system's backpressure.
	Publish(ctx context.Context, data []byte) error
	// Drops are the drop events the system surfaced so far, cumulative,
	// by name.
	Drops() map[string]uint64
	Close() error
}

// KV is a Member with a replicated key-value store (-kv): Reflect's
// crdtstore, NATS JetStream KV.
type KV interface {
	// KVReady waits until the store can replicate to n other
	// participants.
	KVReady(ctx context.Context, n int) error
	// KVFill writes keys 0..count−1 (StoreKey) with size-byte values and
	// waits until they left the participant (acknowledged, or published).
	KVFill(ctx context.Context, count, size int) error
	// KVKeys is the keys held in this process, or -1 if it holds none.
	KVKeys() int
	// KVJoin loads the whole store (after connecting to addrs, for a
	// peer-to-peer system) and returns once count keys are held here.
	KVJoin(ctx context.Context, addrs []string, count int) error
}

// StoreKey is the name of key k (as the bench's in-process store
// scenarios).
func StoreKey(k int) string { return fmt.Sprintf("key/%06d", k) }

// StoreValue fills v with the value of key k: distinct bytes per key.
func StoreValue(v []byte, k int) []byte {
	for i := range v {
		v[i] = byte(k + i)
	}
	return v
}

// upNS is when Main had the member open.
var upNS int64

// Topic is the one topic (subject, channel) every participant uses.
const Topic = "bench"

var (
	// ErrUnsupported is a command the participant's system or role lacks.
	ErrUnsupported = errors.New("not supported by this participant")
	// ErrProtocol is a malformed or unknown command.
	ErrProtocol = errors.New("participant protocol")
)

// opWait bounds the waiting commands (connect, wait_peers, subscribe,
// wait_subscribers).
const opWait = 60 * time.Second

// Serve answers the commands on in with replies on out until quit, the
// end of in, or ctx; it closes m in any case.
func Serve(ctx context.Context, in io.Reader, out io.Writer, m Member) (err error) {
	closed := false
	defer func() {
		if !closed {
			if cerr := m.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	var rec recorder
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var c Command
		var r Reply
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			r.Err = fmt.Errorf("%w: %w", ErrProtocol, err).Error()
		} else if c.Op == "quit" {
			closed = true
			if cerr := m.Close(); cerr != nil {
				r.Err = cerr.Error()
			}
			return enc.Encode(r)
		} else if err := answer(ctx, m, &rec, c, &r); err != nil {
			r.Err = err.Error()
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return sc.Err()
}

// answer runs one command other than quit.
func answer(ctx context.Context, m Member, rec *recorder, c Command, r *Reply) error {
	wctx, cancel := context.WithTimeout(ctx, opWait)
	defer cancel()
	switch c.Op {
	case "addr":
		a, err := m.Addr()
		r.Addr = a
		return err
	case "connect":
		return m.Connect(wctx, c.Addrs)
	case "wait_peers":
		return m.WaitPeers(wctx, c.N)
	case "subscribe":
		return m.Subscribe(wctx, rec.deliver)
	case "wait_subscribers":
		return m.WaitSubscribers(wctx, c.N)
	case "begin":
		rec.begin(c.Trial, c.Keep)
	case "count":
		r.All = rec.all.Load()
		if t := rec.cur.Load(); t != nil {
			r.Count, r.Last = t.count.Load(), t.last.Load()
		}
	case "latencies":
		if t := rec.cur.Load(); t != nil {
			r.Lat = t.latencies()
		}
	case "publish":
		if c.Size < HeaderLen || c.Count < 0 {
			return fmt.Errorf("%w: publish of %d × %d B", ErrProtocol, c.Count, c.Size)
		}
		pr := publish(ctx, m, c.Trial, c.Size, c.Count, c.Rate, time.Duration(c.LimitNS))
		r.Pub = &pr
	case "drops":
		r.Drops = m.Drops()
	case "kv_ready", "kv_fill", "kv_keys", "kv_join":
		kv, ok := m.(KV)
		if !ok {
			return ErrUnsupported
		}
		return answerKV(ctx, kv, c, r)
	default:
		return fmt.Errorf("%w: unknown op %q", ErrProtocol, c.Op)
	}
	return nil
}

// answerKV runs a store command. Filling and joining may take long: they
// are bounded by ctx only.
func answerKV(ctx context.Context, kv KV, c Command, r *Reply) error {
	switch c.Op {
	case "kv_ready":
		wctx, cancel := context.WithTimeout(ctx, opWait)
		defer cancel()
		return kv.KVReady(wctx, c.N)
	case "kv_fill":
		r.StartNS = Now()
		err := kv.KVFill(ctx, c.Count, c.Size)
		r.DoneNS = Now()
		return err
	case "kv_keys":
		r.Count = int64(kv.KVKeys())
	case "kv_join":
		err := kv.KVJoin(ctx, c.Addrs, c.Count)
		r.UpNS, r.DoneNS = upNS, Now()
		return err
	}
	return nil
}

// Base answers ErrUnsupported to what a member does not have; members
// embed it and override the rest.
type Base struct{}

func (Base) Addr() (string, error)                         { return "", ErrUnsupported }
func (Base) Connect(context.Context, []string) error       { return ErrUnsupported }
func (Base) WaitPeers(context.Context, int) error          { return ErrUnsupported }
func (Base) Subscribe(context.Context, func([]byte)) error { return ErrUnsupported }
func (Base) WaitSubscribers(context.Context, int) error    { return nil }
func (Base) Publish(context.Context, []byte) error         { return ErrUnsupported }
func (Base) Drops() map[string]uint64                      { return nil }
func (Base) Close() error                                  { return nil }
