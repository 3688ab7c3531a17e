package main

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/term"
)

// Line editing on a terminal. When standard input and output are both
// terminals and the output is human, the demo puts the terminal in raw mode
// and reads commands through golang.org/x/term: the arrow keys move in the
// line and through the history (this session's lines), Ctrl-A/Ctrl-E/
// Ctrl-W/Ctrl-U/Ctrl-K edit, and the events that arrive while a line is
// being typed print above it without breaking it. Ctrl-D on an empty line
// ends the input; Ctrl-C raises SIGINT as it does in cooked mode. A line
// typed there holds at most 4096 characters (x/term's limit); longer
// values go through a pipe.

// A terminal is standard input and output in raw mode, with a line editor.
type terminal struct {
	t    *term.Terminal
	fd   int
	out  *os.File
	old  *term.State
	stop chan struct{} // closed by close: ends the resize goroutine
	done chan struct{} // closed when the resize goroutine has ended

	closeOnce sync.Once
}

// openTerminal puts stdin in raw mode and returns its line editor, or nil
// when stdin or stdout is not a terminal (or raw mode fails): then the
// demo reads lines as from a pipe.
func openTerminal(stdin io.Reader, stdout io.Writer) *terminal {
	in, ok1 := stdin.(*os.File)
	out, ok2 := stdout.(*os.File)
	if !ok1 || !ok2 || !term.IsTerminal(int(in.Fd())) || !term.IsTerminal(int(out.Fd())) {
		return nil
	}
	fd := int(in.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil
	}
	rw := struct {
		io.Reader
		io.Writer
	}{&ctrlCReader{r: in, onCtrlC: interruptSelf}, out}
	t := &terminal{
		t:    term.NewTerminal(rw, "> "),
		fd:   fd,
		out:  out,
		old:  old,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	t.resize(int(out.Fd()))
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		defer close(t.done)
		defer signal.Stop(winch)
		for {
			select {
			case <-winch:
				t.resize(int(out.Fd()))
			case <-t.stop:
				return
			}
		}
	}()
	return t
}

func (t *terminal) resize(fd int) {
	if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 { // a new pty says 0x0: keep 80x24
		_ = t.t.SetSize(w, h)
	}
}

// Write writes to the terminal: above the line being edited, with the
// prompt and that line redrawn after it.
func (t *terminal) Write(b []byte) (int, error) { return t.t.Write(b) }

// readLines sends the lines typed to lines and closes it at the end of
// input (Ctrl-D on an empty line).
func (t *terminal) readLines(lines chan<- line) {
	defer close(lines)
	for {
		s, err := t.t.ReadLine()
		switch {
		case err == nil, errors.Is(err, term.ErrPasteIndicator):
			lines <- line{text: s}
		case errors.Is(err, io.EOF):
			return
		default:
			lines <- line{err: err}
			return
		}
	}
}

// close restores the terminal's mode; safe twice.
func (t *terminal) close() {
	t.closeOnce.Do(func() {
		close(t.stop)
		<-t.done
		_, _ = t.out.WriteString("\r\n") // end the prompt's line
		_ = term.Restore(t.fd, t.old)
	})
}

// ctrlCReader passes input through, calling onCtrlC for each Ctrl-C byte
// instead: in raw mode the terminal sends no SIGINT, and x/term would take
// Ctrl-C for the end of input, which a waiting command never sees.
type ctrlCReader struct {
	r       io.Reader
	onCtrlC func()
}

func (c *ctrlCReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	kept := p[:0]
	for _, b := range p[:n] {
		if b == 3 {
			c.onCtrlC()
			continue
		}
		kept = append(kept, b)
	}
	return len(kept), err
}

// interruptSelf sends SIGINT to this process, as the terminal would in
// cooked mode.
func interruptSelf() { _ = syscall.Kill(os.Getpid(), syscall.SIGINT) }

// swapWriter writes to a writer that can change: the logs go to the
// terminal while it is in raw mode (where a bare "\n" would not return the
// cursor), to standard error otherwise.
type swapWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *swapWriter) set(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w = w
}

func (s *swapWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
