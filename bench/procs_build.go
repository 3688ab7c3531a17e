package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// participantPkg holds the participant binaries of the -procs mode, one
// small program per system so that a process's memory is that system's:
// reflect-node, reflect-store (a node with the store), nats-client,
// redis-client and nats-server.
const participantPkg = "github.com/reflectmesh/reflect/bench/participant/cmd"

// participantBinaries are the binaries' names.
var participantBinaries = []string{"reflect-node", "reflect-store", "nats-client", "redis-client", "nats-server"}

// errBuild is a participant binary that could not be built or found.
var errBuild = errors.New("participant binaries")

// buildParticipants builds the participant binaries into a new temporary
// directory with `go build` (this module, its go.sum; the build cache
// makes it quick after the first time) and returns the directory; the
// caller removes it. dir, if not empty, is used as it is instead: a
// directory that already holds them (-participants).
func buildParticipants(ctx context.Context, dir string) (bin string, cleanup func(), err error) {
	if dir != "" {
		for _, b := range participantBinaries {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				return "", nil, fmt.Errorf("%w: %w", errBuild, err)
			}
		}
		return dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "bench-participants-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { _ = os.RemoveAll(tmp) }
	args := []string{"build", "-o", tmp + string(filepath.Separator)}
	for _, b := range participantBinaries {
		args = append(args, participantPkg+"/"+b)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("%w: go %v: %w", errBuild, args, err)
	}
	return tmp, cleanup, nil
}
