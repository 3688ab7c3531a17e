//go:build unix

package disk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive flock(2) on dir/lockName. flock locks belong to
// the open file description, so a second open of the same directory fails
// both from another process and from this one. The kernel drops the lock when
// the process dies, kill -9 included.
func lockDir(dir string) (*os.File, error) {
	name := filepath.Join(dir, lockName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("disk: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is open in another store (this or another process)", ErrLocked, dir)
		}
		return nil, fmt.Errorf("disk: lock %s: %w", name, err)
	}
	return f, nil
}

func unlockDir(f *os.File) error { return f.Close() }
