package node

import (
	"context"
	"testing"
	"time"
)

// A broadcast made just before Close reaches a peer.
func TestBroadcastThenCloseArrives(t *testing.T) {
	b := startNode(t, localConfig(testKey))
	got := make(chan struct{}, 1)
	if _, err := b.Subscribe("chat", func(map[string]any) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	cfg := localConfig(testKey)
	cfg.BootstrapPeers = []string{b.Addrs()[0].String()}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.Broadcast(ctx, "chat", map[string]any{"text": "last words"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatalf("the broadcast made before Close was lost; sender stats %+v, receiver %+v", a.PubSub().Stats(), b.PubSub().Stats())
	}
}
