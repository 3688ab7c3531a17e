package disk

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

func TestLockedInProcessAndAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir, Options{})
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Errorf("second Open in this process: %v, want ErrLocked naming %s", err, dir)
	}
	childOpen := func() string {
		cmd, out := startChild(t, "open", dir, Crash)
		out.Scan()
		line := out.Text()
		cmd.Wait()
		return line
	}
	if line := childOpen(); !strings.HasPrefix(line, "locked: ") || !strings.Contains(line, dir) {
		t.Errorf("Open from another process: %q, want ErrLocked naming %s", line, dir)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if line := childOpen(); line != "opened" {
		t.Errorf("Open from another process after Close: %q", line)
	}
	db = openT(t, dir, Options{})
	db.Close()
}

// setRaw writes key=value into dir with pebble directly, bypassing the
// format check.
func setRaw(t *testing.T, dir string, key, value []byte) {
	t.Helper()
	pdb, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: pebbleLogger{discard}})
	if err != nil {
		t.Fatal(err)
	}
	if value == nil {
		err = pdb.Delete(key, pebble.Sync)
	} else {
		err = pdb.Set(key, value, pebble.Sync)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := pdb.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFormatRecord(t *testing.T) {
	mk := func(t *testing.T) string {
		dir := t.TempDir()
		db := openT(t, dir, Options{})
		b := db.NewBatch()
		b.Put('k', "a", []byte("1"))
		if err := db.Enqueue(b).Wait(); err != nil {
			t.Fatal(err)
		}
		db.Close()
		return dir
	}
	cases := []struct {
		name  string
		value []byte // nil: delete the format record
		want  error
	}{
		{"future version", encodeFormat(formatVersion + 1), ErrFormat},
		{"version 0", encodeFormat(0), ErrFormat},
		{"garbage", []byte("not a format record"), ErrCorrupt},
		{"missing with records", nil, ErrFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := mk(t)
			setRaw(t, dir, formatKey(), c.value)
			db, err := Open(dir, Options{})
			if !errors.Is(err, c.want) {
				if db != nil {
					db.Close()
				}
				t.Fatalf("Open: %v, want %v", err, c.want)
			}
			t.Logf("Open: %v", err)
			// The lock was released: a valid directory opens in this process.
			setRaw(t, dir, formatKey(), encodeFormat(formatVersion))
			db = openT(t, dir, Options{})
			db.Close()
		})
	}
}

// buildDir commits n one-record batches r00000.. in order and closes.
func buildDir(t *testing.T, n int, compact bool) string {
	t.Helper()
	dir := t.TempDir()
	db := openT(t, dir, Options{})
	for i := range n {
		b := db.NewBatch()
		b.Put('k', fmt.Sprintf("r%05d", i), []byte(strings.Repeat("v", 100)))
		if err := db.Enqueue(b).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if compact {
		if err := db.Compact(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
	}
	return dst
}

// newest returns the path of the newest file in dir ending in ext.
func newest(t *testing.T, dir, ext string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
	var sized []string
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
			sized = append(sized, p)
		}
	}
	if len(sized) == 0 {
		t.Fatalf("no non-empty %s file in %s", ext, dir)
	}
	slices.Sort(sized)
	return sized[len(sized)-1]
}

// checkPrefixOrCorrupt opens dir: it must either return ErrCorrupt, or open
// with the records r00000.. forming a prefix of the n written, each intact.
// It returns how many records survived (-1 for ErrCorrupt).
func checkPrefixOrCorrupt(t *testing.T, dir string, n int) int {
	t.Helper()
	db, err := Open(dir, Options{})
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want success or ErrCorrupt", err)
		}
		return -1
	}
	defer db.Close()
	i := 0
	err = db.Scan(func(kind byte, name string, data []byte) error {
		if want := fmt.Sprintf("r%05d", i); kind != 'k' || name != want || string(data) != strings.Repeat("v", 100) {
			return fmt.Errorf("record %d is %c%s=%q, want %s (records must be an intact prefix)", i, kind, name, clip(data), want)
		}
		i++
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return -1
		}
		t.Fatal(err)
	}
	if i > n {
		t.Fatalf("%d records, only %d written", i, n)
	}
	return i
}

