//go:build linux

package netlab

import (
	"os"
	"syscall"
)

// procAttr makes a started process die with the thread that started it, so a
// crashed test leaves no node running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// tryLock takes an exclusive flock on f without waiting.
func tryLock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// fileID identifies a file, here a namespace (nsfs inode).
type fileID struct{ dev, ino uint64 }

// idOf returns the identity of the file at path, following symlinks.
func idOf(path string) (fileID, bool) {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return fileID{}, false
	}
	return fileID{st.Dev, st.Ino}, true
}

func killPID(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }
