// Package netns makes a test binary isolate itself in a fresh network
// namespace before any test runs.
//
// Why: Reflect's tests open real sockets and run mDNS, which multicasts to
// 224.0.0.251 and ff02::fb on every interface it finds. On a developer's
// machine or a CI runner that would put test packets on a real network. No
// test packet may leave the machine, so every test package that opens sockets
// runs its tests in a network namespace of its own whose only interface is
// loopback (up, multicast on, 224.0.0.0/4 routed to it). There is no default
// route there: a stray address fails with "network is unreachable" instead of
// going out.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(netns.RunTests(m)) }
//
// and call [Require] first in tests that use mDNS or otherwise depend on the
// isolation.
//
// # How the re-exec works
//
// [RunTests] in the process that `go test` started (the parent) re-executes
// /proc/self/exe with the same os.Args, environment, stdin, stdout and stderr,
// as a child created with CLONE_NEWNET (no dependency on unshare(1)). Every
// -test.* flag therefore reaches the child untouched: -test.run, -test.v
// (including test2json), -test.count, -test.timeout, -test.bench,
// -test.coverprofile, -test.gocoverdir, -test.testlogfile, profiles and
// custom flags all take effect in the child, the only process that calls
// m.Run. The parent forwards SIGINT, SIGTERM, SIGQUIT and SIGHUP (what
// `go test -timeout` and Ctrl-C send) to the child, the child dies with the
// parent (PR_SET_PDEATHSIG), and the parent exits with the child's exit
// status (128+N if the child died of signal N) without returning from
// RunTests: code after RunTests in TestMain runs only where tests ran.
//
// The child recognises itself by an environment variable naming its parent's
// PID and network namespace, and removes it from its environment, so a test
// that runs the test binary again (the os/exec helper-process pattern) gets a
// fresh namespace of its own. Processes that package netlab starts inside a
// lab host carry [HostEnv]; when it names the namespace the process is really
// in, RunTests runs the tests in place and counts them as isolated without
// touching that namespace's interfaces.
//
// # When it does not isolate
//
// The parent runs the tests in place, with [Isolated] false, when the flags
// ask for fuzzing (-test.fuzz, -test.fuzzworker: the fuzzing engine talks to
// its workers over inherited pipes) or for -test.list. It also runs them in
// place when it cannot create a namespace (not Linux, not root, no
// CAP_SYS_ADMIN, clone refused); then it prints one line to stderr saying why,
// and tests that call [Require] skip. With REFLECT_REQUIRE_NETNS=1 (CI sets
// it) that situation is a failure instead: RunTests returns a non-zero code
// and Require fails the test.
package netns