// A damaged WAL (torn tail, garbage appended, a flipped byte) either opens
// with an intact prefix of the committed records or gives ErrCorrupt; never
// a panic. pebble tolerates a torn or garbage tail of the newest WAL
// (prefix) and reports a bad chunk followed by valid ones as corruption.
func TestDamagedWAL(t *testing.T) {
	const n = 2000
	base := buildDir(t, n, false)
	walLen := func(dir string) int64 {
		fi, err := os.Stat(newest(t, dir, ".log"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}(base)
	type damage func(p string) error
	truncTo := func(size int64) damage { return func(p string) error { return os.Truncate(p, size) } }
	appendBytes := func(b []byte) damage {
		return func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write(b)
			return err
		}
	}
	flipAt := func(off int64) damage {
		return func(p string) error {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			b := []byte{0}
			if _, err := f.ReadAt(b, off); err != nil {
				return err
			}
			b[0] ^= 0x5a
			_, err = f.WriteAt(b, off)
			return err
		}
	}
	garbage := []byte(strings.Repeat("\xde\xad\xbe\xef garbage ", 500))
	cases := []struct {
		name string
		d    damage
	}{
		{"truncated to 0", truncTo(0)},
		{"truncated to 7", truncTo(7)},
		{"truncated mid", truncTo(walLen / 2)},
		{"truncated by 1", truncTo(walLen - 1)},
		{"truncated by 100", truncTo(walLen - 100)},
		{"garbage appended", appendBytes(garbage)},
		{"zeros appended", appendBytes(make([]byte, 64<<10))},
		{"byte flipped at 3/4", flipAt(walLen * 3 / 4)},
		{"byte flipped at 10", flipAt(10)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, base)
			if err := c.d(newest(t, dir, ".log")); err != nil {
				t.Fatal(err)
			}
			logOutcome(t, checkPrefixOrCorrupt(t, dir, n), n)
		})
	}
	// An older WAL was closed cleanly, so pebble treats damage to it as
	// corruption, except an older WAL truncated to 0 bytes: pebble cannot
	// tell it from an empty one and opens without its records (a hole, not a
	// prefix). Neither a crash nor a power loss does that (a WAL is fsynced
	// when closed, see walNoSyncFS); only outside damage does.
	logs, _ := filepath.Glob(filepath.Join(base, "*.log"))
	slices.Sort(logs)
	if len(logs) < 2 {
		t.Logf("only %d WAL file(s); older-WAL cases skipped", len(logs))
		return
	}
	for _, c := range cases[1:5] {
		t.Run("older WAL "+c.name, func(t *testing.T) {
			dir := copyDir(t, base)
			if err := c.d(filepath.Join(dir, filepath.Base(logs[0]))); err != nil {
				t.Fatal(err)
			}
			logOutcome(t, checkPrefixOrCorrupt(t, dir, n), n)
		})
	}
}

// A flipped byte in an sstable gives ErrCorrupt at Open or Scan, or (if the
// byte is unused) a store whose records are all intact; never a panic.
func TestDamagedSSTable(t *testing.T) {
	const n = 2000
	base := buildDir(t, n, true)
	fi, err := os.Stat(newest(t, base, ".sst"))
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	corrupt := 0
	for _, off := range []int64{0, 100, size / 4, size / 2, size * 3 / 4, size - 60, size - 20, size - 1} {
		t.Run(fmt.Sprint("offset ", off), func(t *testing.T) {
			dir := copyDir(t, base)
			p := newest(t, dir, ".sst")
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := []byte{0}
			f.ReadAt(b, off)
			b[0] ^= 0x5a
			f.WriteAt(b, off)
			f.Close()
			got := checkPrefixOrCorrupt(t, dir, n)
			switch got {
			case -1:
				corrupt++
				t.Logf("ErrCorrupt")
			case n:
				t.Logf("all %d records intact", n)
			default:
				t.Errorf("opened with %d of %d records and no error", got, n)
			}
		})
	}
	if corrupt == 0 {
		t.Error("no flipped byte was reported as corruption")
	}
}

// A corrupt sstable block found by a read after Open: the read returns
// ErrCorrupt, Stats counts it, the logger gets one Error line, and the
// process goes on (pebble's default would be Logger.Fatalf).
func TestCorruptionCountedAndLogged(t *testing.T) {
	const n = 2000
	dir := copyDir(t, buildDir(t, n, true))
	p := newest(t, dir, ".sst")
	fi, _ := os.Stat(p)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	f.ReadAt(b, fi.Size()/2)
	b[0] ^= 0x5a
	f.WriteAt(b, fi.Size()/2)
	f.Close()
	var logBuf strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logBuf}, nil))
	db, err := Open(dir, Options{Logger: log})
	if err != nil {
		t.Fatalf("Open: %v (the format record's block is intact)", err)
	}
	defer db.Close()
	for range 3 {
		if err := db.Scan(func(byte, string, []byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Scan: %v, want ErrCorrupt", err)
		}
	}
	if c := db.Stats().Corruptions; c < 3 {
		t.Errorf("Stats.Corruptions = %d after 3 corrupt scans", c)
	}
	mu.Lock()
	out := logBuf.String()
	mu.Unlock()
	if got := strings.Count(out, "level=ERROR msg=\"disk: corrupt data\""); got != 1 {
		t.Errorf("%d corruption log lines, want 1 (rate-limited):\n%s", got, out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// logOutcome logs what checkPrefixOrCorrupt found: got records of n, or
// ErrCorrupt (got < 0).
func logOutcome(t *testing.T, got, n int) {
	t.Helper()
	if got < 0 {
		t.Logf("ErrCorrupt")
	} else {
		t.Logf("opened with %d of %d records", got, n)
	}
}
