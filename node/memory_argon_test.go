package node

import (
	"runtime/debug"
	"testing"

	"github.com/reflectmesh/reflect/internal/testutil"
	"github.com/reflectmesh/reflect/pnet"
)

// argonKiB is pnet's Argon2id memory cost (m = 19 MiB, see pnet's doc).
const argonKiB = 19 * 1024

// TestNewReturnsArgonMemory checks that a node started with a passphrase
// does not keep Argon2id's working memory in its heap once New returns
// (it did, as a dead block, until a collection that an idle node may not
// run for minutes). A started node itself holds well under half of it.
// Not parallel: other tests' allocations would blur the figure.
func TestNewReturnsArgonMemory(t *testing.T) {
	secret, err := pnet.GenerateSecret() // new: pnet has not cached it
	if err != nil {
		t.Fatal(err)
	}
	debug.FreeOSMemory()
	before := testutil.HeapResident()
	startNode(t, localConfig(secret))
	after := testutil.HeapResident()
	const limit = argonKiB * 1024 / 2
	if after > before && after-before > limit {
		t.Fatalf("the heap holds %d KiB more after New (Argon2id uses %d KiB); want under %d KiB",
			(after-before)/1024, argonKiB, limit/1024)
	}
	t.Logf("heap resident: %d KiB before New, %d KiB after", before/1024, after/1024)
}
