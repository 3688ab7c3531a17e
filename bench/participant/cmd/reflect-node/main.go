// Command reflect-node is one Reflect node of the bench's -procs mode
// (package reflectnode: defaults, loopback only, mDNS off, raw-byte
// Publish and Subscribe), driven by the bench over stdin and stdout
// (package participant). It links no store: its memory is a pub/sub
// node's; cmd/reflect-store is the node with the store.
package main

import (
	"context"
	"os"

	"github.com/reflectmesh/reflect/bench/participant"
	"github.com/reflectmesh/reflect/bench/participant/reflectnode"
)

func main() {
	os.Exit(participant.Main("reflect-node", func(_ context.Context, f participant.Flags) (participant.Member, error) {
		return reflectnode.Open(f.Key)
	}))
}
