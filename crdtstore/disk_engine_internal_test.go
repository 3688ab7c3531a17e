package crdtstore

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// Without the engine imported, a Dir is a configuration error that names
// the package to import.
func TestDirNeedsTheDiskEngine(t *testing.T) {
	defer func(f func() bool) { diskRegistered = f }(diskRegistered)
	diskRegistered = func() bool { return false }
	err := Options{Dir: t.TempDir()}.Validate()
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), diskPackage) {
		t.Fatalf("Dir without the engine: %v; want ErrConfig naming %s", err, diskPackage)
	}
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("a store in memory needs no engine: %v", err)
	}
}

// A program that keeps its stores in memory does not link the engine:
// package crdtstore does not depend on pebble, package disk does.
func TestMemoryStoreLinksNoEngine(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	deps := func(pkg string) string {
		out, err := exec.Command(gobin, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		return string(out)
	}
	if d := deps("."); strings.Contains(d, "pebble") {
		t.Errorf("crdtstore depends on pebble:\n%s", d)
	}
	if d := deps("./disk"); !strings.Contains(d, "github.com/cockroachdb/pebble/v2\n") {
		t.Errorf("crdtstore/disk does not depend on pebble:\n%s", d)
	}
}
