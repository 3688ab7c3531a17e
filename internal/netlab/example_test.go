//go:build linux

package netlab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/internal/netlab"
)

// A fault test: three nodes, a partition, a heal. The node program prints
// "ready" when it has started and "peers N" when it sees N peers (a made-up
// protocol for the example).
func Example() {
	var t *testing.T // the test's
	lab := netlab.New(t, 3)
	var nodes []*netlab.Proc
	for _, h := range lab.Hosts() {
		p, err := h.Start(t.Context(), "/path/to/reflect-node", "-listen", h.IP().String()+":4001")
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, p)
	}
	waitFor := func(p *netlab.Proc, line string, d time.Duration) {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		if _, err := p.WaitLine(ctx, func(l string) bool { return strings.HasPrefix(l, line) }); err != nil {
			t.Fatal(err) // the error carries the node's exit status and stderr
		}
	}
	waitFor(nodes[0], "peers 2", 5*time.Second)

	if err := lab.Partition([]int{1}, []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	// ... write on both sides ...
	if err := lab.Heal(); err != nil {
		t.Fatal(err)
	}
	waitFor(nodes[0], "peers 2", 5*time.Second)

	// kill -9 and restart host 3's node
	nodes[2].Kill()
	if _, err := lab.Host(3).Start(t.Context(), "/path/to/reflect-node"); err != nil {
		t.Fatal(err)
	}
}
