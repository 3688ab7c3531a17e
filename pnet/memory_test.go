package pnet

import (
	"runtime/debug"
	"testing"

	"github.com/reflectmesh/reflect/internal/testutil"
)

// TestPassphraseReturnsArgonMemory checks that once FromPassphrase returns,
// Argon2id's working memory (argonMemory KiB) is no longer held by the
// heap, neither as a dead object awaiting a collection nor as a free span
// awaiting the scavenger. The secret is new, so Argon2id runs; the heap is
// emptied first, so that the block
// cannot reuse spans already counted. Not parallel: other tests'
// allocations would blur the figure.
func TestPassphraseReturnsArgonMemory(t *testing.T) {
	secret, err := GenerateSecret() // new on every run: not cached
	if err != nil {
		t.Fatal(err)
	}
	debug.FreeOSMemory()
	before := testutil.HeapResident()
	if _, err := FromPassphrase(secret); err != nil {
		t.Fatal(err)
	}
	after := testutil.HeapResident()
	const limit = argonMemory * 1024 / 2
	if after > before && after-before > limit {
		t.Fatalf("the heap holds %d KiB more after FromPassphrase (Argon2id uses %d KiB); want under %d KiB",
			(after-before)/1024, argonMemory, limit/1024)
	}
	t.Logf("heap resident: %d KiB before, %d KiB after", before/1024, after/1024)
}
