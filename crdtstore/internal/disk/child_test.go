package disk

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Child processes: the test binary re-executed with childEnv set to a mode;
// the directory and durability come in childDirEnv and childDurEnv.
const (
	childEnv    = "REFLECT_DISK_CHILD"
	childDirEnv = "REFLECT_DISK_DIR"
	childDurEnv = "REFLECT_DISK_DURABILITY"
	childKeyEnv = "REFLECT_DISK_FIRST" // first record number of the "write" child
	childGoros  = 4                    // writer goroutines in the "write" child
	childValLen = 200                  // bytes per record in the "write" child
)

func runChild(mode string) int {
	dir := os.Getenv(childDirEnv)
	dur := Crash
	if os.Getenv(childDurEnv) == "power" {
		dur = Power
	}
	switch mode {
	case "open": // report what Open says, then exit
		db, err := Open(dir, Options{Durability: dur})
		switch {
		case errors.Is(err, ErrLocked):
			fmt.Printf("locked: %v\n", err)
		case err != nil:
			fmt.Printf("error: %v\n", err)
		default:
			fmt.Println("opened")
			db.Close()
		}
		return 0
	case "write": // commit records until killed; print each acknowledged one
		db, err := Open(dir, Options{Durability: dur})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		first, _ := strconv.Atoi(os.Getenv(childKeyEnv))
		fmt.Println("ready")
		var out sync.Mutex
		var wg sync.WaitGroup
		for g := range childGoros {
			wg.Go(func() {
				for i := first; ; i++ {
					b := db.NewBatch()
					b.Put('k', childKey(g, i), childValue(g, i))
					if err := db.Enqueue(b).Wait(); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(1)
					}
					out.Lock()
					fmt.Printf("ack %d %d\n", g, i) // os.Stdout is unbuffered: one write(2)
					out.Unlock()
				}
			})
		}
		wg.Wait()
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
	return 2
}

func childKey(g, i int) string { return fmt.Sprintf("g%d/%09d", g, i) }

func childValue(g, i int) []byte {
	v := []byte(strings.Repeat(fmt.Sprintf("%d.%d;", g, i), childValLen))
	return v[:childValLen]
}

// startChild starts the test binary in mode on dir; its stdout is returned
// as a line scanner. The caller owns cmd (and kills it by its PID).
func startChild(t *testing.T, mode, dir string, dur Durability, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childDirEnv+"="+dir, childDurEnv+"="+dur.String())
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}
