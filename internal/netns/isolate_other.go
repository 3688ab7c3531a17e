//go:build !linux

package netns

import (
	"errors"
	"flag"
	"runtime"
)

var errNotLinux = errors.New("network namespaces need Linux (this is " + runtime.GOOS + ")")

// Reexec is not available: network namespaces need Linux.
func Reexec(string) (int, error) { return 0, errNotLinux }

// SetupLoopback is not available: network namespaces need Linux.
func SetupLoopback() error { return errNotLinux }

// SharedEnv returns "": without network namespaces nothing is isolated.
func SharedEnv() string { return "" }

func prepare() (code int, done bool) {
	if !flag.Parsed() {
		flag.Parse()
	}
	why, quiet := inPlaceReason(func(name string) string {
		if f := flag.Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	})
	if why != "" {
		reason, deliberate = why, true
		if !quiet {
			notice("not isolating tests: %s; tests that need a network namespace will be skipped", why)
		}
		return 0, false
	}
	reason = "network namespaces need Linux (this is " + runtime.GOOS + ")"
	if Required() {
		notice("%s=1 but the tests cannot run in an isolated network namespace: %s", RequireEnv, reason)
		return 1, true
	}
	notice("not isolating tests: %s; tests that need a network namespace will be skipped", reason)
	return 0, false
}
