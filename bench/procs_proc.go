package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reflectmesh/reflect/bench/participant"
)

// proc is one child process of the -procs mode (a participant or a NATS
// server: a binary of bench/participant/cmd), driven over its stdin and
// stdout (bench/participant/proto.go).
type proc struct {
	name string // e.g. "reflect sub 3", for errors and logs
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	done chan struct{} // closed when the process was reaped
	mu   sync.Mutex    // one command at a time
}

// errProc is a child process that failed or answered with an error.
var errProc = errors.New("process")

// startProc starts the binary exe with args. The child dies with the
// parent (Pdeathsig) and inherits its network namespace and stderr.
func startProc(name, exe string, args ...string) (*proc, error) {
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// The parent owns the read end of stdout: cmd.StdoutPipe's would be
	// closed by Wait as soon as the child exits, even with its last reply
	// (to "quit") still unread in the pipe.
	out, w, err := os.Pipe()
	if err != nil {
		_ = in.Close()
		return nil, err
	}
	cmd.Stdout = w
	err = cmd.Start()
	_ = w.Close() // the child's copy stays open until it exits
	if err != nil {
		_ = in.Close()
		_ = out.Close()
		return nil, fmt.Errorf("%w %s: %w", errProc, name, err)
	}
	p := &proc{name: name, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		// Once reaped nobody else writes: a blocked read sees EOF, and the
		// descriptor is ours to close only after the last read is done.
		p.mu.Lock()
		_ = out.Close()
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// call sends c and returns the reply; a reply with Err is an error. If
// the child does not answer before ctx ends, it is killed.
func (p *proc) call(ctx context.Context, c participant.Command) (participant.Reply, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := json.Marshal(c)
	if err != nil {
		return participant.Reply{}, err
	}
	stop := context.AfterFunc(ctx, func() { _ = p.cmd.Process.Kill() })
	defer stop()
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return participant.Reply{}, fmt.Errorf("%w %s: %s: %w", errProc, p.name, c.Op, err)
	}
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return participant.Reply{}, fmt.Errorf("%w %s: %s: %w", errProc, p.name, c.Op, err)
	}
	var r participant.Reply
	if err := json.Unmarshal(line, &r); err != nil {
		return participant.Reply{}, fmt.Errorf("%w %s: %s: reply %q: %w", errProc, p.name, c.Op, strings.TrimSpace(string(line)), err)
	}
	if r.Err != "" {
		return r, fmt.Errorf("%w %s: %s: %s", errProc, p.name, c.Op, r.Err)
	}
	return r, nil
}

// stop asks the child to quit and waits for it, killing it (by its PID)
// after 10 s.
func (p *proc) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.call(ctx, participant.Command{Op: "quit"})
	_ = p.in.Close()
	select {
	case <-p.done:
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
		err = errors.Join(err, fmt.Errorf("%w %s: did not exit; killed", errProc, p.name))
	}
	return err
}

// kill ends the child at once (a cluster that failed to open).
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}
