package testutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultTimeout is a new Demo's Timeout.
const DefaultTimeout = 10 * time.Second

// Errors of the Demo methods, wrapped with the demo's name and the command.
var (
	// ErrReply: the demo answered the command with an error reply. The
	// method returns the reply too.
	ErrReply = errors.New("testutil: error reply")
	// ErrExited: the demo's process ended before the awaited line came, or
	// while commands were written to it.
	ErrExited = errors.New("testutil: demo exited")
	// ErrOutOfStep: the next reply does not answer the command (it is of
	// another kind, or names another command): a reply was left unread, or
	// the demo broke its one-reply-per-command promise.
	ErrOutOfStep = errors.New("testutil: reply out of step with the commands")
)

// A Process is a running reflect-demo whose standard output a Demo reads:
// *netlab.Proc is one, and so is anything that pairs Lines with an
// exec.Cmd.
type Process interface {
	LineSource
	// Done returns a channel closed when the process has exited.
	Done() <-chan struct{}
	// Wait waits for the exit and returns the process's exit error (one
	// wrapping an *exec.ExitError when the status is not 0).
	Wait() error
}

// A Demo drives one reflect-demo in -json mode: commands go to its standard
// input, and the JSON lines of its standard output are taken one matching
// line at a time (see LineSource), each with a timeout. Every command line
// gets exactly one reply, in order; asynchronous events interleave and stay
// unread until something waits for them.
//
// Do and the methods built on it send one command and take the next reply
// while holding the Demo, so goroutines can share one. Send, Next, TryNext
// and Drain do not: do not wait for replies (Next(IsReply)) while another
// goroutine runs commands on the same Demo.
//
// The methods that fail the test (Must, Next, ...) must be called from the
// test's goroutine; the others return errors.
type Demo struct {
	Name  string   // in messages; the host, or a letter
	ID    string   // peer id, from the ready line
	Addrs []string // listen multiaddrs, from the ready line
	HTTP  string   // the status page's URL (-http), from the ready line
	// Timeout bounds every wait for a reply, an event or the exit, except
	// where a method takes its own bound.
	Timeout time.Duration

	t  testing.TB
	in io.WriteCloser
	p  Process

	mu sync.Mutex // held by a command from its sending to its reply
	// late counts the replies still to come to commands whose wait for
	// them ended (DoWithin): the next command reads them first, so that a
	// reply that came late on a loaded machine does not pass for the
	// reply to every later command in turn.
	late int
}

// NewDemo returns a driver for the demo reading stdin and running as p. Call
// WaitReady before anything else.
func NewDemo(t testing.TB, name string, stdin io.WriteCloser, p Process) *Demo {
	return &Demo{Name: name, Timeout: DefaultTimeout, t: t, in: stdin, p: p}
}

func (d *Demo) String() string { return d.Name }

// WaitReady waits (at most within) for the ready event, which must be the
// first line, and sets ID, Addrs and HTTP from it.
func (d *Demo) WaitReady(within time.Duration) error {
	e, err := d.take(within, func(string, string) bool { return true })
	if err != nil {
		return fmt.Errorf("%s: no ready line: %w", d.Name, err)
	}
	addrs, ok := e.Strs("addrs")
	if e.Kind() != "ready" || e.Str("id") == "" || !ok {
		return fmt.Errorf("%s: first line %v, want the ready event with id and addrs", d.Name, e)
	}
	d.ID, d.Addrs, d.HTTP = e.Str("id"), addrs, e.Str("http")
	return nil
}

// Send writes command lines without waiting for their replies.
func (d *Demo) Send(lines ...string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.send(lines...)
}

func (d *Demo) send(lines ...string) error {
	var b strings.Builder
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			return fmt.Errorf("%s: command %.40q holds a line break", d.Name, l)
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(d.in, b.String()); err != nil {
		return d.failed(fmt.Errorf("writing commands: %w", err))
	}
	return nil
}

// Do sends one command and returns its reply, waiting at most Timeout. An
// error reply is returned with an error wrapping ErrReply.
func (d *Demo) Do(line string) (Event, error) { return d.DoWithin(d.Timeout, line) }

