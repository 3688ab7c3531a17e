package ormap

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps the core pure: only the standard library, nothing
// that reaches the network (transitively), and no direct use of clocks,
// randomness, logging or the OS.
func TestDependencies(t *testing.T) {
	list := func(format string) []string {
		out, err := exec.Command("go", "list", "-deps", "-f", format, ".").Output()
		if err != nil {
			t.Skipf("go list unavailable: %v", err)
		}
		return strings.Fields(string(out))
	}
	const self = "github.com/reflectmesh/reflect/crdtstore/ormap"
	for _, p := range list("{{if not .Standard}}{{.ImportPath}}{{end}}") {
		if p != self {
			t.Errorf("depends on non-standard package %s", p)
		}
	}
	for _, p := range list("{{.ImportPath}}") {
		if p == "net" || strings.HasPrefix(p, "net/") || strings.Contains(p, "libp2p") {
			t.Errorf("depends on %s", p)
		}
	}
	out, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	imports := strings.Fields(string(out))
	for _, f := range []string{"math/rand", "math/rand/v2", "time", "os", "log", "log/slog", "crypto/rand", "sync", "unsafe"} {
		if slices.Contains(imports, f) {
			t.Errorf("imports %s", f)
		}
	}
	t.Logf("imports %v", imports)
}
