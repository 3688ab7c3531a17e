package netns

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
)

// RequireEnv names the environment variable that turns "cannot isolate" from
// a skip into a failure when set to a true value ("1", "true"). CI sets it.
const RequireEnv = "REFLECT_REQUIRE_NETNS"

// HostEnv names the environment variable that package netlab sets, to the
// namespace name, for processes it starts inside a lab host. A test binary
// started that way runs its tests in place and counts as isolated, provided
// the variable names the network namespace the process is actually in.
const HostEnv = "REFLECT_NETNS_HOST"

// sharedEnv marks a test binary started by an isolated one to share its
// namespace (see SharedEnv); its value is a marker as childEnv's, with the
// namespace they share.
const sharedEnv = "REFLECT_NETNS_SHARED"

// childEnv marks the re-executed child. Its value is "PPID:NETNS" with the
// parent's PID and network namespace (see markerFor).
const childEnv = "REFLECT_NETNS_CHILD"

// The outcome of RunTests. It is written before m.Run and only read after, so
// tests may read it from any goroutine.
var (
	isolated bool
	// reason says why the tests run in place without isolation; empty when
	// RunTests was not called.
	reason string
	// deliberate is true when running in place was chosen by the flags
	// (fuzzing, -test.list) rather than forced by missing privileges.
	deliberate bool
)

// RunTests runs the tests of m in an isolated network namespace when it can,
// and returns the exit code for os.Exit. See the package documentation.
//
// In the parent process it does not return: once the child has exited, it
// exits with the child's status at once (skipping exit hooks: the race
// detector's one-second pause at exit, coverage), having run no test itself.
// In the child, or when running in place, it returns m.Run(). So code after
// RunTests in TestMain (a goleak check, cleanup) runs once, in the process
// that ran the tests; code before it runs in the parent too.
func RunTests(m *testing.M) int {
	if code, done := prepare(); done {
		return code
	}
	return m.Run()
}

// Isolated reports whether the tests run in a network namespace that no
// packet can leave: the fresh namespace made by RunTests, or a lab host.
func Isolated() bool { return isolated }

// Require skips t unless the tests run isolated (see Isolated). When
// REFLECT_REQUIRE_NETNS=1 it fails t instead, except while fuzzing or listing,
// where running in place was asked for. Call it first in every test that uses
// mDNS or otherwise sends packets that must not leave the machine.
func Require(t testing.TB) {
	t.Helper()
	if isolated {
		return
	}
	msg := "netns: test needs an isolated network namespace: " + whyNot()
	if deliberate || !Required() {
		t.Skip(msg)
	}
	t.Fatal(msg + " (" + RequireEnv + " is set)")
}

func whyNot() string {
	if reason == "" {
		return "the package's TestMain does not call netns.RunTests"
	}
	return reason
}

// Required reports whether REFLECT_REQUIRE_NETNS asks for isolation, so that
// harnesses built on it fail instead of skipping.
func Required() bool {
	v, err := strconv.ParseBool(os.Getenv(RequireEnv))
	return err == nil && v
}

// inPlaceReason returns why the flags ask for the tests to run in place, or
// "". quiet is true when nothing should be printed about it. lookup returns a
// flag's value as text ("" when the flag is not defined).
func inPlaceReason(lookup func(name string) string) (why string, quiet bool) {
	switch {
	case lookup("test.fuzzworker") == "true":
		return "running as a fuzz worker (-test.fuzzworker), which must stay in the coordinator's namespace", true
	case lookup("test.fuzz") != "":
		return "fuzzing (-test.fuzz) runs in place: the fuzzing engine talks to its workers over inherited pipes", false
	case lookup("test.list") != "":
		return "listing tests (-test.list)", true
	}
	return "", false
}

// markerFor formats the child marker for a parent with the given PID and
// network namespace link text (e.g. "net:[4026531840]").
func markerFor(ppid int, ns string) string { return strconv.Itoa(ppid) + ":" + ns }

// parseMarker splits a child marker. ok is false when it is malformed.
func parseMarker(s string) (ppid int, ns string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			continue
		}
		p, err := strconv.Atoi(s[:i])
		if err != nil || p <= 0 || i+1 == len(s) {
			return 0, "", false
		}
		return p, s[i+1:], true
	}
	return 0, "", false
}

// notice prints the one line explaining why tests are not isolated.
func notice(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "netns: "+format+"\n", args...)
}

// OnlyLoopback reports whether every network interface this process sees
// is a loopback one: a namespace where nothing can reach a real network.
func OnlyLoopback() bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}