// DoWithin is Do waiting at most within for the reply, and for the late
// replies to earlier commands whose wait ended, which it reads first.
func (d *Demo) DoWithin(within time.Duration, line string) (Event, error) {
	if f := strings.Fields(line); len(f) == 0 || strings.HasPrefix(f[0], "#") {
		return nil, fmt.Errorf("%s: %q: blank lines and comments get no reply", d.Name, line)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	deadline := time.Now().Add(within)
	for ; d.late > 0; d.late-- {
		if _, err := d.reply(time.Until(deadline)); err != nil {
			return nil, fmt.Errorf("%w (waiting for the late reply to an earlier command; %q not sent)", err, line)
		}
	}
	if err := d.send(line); err != nil {
		return nil, err
	}
	e, err := d.reply(time.Until(deadline))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			d.late++
		}
		return nil, fmt.Errorf("%w (waiting for the reply to %q)", err, line)
	}
	if err := answers(line, e); err != nil {
		return e, fmt.Errorf("%s: %w", d.Name, err)
	}
	if e.Kind() == "error" {
		return e, fmt.Errorf("%s: %q: %w: %s", d.Name, line, ErrReply, e.Str("error"))
	}
	return e, nil
}

// Must runs one command and fails the test unless it gets its successful
// reply: ok naming the command, or value, keys, dump, peers, id, stats or
// response (req) for the commands that answer with those.
func (d *Demo) Must(line string) Event {
	d.t.Helper()
	e, err := d.Do(line)
	if err != nil {
		d.t.Fatal(err)
	}
	return e
}

// MustFail runs one command and fails the test unless it gets an error reply
// naming the command; it returns the reply.
func (d *Demo) MustFail(line string) Event {
	d.t.Helper()
	e, err := d.Do(line)
	if !errors.Is(err, ErrReply) {
		d.t.Fatalf("%s: %q: reply %v (%v), want an error reply", d.Name, line, e, err)
	}
	return e
}

// reply takes the next reply.
func (d *Demo) reply(within time.Duration) (Event, error) {
	return d.take(within, func(kind, _ string) bool { return replyKinds[kind] })
}

// Next removes and returns the first unread event for which match is true,
// waiting for it at most Timeout; it fails the test if none comes.
func (d *Demo) Next(match func(Event) bool) Event {
	d.t.Helper()
	e, err := d.TryNext(d.Timeout, match)
	if err != nil {
		d.t.Fatal(err)
	}
	return e
}

// TryNext removes and returns the first unread event for which match is
// true, waiting for it at most within.
func (d *Demo) TryNext(within time.Duration, match func(Event) bool) (Event, error) {
	return d.take(within, func(_, line string) bool {
		e, err := parseEvent(line)
		return err != nil || match(e)
	})
}

// Drain removes and returns every unread event for which match is true, at
// once, without waiting. It is the check of an absence after a barrier:
// once a line the demo wrote after X has been taken (a reply to a command
// sent after X, a marker sent after X on X's path), every line it wrote
// before is unread or taken, so Drain(isX) finds X if it came at all.
func (d *Demo) Drain(match func(Event) bool) []Event {
	d.t.Helper()
	var out []Event
	for range 1 << 20 { // bounded: far more than a LineSource keeps
		e, err := d.TryNext(0, match)
		switch {
		case errors.Is(err, ErrNotEvent):
			d.t.Fatal(err)
		case err != nil:
			return out // nothing more matches
		}
		out = append(out, e)
	}
	d.t.Fatalf("%s: Drain did not end", d.Name)
	return nil
}

// Message waits for a message on topic from the peer from and returns its
// data, which must be a JSON object.
func (d *Demo) Message(topic, from string) map[string]any {
	d.t.Helper()
	e := d.Next(IsMessage(topic, from))
	data, ok := e["data"].(map[string]any)
	if !ok {
		d.t.Fatalf("%s: message data is not an object: %v", d.Name, e)
	}
	return data
}

// take waits for the first unread line for which want(kind, line) is true.
// A line that is not an event is taken too, and returned as an error
// wrapping ErrNotEvent.
func (d *Demo) take(within time.Duration, want func(kind, line string) bool) (Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	line, err := d.p.WaitLine(ctx, func(line string) bool {
		kind, ok := kindOf(line)
		return !ok || want(kind, line)
	})
	if err != nil {
		return nil, d.failed(err)
	}
	e, err := parseEvent(line)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name, err)
	}
	return e, nil
}

