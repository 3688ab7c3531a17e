//go:build linux

package netns

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
)

// forwarded are the signals the parent passes on to the child: what
// `go test -timeout` (SIGQUIT), Ctrl-C and process managers send.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP}

// prepare decides where the tests run. done is true in the parent, which has
// already run the child and must return code; otherwise the caller runs the
// tests in this process.
func prepare() (code int, done bool) {
	if v, ok := os.LookupEnv(sharedEnv); ok {
		os.Unsetenv(sharedEnv)
		if sharesParent(v) {
			isolated = true
			return 0, false
		}
	}
	if v, ok := os.LookupEnv(childEnv); ok {
		os.Unsetenv(childEnv) // the child's own children get namespaces of their own
		if isChild(v) {
			if err := setupLoopback(); err != nil {
				notice("cannot set up loopback in the test namespace: %v", err)
				return 1, true
			}
			isolated = true
			return 0, false
		}
	}
	if ns := os.Getenv(HostEnv); ns != "" && inNamedNetns(ns) {
		isolated = true
		return 0, false
	}

	if !flag.Parsed() {
		flag.Parse() // m.Run would do the same; we need -test.fuzz and -test.list now
	}
	if why, quiet := inPlaceReason(flagValue); why != "" {
		reason, deliberate = why, true
		if !quiet {
			notice("not isolating tests: %s; tests that need a network namespace will be skipped", why)
		}
		return 0, false
	}

	code, err := runChild()
	if err == nil {
		// Exit at once: this process ran no test, so there is nothing for
		// exit hooks to do, and with -race a successful os.Exit would pause
		// a second (GORACE atexit_sleep_ms) on top of the child's.
		syscall.Exit(code)
	}
	reason = err.Error()
	if Required() {
		notice("%s=1 but the tests cannot run in an isolated network namespace: %v", RequireEnv, err)
		return 1, true
	}
	notice("not isolating tests: %v; tests that need a network namespace will be skipped", err)
	return 0, false
}

func flagValue(name string) string {
	if f := flag.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// isChild reports whether marker v was set by this process's parent for this
// process: the PID matches our parent and our namespace differs from its.
// sharesParent reports whether marker v names this process's parent and
// the network namespace this process is in.
func sharesParent(v string) bool {
	ppid, ns, ok := parseMarker(v)
	if !ok || ppid != os.Getppid() {
		return false
	}
	own, err := os.Readlink("/proc/self/ns/net")
	return err == nil && own == ns
}

// SharedEnv returns the environment entry ("NAME=value") that lets a test
// binary this process starts run its tests in this process's namespace,
// as isolated as this one, instead of making its own: for tests whose
// processes talk to each other over loopback. It returns "" unless this
// process is isolated (see Isolated).
func SharedEnv() string {
	if !isolated {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return ""
	}
	return sharedEnv + "=" + markerFor(os.Getpid(), ns)
}

func isChild(v string) bool {
	ppid, ns, ok := parseMarker(v)
	if !ok || ppid != os.Getppid() {
		return false
	}
	own, err := os.Readlink("/proc/self/ns/net")
	return err == nil && own != ns
}

// inNamedNetns reports whether this process is in the network namespace
// mounted at /run/netns/name (as by `ip netns add name`).
func inNamedNetns(name string) bool {
	var named, own syscall.Stat_t
	if syscall.Stat("/run/netns/"+name, &named) != nil || syscall.Stat("/proc/self/ns/net", &own) != nil {
		return false
	}
	return named.Dev == own.Dev && named.Ino == own.Ino
}

// runChild re-executes the test binary in a new network namespace and returns
// its exit code. An error means the child could not be started.
func runChild() (int, error) {
	ns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return 0, fmt.Errorf("cannot read this process's network namespace: %w", err)
	}
	code, err := Reexec(childEnv + "=" + markerFor(os.Getpid(), ns))
	if err != nil {
		return 0, explainStart(err)
	}
	return code, nil
}

// Reexec runs this program again, with the same arguments and standard
// streams and env added to its environment, in a new network namespace
// (which starts with lo down: the child calls SetupLoopback), forwards the
// usual termination signals to it and returns its exit code (128 + the
// signal if one killed it). The child dies with this process. An error means
// the child could not be started or waited for. Creating the namespace needs
// root or CAP_SYS_ADMIN.
func Reexec(env string) (int, error) {
	cmd := &exec.Cmd{
		Path:   "/proc/self/exe",
		Args:   os.Args,
		Env:    append(os.Environ(), env),
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWNET,
			// The child dies with us (e.g. SIGKILL after a go test timeout).
			Pdeathsig: syscall.SIGKILL,
		},
	}
	// PDEATHSIG fires when the thread that forked the child exits, not the
	// process: keep this goroutine on its thread until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	forwarderDone := make(chan struct{})
	go func() {
		defer close(forwarderDone)
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	<-forwarderDone

	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			notice("process %d killed by signal: %v", cmd.Process.Pid, ws.Signal())
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		notice("waiting for process %d: %v", cmd.Process.Pid, err)
		return 1, nil
	}
	return 0, nil
}

// SetupLoopback brings lo up with multicast in a fresh network namespace
// (see setupLoopback).
func SetupLoopback() error { return setupLoopback() }

func explainStart(err error) error {
	uid := os.Geteuid()
	switch {
	case errors.Is(err, syscall.EPERM) && uid != 0:
		return fmt.Errorf("creating a network namespace needs root or CAP_SYS_ADMIN, running as uid %d (%w)", uid, err)
	case errors.Is(err, syscall.EPERM):
		return fmt.Errorf("creating a network namespace was refused although running as root; a container without CAP_SYS_ADMIN? (%w)", err)
	case errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("creating a network namespace failed; kernel without CONFIG_NET_NS? (%w)", err)
	}
	return fmt.Errorf("re-executing the test binary in a new network namespace: %w", err)
}
