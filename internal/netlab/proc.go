package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	tailBytes = 64 << 10 // stdout and stderr kept for reports
	maxLines  = 10000    // unconsumed stdout lines kept for WaitLine
)

// A Proc is a process started on a host with Host.Start. The lab kills it at
// Close if it is still running.
type Proc struct {
	// Stdin is the process's standard input. Close it to send EOF.
	Stdin io.WriteCloser

	host *Host
	cmd  *exec.Cmd
	name string // the program, as given to Start
	done chan struct{}
	err  error // cmd.Wait's result, set before done closes

	mu      sync.Mutex
	lines   []string // stdout lines not yet taken by WaitLine, oldest first
	eof     bool     // stdout closed
	changed chan struct{}
	stdout  tail
	stderr  tail
}

func startProc(h *Host, cmd *exec.Cmd, wg *sync.WaitGroup) (*Proc, error) {
	p := &Proc{host: h, cmd: cmd, done: make(chan struct{}), changed: make(chan struct{})}
	if len(cmd.Args) > 4 && filepath.Base(cmd.Path) == "ip" {
		p.name = cmd.Args[4] // ip netns exec NS name ...
	} else {
		p.name = cmd.Path
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("netlab: %s: %w", h, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		stdin.Close()
		return nil, fmt.Errorf("netlab: %s: %w", h, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		stdin.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("netlab: %s: %w", h, err)
	}
	// The process writes to pipes of our own, not through exec's copying
	// goroutines, so Wait returns when it exits even if a child of it keeps
	// the pipes open.
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		stdin.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("netlab: %s: starting %s: %w", h, strings.Join(cmd.Args, " "), err)
	}
	p.Stdin = stdin
	wg.Add(3)
	go func() {
		defer wg.Done()
		p.readStdout(outR)
	}()
	go func() {
		defer wg.Done()
		defer errR.Close()
		buf := make([]byte, 4096)
		for {
			n, err := errR.Read(buf)
			p.mu.Lock()
			p.stderr.write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *Proc) readStdout(r *os.File) {
	defer r.Close()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		p.mu.Lock()
		p.stdout.write([]byte(line))
		if line != "" {
			p.lines = append(p.lines, strings.TrimRight(line, "\r\n"))
			if len(p.lines) > maxLines {
				p.lines = p.lines[len(p.lines)-maxLines:]
			}
		}
		if err != nil {
			p.eof = true
		}
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// PID returns the process's ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Host returns the host the process runs on.
func (p *Proc) Host() *Host { return p.host }

func (p *Proc) String() string {
	return fmt.Sprintf("%s/%s[%d]", p.host, filepath.Base(p.name), p.PID())
}

// WaitLine waits for a line of the process's standard output for which match
// returns true (any line if match is nil), removes it from the unread lines
// and returns it without its line ending. Lines that do not match stay for
// later calls, so one can wait for different kinds of lines in turn; the
// newest 10,000 unread lines are kept. match is called with the Proc locked
// and must not call its methods. WaitLine fails when ctx is done, or when
// standard output is closed (the process exited) without a matching line; the
// error then carries the exit status and the tail of standard error.
func (p *Proc) WaitLine(ctx context.Context, match func(line string) bool) (string, error) {
	for {
		p.mu.Lock()
		for i, line := range p.lines {
			if match == nil || match(line) {
				p.lines = append(p.lines[:i], p.lines[i+1:]...)
				p.mu.Unlock()
				return line, nil
			}
		}
		eof, changed := p.eof, p.changed
		p.mu.Unlock()
		if eof {
			select {
			case <-p.done:
			case <-time.After(time.Second):
			}
			return "", fmt.Errorf("netlab: %s: output ended without the awaited line (%s)%s", p, p.status(), p.stderrTail())
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("netlab: %s: awaited line did not come: %w%s", p, ctx.Err(), p.stderrTail())
		}
	}
}

// Stdout returns the tail (64 KiB) of everything the process wrote to
// standard output, whether or not WaitLine has taken it.
func (p *Proc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

// Stderr returns the tail (64 KiB) of the process's standard error.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *Proc) stderrTail() string {
	s := p.Stderr()
	if len(s) > 2048 {
		s = "..." + s[len(s)-2048:]
	}
	if s == "" {
		return ""
	}
	return "; stderr:\n" + s
}

// Done returns a channel closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error (wrapping an
// *exec.ExitError if it failed or was killed). It may be called many times.
func (p *Proc) Wait() error {
	<-p.done
	if p.err != nil {
		return fmt.Errorf("netlab: %s: %w", p, p.err)
	}
	return nil
}

// Kill sends SIGKILL to the process and waits for it to be gone. Killing a
// process that has exited already does nothing.
func (p *Proc) Kill() error {
	p.signal(syscall.SIGKILL)
	<-p.done
	return nil
}

// Stop sends SIGTERM and waits for the process to exit; if it has not when
// ctx is done, it sends SIGKILL and returns an error wrapping ctx's error.
// Otherwise it returns nil if the process exited with status 0 or died of the
// SIGTERM, and its exit error if not.
func (p *Proc) Stop(ctx context.Context) error {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-ctx.Done():
		p.signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("netlab: %s: still running after SIGTERM, killed: %w", p, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return p.Wait()
}

// signal sends sig to the process unless it has been reaped (os.Process uses
// a pidfd, so a reused PID is never hit).
func (p *Proc) signal(sig os.Signal) {
	_ = p.cmd.Process.Signal(sig)
}

// status describes whether the process runs or how it ended.
func (p *Proc) status() string {
	select {
	case <-p.done:
		if p.err == nil {
			return "exited with status 0"
		}
		return p.err.Error()
	default:
		return "running"
	}
}

// tail keeps the last tailBytes bytes written to it.
type tail struct{ b []byte }

func (t *tail) write(b []byte) {
	t.b = append(t.b, b...)
	if len(t.b) > 2*tailBytes {
		t.b = append(t.b[:0], t.b[len(t.b)-tailBytes:]...)
	}
}

func (t *tail) String() string {
	if len(t.b) > tailBytes {
		return string(t.b[len(t.b)-tailBytes:])
	}
	return string(t.b)
}
