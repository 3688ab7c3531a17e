//go:build !unix

package disk

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir on systems without flock(2) creates the lock file exclusively; it is
// removed at Close. A process that died leaves it behind, and the directory
// stays locked until an operator removes the file named in the error.
func lockDir(dir string) (*os.File, error) {
	name := filepath.Join(dir, lockName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if os.IsExist(err) {
		return nil, fmt.Errorf("%w: %s is open in another store (or a dead one left %s)", ErrLocked, dir, name)
	}
	if err != nil {
		return nil, fmt.Errorf("disk: lock %s: %w", name, err)
	}
	return f, nil
}

func unlockDir(f *os.File) error {
	name := f.Name()
	err := f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}
