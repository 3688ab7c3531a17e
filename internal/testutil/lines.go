package testutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// A LineSource hands out the lines a program writes, in order, the first
// unread one that matches at a time. *netlab.Proc is one (for processes on
// a lab host); Lines makes one of any reader.
type LineSource interface {
	// WaitLine removes and returns the first unread line (without its line
	// ending) for which match is true, waiting for it until ctx is done or
	// the output ends. Lines that do not match stay for later calls. match
	// must not call the source's methods.
	WaitLine(ctx context.Context, match func(line string) bool) (string, error)
}

// Lines reads a reader line by line in a goroutine of its own, which ends at
// the end of the reader (Done), and keeps the lines until WaitLine takes
// them. It is the LineSource of a process's standard output pipe.
type Lines struct {
	done chan struct{} // closed when reading has ended

	mu      sync.Mutex
	unread  []string
	err     error         // why reading ended (io.EOF at a clean end), set before done closes
	changed chan struct{} // closed and replaced at each line and at the end
}

// ReadLines starts reading r.
func ReadLines(r io.Reader) *Lines {
	l := &Lines{done: make(chan struct{}), changed: make(chan struct{})}
	go l.read(r)
	return l
}

func (l *Lines) read(r io.Reader) {
	defer close(l.done)
	br := bufio.NewReader(r)
	for {
		s, err := br.ReadString('\n')
		l.mu.Lock()
		if s != "" {
			l.unread = append(l.unread, strings.TrimRight(s, "\r\n"))
		}
		if err != nil {
			l.err = err
		}
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Done returns a channel closed once the reader has ended and every line of
// it is in the unread lines.
func (l *Lines) Done() <-chan struct{} { return l.done }

// Err returns nil while reading goes on or ended cleanly (io.EOF), and the
// read error otherwise.
func (l *Lines) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if errors.Is(l.err, io.EOF) {
		return nil
	}
	return l.err
}

// WaitLine implements LineSource. Once the reader has ended, it still
// returns the matching lines read before the end; after them it fails.
func (l *Lines) WaitLine(ctx context.Context, match func(line string) bool) (string, error) {
	for {
		l.mu.Lock()
		for i, s := range l.unread {
			if match == nil || match(s) {
				l.unread = append(l.unread[:i], l.unread[i+1:]...)
				l.mu.Unlock()
				return s, nil
			}
		}
		ended, changed := l.err, l.changed
		l.mu.Unlock()
		if ended != nil {
			return "", fmt.Errorf("output ended (%v) without the awaited line", ended)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("awaited line did not come: %w", ctx.Err())
		}
	}
}

// Unread returns a copy of the lines no WaitLine has taken yet, for failure
// reports.
func (l *Lines) Unread() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.unread...)
}
