package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	// Non-blocking, so that the poller serves it and Close ends a Read.
	fd, err := syscall.Open("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	m := os.NewFile(uintptr(fd), "/dev/ptmx")
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		t.Skipf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		m.Close()
		t.Skipf("ptsname: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("opening the pts: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// screen collects what the demo writes to the terminal.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor waits until the screen holds want, counted from offset from.
func (s *screen) waitFor(t *testing.T, from int, want string) int {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		if i := strings.Index(s.String()[from:], want); i >= 0 {
			return from + i + len(want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the screen never showed %q after offset %d:\n%q", want, from, s.String())
	return 0
}

// On a terminal the demo edits lines and keeps a history: the up arrow
// brings back earlier lines, backspace and Ctrl-U edit; Ctrl-C interrupts
// a waiting command and ends the demo (a person sees the error: exit 0);
// the terminal's mode is restored.
func TestTerminalLineEditing(t *testing.T) {
	t.Parallel()
	master, slave := openPTY(t)
	before := termios(t, slave)
	cmd := demoCmd(t, nil, "-key", testKey(t), "-mdns=false", "-listen", "/ip4/127.0.0.1/tcp/0")
	var errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill() // this process only, by its PID
			<-exited
		}
	})
	var scr screen
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			scr.mu.Lock()
			scr.buf.Write(b[:n])
			scr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	typeKeys := func(s string) {
		t.Helper()
		if _, err := master.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	at := scr.waitFor(t, 0, "type help for the commands")
	at = scr.waitFor(t, at, "> ")
	typeKeys("set color blue\r")
	at = scr.waitFor(t, at, "ok\r\n")
	typeKeys("get colx\x7for\r") // backspace fixes the typo
	at = scr.waitFor(t, at, "blue\r\n")
	typeKeys("set color green\r")
	at = scr.waitFor(t, at, "ok\r\n")
	typeKeys("junk\x15get color\r") // Ctrl-U clears the line
	at = scr.waitFor(t, at, "green\r\n")
	// Up twice: "set color green"; five backspaces and "red".
	typeKeys("\x1b[A\x1b[A\x7f\x7f\x7f\x7f\x7fred\r")
	at = scr.waitFor(t, at, "ok\r\n")
	typeKeys("\x1b[A\x1b[A\r") // up twice: "get color" again
	at = scr.waitFor(t, at, "red\r\n")
	typeKeys("frob\r")
	at = scr.waitFor(t, at, "error: frob: unknown command")
	typeKeys("wait-peers 3 30\r")
	time.Sleep(300 * time.Millisecond) // no event says the command started
	typeKeys("\x03")
	scr.waitFor(t, at, "error: wait-peers: interrupted")
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("exit: %v, want status 0 at a terminal; stderr:\n%s", waitErr, errOut.String())
		}
	case <-time.After(waitFor):
		t.Fatalf("still running after Ctrl-C; screen:\n%q", scr.String())
	}
	if after := termios(t, slave); after != before {
		t.Errorf("terminal mode %+v after the demo, want %+v restored", after, before)
	}
	if s := errOut.String(); strings.Contains(s, "error:") {
		t.Errorf("errors on stderr instead of the terminal: %s", s)
	}
}

// termios returns f's terminal attributes.
func termios(t *testing.T, f *os.File) syscall.Termios {
	t.Helper()
	var tio syscall.Termios
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&tio))); e != 0 {
		t.Fatalf("TCGETS: %v", e)
	}
	return tio
}
