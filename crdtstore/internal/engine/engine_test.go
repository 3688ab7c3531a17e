package engine

import (
	"errors"
	"testing"
)

func TestOpenNeedsARegisteredEngine(t *testing.T) {
	if Registered() {
		t.Fatal("an engine is registered in a test binary that imports none")
	}
	if _, err := Open(t.TempDir(), Options{}); !errors.Is(err, ErrNone) {
		t.Fatalf("Open with no engine: %v, want ErrNone", err)
	}
	var got Options
	Register(func(dir string, o Options) (DB, error) { got = o; return nil, errors.New("opened") })
	defer registered.Store(nil)
	if _, err := Open("d", Options{Fsync: true}); err == nil || err.Error() != "opened" || !got.Fsync || !Registered() {
		t.Fatalf("Open with an engine: %v (options %+v)", err, got)
	}
}
