package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// The -procs mode runs every participant as its own OS process: the bench
// binary re-executed as `bench participant -system S -role R ...`
// (participant.go), driven by the parent (procs.go) over the child's stdin
// and stdout, one JSON object per line each way. Every command gets exactly
// one reply, in order; a reply with Err set is a failed command, the
// participant carries on. Commands:
//
//	addr                   the participant's address for peers (Reflect; a server: its URL)
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
//	drops                  the system's drop counters (Drops)
//	quit                   close the participant; the reply is the last line
//
// Times are CLOCK_MONOTONIC nanoseconds (clock.go), one clock for every
// process of the machine: a subscriber's receive time minus the send time
// in the message is its latency, and its last receive minus the
// publisher's first send its delivery span.

// command is one line from the parent.
type command struct {
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

// reply is one line from the participant.
type reply struct {
	Err   string     `json:"err,omitempty"`
	Addr  string     `json:"addr,omitempty"`
	Count int64      `json:"count,omitempty"`
	Last  int64      `json:"last,omitempty"`
	All   uint64     `json:"all,omitempty"`
	Lat   []int64    `json:"lat,omitempty"`
	Pub   *pubReport `json:"pub,omitempty"`
	Drops *Drops     `json:"drops,omitempty"`
}

// pubReport is pubResult with its times, which pubResult keeps out of
// results.json.
type pubReport struct {
	pubResult
	StartNS int64 `json:"start_ns"`
	EndNS   int64 `json:"end_ns"`
}

// member is one participant of a system, in its own process. Operations a
// system or role does not have return errUnsupported.
type member interface {
	Addr() (string, error)
	Connect(ctx context.Context, addrs []string) error
	WaitPeers(ctx context.Context, n int) error
	// Subscribe starts delivering every message of the topic to deliver,
	// from the system's goroutines; it returns once the system has the
	// subscription (a publish from now on reaches it).
	Subscribe(ctx context.Context, deliver func(data []byte)) error
	WaitSubscribers(ctx context.Context, n int) error
	// Publish is PubSubCluster.Publish.
	Publish(ctx context.Context, data []byte) error
	Drops() Drops
	Close() error
}

// errUnsupported is a command the participant's system or role lacks.
var errUnsupported = errors.New("not supported by this participant")

// errProtocol is a malformed or unknown command.
var errProtocol = errors.New("participant protocol")

// opWait bounds the waiting commands (wait_peers, subscribe,
// wait_subscribers).
const opWait = 60 * time.Second

// serve answers the parent's commands on in with replies on out until quit,
// the end of in, or ctx; it closes m in any case. The recorder of a
// subscriber lives here: one subscriber, participant 1 of it.
func serve(ctx context.Context, in io.Reader, out io.Writer, m member) (err error) {
	defer func() {
		if cerr := m.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	rec := newRecorder(1)
	var cur *trial
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var c command
		var r reply
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			r.Err = fmt.Errorf("%w: %w", errProtocol, err).Error()
			if err := enc.Encode(r); err != nil {
				return err
			}
			continue
		}
		if c.Op == "quit" {
			if cerr := m.Close(); cerr != nil {
				r.Err = cerr.Error()
			}
			m = closedMember{}
			return enc.Encode(r)
		}
		if err := answer(ctx, m, rec, &cur, c, &r); err != nil {
			r.Err = err.Error()
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return sc.Err()
}

// answer runs one command other than quit.
func answer(ctx context.Context, m member, rec *recorder, cur **trial, c command, r *reply) error {
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
		return m.Subscribe(wctx, func(data []byte) { rec.deliver(1, data) })
	case "wait_subscribers":
		return m.WaitSubscribers(wctx, c.N)
	case "begin":
		*cur = rec.beginID(c.Trial, c.Keep)
	case "count":
		r.All = rec.all.Load()
		if t := *cur; t != nil {
			r.Count, r.Last = t.sub[0].count.Load(), t.sub[0].last.Load()
		}
	case "latencies":
		if t := *cur; t != nil {
			r.Lat = t.latencies()
		}
	case "publish":
		if c.Size < headerLen || c.Count < 0 {
			return fmt.Errorf("%w: publish of %d × %d B", errProtocol, c.Count, c.Size)
		}
		pr := publish(ctx, memberCluster{m}, &trial{id: c.Trial}, load{size: c.Size, count: c.Count,
			rate: c.Rate, limit: time.Duration(c.LimitNS)})
		r.Pub = &pubReport{pubResult: pr, StartNS: pr.Start, EndNS: pr.End}
	case "drops":
		d := m.Drops()
		r.Drops = &d
	default:
		return fmt.Errorf("%w: unknown op %q", errProtocol, c.Op)
	}
	return nil
}

// memberCluster lets publish (publish.go) drive a member.
type memberCluster struct{ m member }

func (c memberCluster) Publish(ctx context.Context, data []byte) error { return c.m.Publish(ctx, data) }
func (c memberCluster) Drops() Drops                                   { return c.m.Drops() }
func (memberCluster) ServerPIDs() []int                                { return nil }
func (memberCluster) Close() error                                     { return nil }

// baseMember answers errUnsupported to everything; members embed it and
// override what they have.
type baseMember struct{}

func (baseMember) Addr() (string, error)                         { return "", errUnsupported }
func (baseMember) Connect(context.Context, []string) error       { return errUnsupported }
func (baseMember) WaitPeers(context.Context, int) error          { return errUnsupported }
func (baseMember) Subscribe(context.Context, func([]byte)) error { return errUnsupported }
func (baseMember) WaitSubscribers(context.Context, int) error    { return nil }
func (baseMember) Publish(context.Context, []byte) error         { return errUnsupported }
func (baseMember) Drops() Drops                                  { return newDrops() }
func (baseMember) Close() error                                  { return nil }

// closedMember is what serve holds after quit closed the real one.
type closedMember struct{ baseMember }
