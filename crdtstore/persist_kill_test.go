package crdtstore_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/crdtstore/crdttest"
	"github.com/reflectmesh/reflect/crdtstore/internal/disk"
)

// killChildDir, set in a child's environment, makes TestPersistKillChild
// write into that directory until killed.
const killChildDir = "REFLECT_TEST_PERSIST_CHILD_DIR"

// TestPersistKillChild is the child of TestPersistKill9: it writes keys,
// deleting every tenth after writing it, and prints each write as soon as
// it returned ("set N", "del N"), until it is killed. It skips unless run
// as that child.
func TestPersistKillChild(t *testing.T) {
	dir := os.Getenv(killChildDir)
	if dir == "" {
		t.Skip("the child of TestPersistKill9")
	}
	o := crdtstore.Options{Dir: dir, SyncInterval: -1, Fsync: os.Getenv(killChildDir+"_FSYNC") == "1"}
	s, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("child"), o)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := s.Set("k/"+strconv.Itoa(i), []byte(strconv.Itoa(i))); err != nil {
			fmt.Fprintln(w, "error", err)
			break
		}
		fmt.Fprintln(w, "set", i)
		if i%10 == 0 {
			if err := s.Delete("k/" + strconv.Itoa(i)); err != nil {
				fmt.Fprintln(w, "error", err)
				break
			}
			fmt.Fprintln(w, "del", i)
		}
		if err := w.Flush(); err != nil { // every ack leaves before the next write
			break
		}
	}
	os.Exit(0)
}

// A store killed with SIGKILL in the middle of its writes has, once
// reopened, every write that had returned (values present, deletes
// absent): the default mode survives a process crash. Three rounds, and
// one with Fsync.
func TestPersistKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: kills child processes")
	}
	for round, fsync := range []bool{false, false, false, true} {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestPersistKillChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), killChildDir+"="+dir)
		// The test binary re-executes itself into a network namespace
		// (netns.RunTests): the writer is a grandchild. Kill the group.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if fsync {
			cmd.Env = append(cmd.Env, killChildDir+"_FSYNC=1")
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		set, del := map[int]bool{}, map[int]bool{}
		sc := bufio.NewScanner(out)
		killed := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && (f[0] == "set" || f[0] == "del") {
				n, _ := strconv.Atoi(f[1])
				if f[0] == "set" {
					set[n] = true
				} else {
					del[n] = true
				}
			} else if len(f) > 0 && f[0] == "error" {
				t.Fatalf("round %d: child: %s", round, sc.Text())
			}
			if !killed && len(set) >= 3000 {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group of the PID we started; acks already printed are read on
				killed = true
			}
		}
		_ = cmd.Wait()
		if !killed {
			t.Fatalf("round %d: the child ended after %d writes without being killed", round, len(set))
		}
		s := openAfterKill(t, dir)
		lost, resurrected := 0, 0
		for n := range set {
			_, ok := s.Get("k/" + strconv.Itoa(n))
			switch {
			case del[n] && ok:
				resurrected++
			case !del[n] && n%10 != 0 && !ok:
				lost++
			}
		}
		if lost > 0 || resurrected > 0 {
			t.Errorf("round %d (fsync %v): of %d acknowledged writes, %d lost, %d deleted ones back", round, fsync, len(set), lost, resurrected)
		}
		t.Logf("round %d (fsync %v): %d acknowledged writes, %d keys after reopening", round, fsync, len(set), s.Len())
		closeStore(t, s)
	}
}

// openAfterKill opens the killed child's directory, waiting (at most 10 s)
// for its lock to go with the last process of the group.
func openAfterKill(t *testing.T, dir string) *crdtstore.Store {
	t.Helper()
	o := fastOptions()
	o.Dir = dir
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s, err := crdtstore.OpenTransport(crdttest.NewNetwork().Transport("child"), o)
		if err == nil {
			t.Cleanup(func() { closeStore(t, s) })
			return s
		}
		if !errors.Is(err, disk.ErrLocked) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}
