package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	netnsDir = "/run/netns"          // where `ip netns add` mounts namespaces
	lockDir  = "/run/reflect-netlab" // one lock file per living lab
)

var (
	staleOnce sync.Once
	// labNS matches the namespaces of a lab: the lab's name, then -br or -hN.
	labNS = regexp.MustCompile(`^(` + namePrefix + `[0-9a-f]{6})-(br|h[0-9]+)$`)
)

// lockLab creates and locks the lab's lock file. The lock lives as long as
// the file stays open in this process: the kernel drops it when the process
// dies, however it dies, which is how CleanupStale tells stale labs.
func lockLab(name string) (*os.File, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(lockDir, name+".lock"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("netlab: lock for lab %s: %w", name, err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("netlab: locking %s: %w", f.Name(), err)
	}
	return f, nil
}

func unlockLab(name string, f *os.File) error {
	err := os.Remove(filepath.Join(lockDir, name+".lock"))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, f.Close())
}

// CleanupStale removes what labs of crashed processes left behind: for every
// lab whose namespaces exist in /run/netns but whose owner no longer holds
// its lock, it kills the processes in those namespaces and deletes them. It
// returns the namespaces it deleted. Labs of living processes, in this
// process or another, are left alone. New and Open call it once per process.
func CleanupStale() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	labs := map[string][]string{}
	for _, e := range entries {
		if m := labNS.FindStringSubmatch(e.Name()); m != nil {
			labs[m[1]] = append(labs[m[1]], e.Name())
		}
	}
	var removed []string
	var errs []error
	for name, namespaces := range labs {
		lock, live := claimStale(name)
		if live {
			continue
		}
		err := killNamespaces(namespaces, 5*time.Second)
		if err == nil {
			err = deleteNamespaces(namespaces)
		}
		if err != nil {
			errs = append(errs, err)
		} else {
			removed = append(removed, namespaces...)
		}
		if lock != nil {
			errs = append(errs, unlockLab(name, lock))
		}
	}
	return removed, errors.Join(errs...)
}

// claimStale reports whether lab name's owner is alive. If not, it returns
// the lab's lock file locked by us (nil if there is none).
func claimStale(name string) (lock *os.File, live bool) {
	f, err := os.OpenFile(filepath.Join(lockDir, name+".lock"), os.O_RDWR, 0)
	if err != nil {
		return nil, false // no lock file: the owner died before or after holding it
	}
	if err := tryLock(f); err != nil {
		f.Close()
		return nil, true
	}
	return f, false
}

// killNamespaces SIGKILLs every process whose network namespace is one of the
// given named namespaces, and waits up to d for them to be gone.
func killNamespaces(names []string, d time.Duration) error {
	targets := map[fileID]bool{}
	for _, n := range names {
		if id, ok := idOf(filepath.Join(netnsDir, n)); ok {
			targets[id] = true
		}
	}
	if len(targets) == 0 {
		return nil
	}
	deadline := time.Now().Add(d)
	for {
		var pids []int
		procs, err := os.ReadDir("/proc")
		if err != nil {
			return fmt.Errorf("netlab: %w", err)
		}
		for _, e := range procs {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			// A zombie has no namespaces left, so it is not found again.
			if id, ok := idOf("/proc/" + e.Name() + "/ns/net"); ok && targets[id] {
				pids = append(pids, pid)
			}
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netlab: processes %v still in namespaces %s after SIGKILL", pids, strings.Join(names, " "))
		}
		for _, pid := range pids {
			killPID(pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deleteNamespaces deletes the named namespaces, ignoring those that do not
// exist.
func deleteNamespaces(names []string) error {
	var script strings.Builder
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(netnsDir, n)); err == nil {
			fmt.Fprintf(&script, "netns delete %s\n", n)
		}
	}
	if script.Len() == 0 {
		return nil
	}
	return run(context.Background(), script.String(), "ip", "-force", "-batch", "-")
}
