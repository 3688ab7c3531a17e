package testutil

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// A Cmd is a process started by StartCmd: a Process (for a Demo) made of an
// exec.Cmd whose standard output is read as Lines.
type Cmd struct {
	// Stdin is the process's standard input. Close it to send EOF.
	Stdin io.WriteCloser

	cmd   *exec.Cmd
	lines *Lines
	done  chan struct{} // closed when the process has exited and been reaped
	err   error         // cmd.Wait's result, set before done closes

	mu     sync.Mutex
	stderr bytes.Buffer
}

// StartCmd starts cmd, whose Stdin, Stdout and Stderr must be nil, and
// reads its output. When t ends, it kills the process (by its PID) if it is
// still running, logs its standard error and unread output if t failed, and
// fails t if the standard error shows a data race or a panic.
func StartCmd(t testing.TB, cmd *exec.Cmd) (*Cmd, error) {
	if cmd.Stdin != nil || cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, fmt.Errorf("testutil: StartCmd %s: Stdin, Stdout and Stderr must be nil", cmd.Path)
	}
	c := &Cmd{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.stderr.Write(b)
	})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if c.Stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c.lines = ReadLines(stdout)
	go func() {
		// exec: Wait closes the pipe, so only after reading has ended.
		<-c.lines.Done()
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { c.cleanup(t) })
	return c, nil
}

func (c *Cmd) cleanup(t testing.TB) {
	select {
	case <-c.done:
	default:
		// Left running by the test: kill this process only, by its PID
		// (os.Process holds a pidfd, so a reused PID is never hit). An
		// error means it has exited meanwhile, which the wait below shows.
		if err := c.cmd.Process.Kill(); err != nil {
			t.Logf("%s: kill: %v", c, err)
		}
		select {
		case <-c.done:
		case <-time.After(DefaultTimeout):
			t.Errorf("%s: still running %v after SIGKILL", c, DefaultTimeout)
		}
	}
	stderr := c.Stderr()
	if t.Failed() {
		t.Logf("%s stderr:\n%s\nunread output: %q", c, stderr, c.lines.Unread())
	}
	if strings.Contains(stderr, "DATA RACE") || strings.Contains(stderr, "panic:") {
		t.Errorf("%s stderr:\n%s", c, stderr)
	}
	if err := c.lines.Err(); err != nil {
		t.Errorf("%s: reading the output: %v", c, err)
	}
}

func (c *Cmd) String() string {
	return fmt.Sprintf("%s[%d]", c.cmd.Path, c.cmd.Process.Pid)
}

// WaitLine implements LineSource on the standard output.
func (c *Cmd) WaitLine(ctx context.Context, match func(line string) bool) (string, error) {
	return c.lines.WaitLine(ctx, match)
}

// Done returns a channel closed when the process has exited.
func (c *Cmd) Done() <-chan struct{} { return c.done }

// Wait waits for the exit and returns exec.Cmd.Wait's error.
func (c *Cmd) Wait() error {
	<-c.done
	return c.err
}

// Signal sends sig to the process.
func (c *Cmd) Signal(sig os.Signal) error { return c.cmd.Process.Signal(sig) }

// Stderr returns what the process has written to its standard error.
func (c *Cmd) Stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
