package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/reflectmesh/reflect/internal/netns"
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
	if netns.OnlyLoopback() {
		if err := netns.SetupLoopback(); err != nil {
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
	code, err = netns.Reexec(childEnv + "=1")
	if err != nil {
		return 0, false, fmt.Errorf("%w: %w", errNotIsolated, err)
	}
	return code, true, nil
}
