package disk

import (
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// walNoSyncFS is the file system of Crash mode: it is vfs.Default except that
// the WAL files (*.log) do not fsync. A commit with pebble.Sync then returns
// once the WAL record has been written to the OS with write(2) (so it
// survives the death of the process) without waiting for the disk. Sstables,
// the MANIFEST, OPTIONS and directories keep their real fsyncs, and a WAL
// file is fsynced when pebble closes it (at rotation and at Close), so a
// power loss can lose only a tail of the newest WAL: the records that
// survive are a prefix of the committed ones.
//
// pebble.NoSync is not a substitute: it leaves acknowledged records in a
// 32 KiB in-memory block of the log writer, and a kill -9 loses them
// (measured: up to thousands of acknowledged writes).
type walNoSyncFS struct{ vfs.FS }

type noSyncFile struct{ vfs.File }

func (noSyncFile) Sync() error                { return nil }
func (noSyncFile) SyncData() error            { return nil }
func (noSyncFile) SyncTo(int64) (bool, error) { return true, nil }

// Close fsyncs: an older WAL is then on disk before any newer one is
// written, which keeps a power-loss loss a prefix.
func (f noSyncFile) Close() error {
	serr := f.File.Sync()
	if err := f.File.Close(); err != nil {
		return err
	}
	return serr
}

func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

func wrapWAL(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !isWAL(name) {
		return f, err
	}
	return noSyncFile{f}, nil
}

func (fs walNoSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return wrapWAL(name, f, err)
}

func (fs walNoSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, o ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, o...)
	return wrapWAL(name, f, err)
}

func (fs walNoSyncFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return wrapWAL(newname, f, err)
}
