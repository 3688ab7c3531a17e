package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// The benchmark must never put a packet on a real network. Everything binds
// 127.0.0.1 and mDNS is off, and on top of that the command only runs in a
// network namespace whose only interface is loopback:
//
//   - already in one (e.g. under /work/shared/tools/sandbox): run;
//   - otherwise, as root: re-execute itself in a fresh network namespace
//     (CLONE_NEWNET, lo brought up), forwarding signals; the child dies
//     with the parent;
//   - otherwise: refuse, saying how to run it.
//
// redis-server, started by the child, inherits the namespace.

// childEnv marks the re-executed child.
const childEnv = "REFLECT_BENCH_NETNS_CHILD"

// errNotIsolated is returned when isolation is impossible.
var errNotIsolated = errors.New("bench: refusing to run outside an isolated network namespace")

// isolate returns done=true in a parent that has already run the benchmark
// in a child (exit with code); otherwise the caller runs the benchmark.
func isolate() (code int, done bool, err error) {
	if onlyLoopback() {
		if err := loopbackUp(); err != nil {
			return 0, false, fmt.Errorf("bench: bringing lo up: %w", err)
		}
		return 0, false, nil
	}
	if os.Getenv(childEnv) != "" {
		return 0, false, fmt.Errorf("%w: the re-executed child still sees other interfaces", errNotIsolated)
	}
	if os.Geteuid() != 0 {
		return 0, false, fmt.Errorf("%w: this one has interfaces besides lo and this user cannot create one; "+
			"run as root, or under a loopback-only namespace (e.g. /work/shared/tools/sandbox go run .)", errNotIsolated)
	}
	code, err = runIsolatedChild()
	if err != nil {
		return 0, false, fmt.Errorf("%w: %w", errNotIsolated, err)
	}
	return code, true, nil
}

// onlyLoopback reports whether every network interface is a loopback one.
func onlyLoopback() bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}

// loopbackUp sets lo up (a fresh namespace starts with it down).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	if ifr.Uint16()&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// runIsolatedChild runs this program again in a new network namespace and
// returns its exit code.
func runIsolatedChild() (int, error) {
	cmd := &exec.Cmd{
		Path:   "/proc/self/exe",
		Args:   os.Args,
		Env:    append(os.Environ(), childEnv+"=1"),
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWNET,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	// Pdeathsig follows the forking thread: keep it alive until the end.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() {
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
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}