// failed wraps the error of a wait or a write, with ErrExited if the process
// has exited.
func (d *Demo) failed(err error) error {
	if !errors.Is(err, context.DeadlineExceeded) {
		// The output ended or the input broke: the process is exiting. Give
		// it time to be reaped.
		select {
		case <-d.p.Done():
		case <-time.After(d.Timeout):
		}
	}
	select {
	case <-d.p.Done():
		return fmt.Errorf("%s: %w: %w", d.Name, ErrExited, err)
	default:
		return fmt.Errorf("%s: %w", d.Name, err)
	}
}

// SetMany sets keys (key, value) in batches of 200 commands and returns the
// acknowledged keys, those whose set got an ok reply, in order. It stops at
// the first reply that does not come (the process died: an error wrapping
// ErrExited) or is out of step; the keys acked until then are returned with
// the error. An error reply to a set is not an error: the key is not acked.
func (d *Demo) SetMany(kv [][2]string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var acked []string
	const batch = 200
	for i := 0; i < len(kv); i += batch {
		chunk := kv[i:min(i+batch, len(kv))]
		lines := make([]string, len(chunk))
		for j, p := range chunk {
			lines[j] = "set " + p[0] + " " + p[1]
		}
		if err := d.send(lines...); err != nil {
			return acked, err
		}
		for j, p := range chunk {
			e, err := d.reply(d.Timeout)
			if err != nil {
				return acked, err
			}
			if err := answers(lines[j], e); err != nil {
				return acked, fmt.Errorf("%s: %w", d.Name, err)
			}
			if e.Kind() == "ok" {
				acked = append(acked, p[0])
			}
		}
	}
	return acked, nil
}

// Peers returns the connected peers' ids (the peers command).
func (d *Demo) Peers() []string {
	d.t.Helper()
	e := d.Must("peers")
	ps, ok := e.Strs("peers")
	if !ok {
		d.t.Fatalf("%s: peers reply %v", d.Name, e)
	}
	return ps
}

// Dump returns every key of the store with its value as compact JSON (the
// dump command).
func (d *Demo) Dump() map[string]string {
	d.t.Helper()
	e := d.Must("dump")
	entries, ok := e["entries"].([]any)
	if !ok {
		d.t.Fatalf("%s: dump reply without entries: %.200v", d.Name, e)
	}
	out := make(map[string]string, len(entries))
	for _, x := range entries {
		m, ok := x.(map[string]any)
		key, isStr := m["key"].(string)
		if !ok || !isStr {
			d.t.Fatalf("%s: dump entry %v", d.Name, x)
		}
		v, err := json.Marshal(m["value"])
		if err != nil {
			d.t.Fatalf("%s: dump entry %q: %v", d.Name, key, err)
		}
		out[key] = string(v)
	}
	return out
}

// Stats returns the reply to stats.
func (d *Demo) Stats() Event {
	d.t.Helper()
	return d.Must("stats")
}

// WaitPeers runs "wait-peers n" with the demo's own timeout within (whole
// milliseconds), and waits 5 s longer for the reply. It returns an error
// wrapping ErrReply if the demo timed out.
func (d *Demo) WaitPeers(n int, within time.Duration) error {
	_, err := d.DoWithin(within+5*time.Second, fmt.Sprintf("wait-peers %d %.3f", n, within.Seconds()))
	return err
}

// CloseInput closes the demo's standard input: it finishes what the
// commands started and exits.
func (d *Demo) CloseInput() error {
	if err := d.in.Close(); err != nil {
		return fmt.Errorf("%s: closing the input: %w", d.Name, err)
	}
	return nil
}

// ExitStatus waits at most Timeout for the process to exit and returns its
// exit status (-1 if a signal killed it); it fails the test if the process
// does not exit.
func (d *Demo) ExitStatus() int {
	d.t.Helper()
	select {
	case <-d.p.Done():
	case <-time.After(d.Timeout):
		d.t.Fatalf("%s: still running after %v", d.Name, d.Timeout)
	}
	err := d.p.Wait()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		d.t.Fatalf("%s: %v", d.Name, err)
	}
	return ee.ExitCode()
}

// EndInput closes the input and returns the exit status (see CloseInput and
// ExitStatus).
func (d *Demo) EndInput() int {
	d.t.Helper()
	if err := d.CloseInput(); err != nil {
		d.t.Fatal(err)
	}
	return d.ExitStatus()
}
