//go:build linux

package netns_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netns"
)

// helperEnv selects what TestHelperProcess does when the test binary runs
// itself (the os/exec helper-process pattern).
const helperEnv = "NETNS_TEST_HELPER"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for other tests")
	}
	fmt.Printf("helper: isolated=%v pid=%d\n", netns.Isolated(), os.Getpid())
	switch mode {
	case "netns":
		ns, err := os.Readlink("/proc/self/ns/net")
		fmt.Printf("helper: netns=%s err=%v\n", ns, err)
	case "pass":
	case "fail":
		t.Fatal("helper: failing on purpose")
	case "block":
		time.Sleep(time.Minute)
		t.Fatal("helper: not stopped within a minute")
	case "require":
		netns.Require(t)
		fmt.Println("helper: ran past Require")
	default:
		t.Fatalf("unknown helper mode %q", mode)
	}
}

// helper returns a command running this test binary's TestHelperProcess in
// the given mode, with extra test flags.
func helper(t *testing.T, mode string, flags ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	args := append([]string{"-test.run=^TestHelperProcess$"}, flags...)
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(cleanEnv(), helperEnv+"="+mode)
	return cmd
}

// cleanEnv is the environment without variables that would change how the
// helper runs (coverage output, a CI requirement), and without the race
// detector's one-second pause at a successful exit.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOCOVERDIR=") || strings.HasPrefix(kv, netns.RequireEnv+"=") || strings.HasPrefix(kv, "GORACE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("running helper: %v", err)
	return -1
}

func TestExitCodePropagates(t *testing.T) {
	netns.Require(t) // the helper re-executes itself again, which needs root
	for _, tc := range []struct {
		mode string
		want int
	}{{"pass", 0}, {"fail", 1}} {
		t.Run(tc.mode, func(t *testing.T) {
			out, err := helper(t, tc.mode).CombinedOutput()
			if got := exitCode(t, err); got != tc.want {
				t.Fatalf("exit code %d, want %d; output:\n%s", got, tc.want, out)
			}
			if !strings.Contains(string(out), "helper: isolated=true") {
				t.Fatalf("helper did not run isolated; output:\n%s", out)
			}
		})
	}
}

// A test binary started with SharedEnv runs in place, in its parent's
// namespace, and counts as isolated; without it, in one of its own.
func TestSharedEnv(t *testing.T) {
	netns.Require(t)
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, shared := range []bool{true, false} {
		cmd := helper(t, "netns")
		if shared {
			cmd.Env = append(cmd.Env, netns.SharedEnv())
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v; output:\n%s", err, out)
		}
		same := strings.Contains(string(out), "helper: netns="+own+" ")
		if same != shared || !strings.Contains(string(out), "helper: isolated=true") {
			t.Fatalf("shared %v: same namespace %v; output:\n%s", shared, same, out)
		}
	}
}

func TestFlagsReachChild(t *testing.T) {
	netns.Require(t)
	out, err := helper(t, "pass", "-test.v", "-test.count=3").CombinedOutput()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, out)
	}
	if n := strings.Count(string(out), "=== RUN   TestHelperProcess"); n != 3 {
		t.Fatalf("-test.v -test.count=3: %d runs, want 3; output:\n%s", n, out)
	}
}

func TestTimeoutFlagReachesChild(t *testing.T) {
	netns.Require(t)
	start := time.Now()
	out, err := helper(t, "block", "-test.timeout=300ms").CombinedOutput()
	if code := exitCode(t, err); code != 2 {
		t.Fatalf("exit code %d, want 2 (test timeout panic); output:\n%s", code, out)
	}
	if !strings.Contains(string(out), "test timed out after 300ms") {
		t.Fatalf("no timeout panic in output:\n%s", out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestSignalForwarded(t *testing.T) {
	netns.Require(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := helper(t, "block")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				t.Fatalf("reading helper output: %v", err)
			}
			_, pidText, _ := strings.Cut(strings.TrimSpace(line), "pid=")
			child, err := strconv.Atoi(pidText)
			if err != nil || child == cmd.Process.Pid {
				t.Fatalf("helper line %q: want the pid of a re-executed child", line)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			go io.Copy(io.Discard, stdout)
			code := exitCode(t, cmd.Wait())
			if want := 128 + int(sig); code != want {
				t.Fatalf("exit code %d, want %d (child killed by %v)", code, want, sig)
			}
			if err := syscall.Kill(child, 0); !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("child %d still exists after the parent exited (kill 0: %v)", child, err)
			}
		})
	}
}

func TestListRunsInPlace(t *testing.T) {
	netns.Require(t)
	cmd := helper(t, "pass")
	cmd.Args = []string{cmd.Args[0], "-test.list=^TestHelper"}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	if string(out) != "TestHelperProcess\n" || strings.Contains(stderr.String(), "netns:") {
		t.Fatalf("stdout %q, stderr %q; want the test name and no notice", out, stderr.String())
	}
}

// TestNotPermitted runs the helper as an unprivileged user, who cannot create
// a network namespace: tests run in place and Require skips, or, with
// REFLECT_REQUIRE_NETNS=1, the run fails.
func TestNotPermitted(t *testing.T) {
	netns.Require(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	exe := copyExecutable(t)
	const nobody = 65534
	run := func(env ...string) (string, int) {
		cmd := helper(t, "require", "-test.v")
		cmd.Path, cmd.Args[0] = exe, exe
		cmd.Dir = filepath.Dir(exe)
		cmd.Env = append(cmd.Env, env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		out, err := cmd.CombinedOutput()
		return string(out), exitCode(t, err)
	}

	out, code := run()
	if code != 0 {
		t.Fatalf("exit code %d, want 0; output:\n%s", code, out)
	}
	for _, want := range []string{
		"netns: not isolating tests: creating a network namespace needs root or CAP_SYS_ADMIN, running as uid 65534",
		"helper: isolated=false",
		"--- SKIP: TestHelperProcess",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "netns:") != 2 { // the notice and the skip message
		t.Errorf("want one notice line and one skip message:\n%s", out)
	}

	out, code = run(netns.RequireEnv + "=1")
	if code == 0 || !strings.Contains(out, netns.RequireEnv+"=1 but the tests cannot run in an isolated network namespace") ||
		strings.Contains(out, "helper:") {
		t.Fatalf("with %s=1: exit code %d, want non-zero before any test runs; output:\n%s", netns.RequireEnv, code, out)
	}
}

// copyExecutable copies the test binary where an unprivileged user can run it.
func copyExecutable(t *testing.T) string {
	t.Helper()
	src, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != filepath.Dir(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		if d == os.TempDir() {
			break
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(dir, filepath.Base(src))
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}
