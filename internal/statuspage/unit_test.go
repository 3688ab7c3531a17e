package statuspage

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/pubsub"
)

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.0.0.1": true, "127.1.2.3:80": true,
		"localhost:8080": true, "LocalHost": true, "[::1]:8080": true, "::1": true,
		"": false, ":8080": false, "0.0.0.0:8080": false, "[::]:80": false,
		"192.168.1.5:8080": false, "evil.example:8080": false, "localhost.evil.example": false,
		"127.0.0.1.nip.io:80": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestEventsKeepTheLast100(t *testing.T) {
	p := &Page{}
	for i := range 250 {
		p.add(Event{Kind: "key", Text: fmt.Sprint(i)})
	}
	if len(p.events) != maxEvents || p.events[0].Text != "150" || p.events[maxEvents-1].Text != "249" {
		t.Errorf("%d events, first %q, last %q; want 100, 150 … 249", len(p.events), p.events[0].Text, p.events[len(p.events)-1].Text)
	}
}

func TestChangeEventHasNoValue(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		ch   crdtstore.Change
		want string
	}{
		{crdtstore.Change{Entry: crdtstore.Entry{Key: "k", Value: []byte("hunter2"), Peer: "p"}, Origin: crdtstore.OriginRemote}, "set, 7 bytes (remote)"},
		{crdtstore.Change{Entry: crdtstore.Entry{Key: "k"}, Deleted: true, Origin: crdtstore.OriginLocal}, "deleted (local)"},
		{crdtstore.Change{Entry: crdtstore.Entry{Key: "k"}, Deleted: true, Origin: crdtstore.OriginExpired}, "expired"},
	} {
		e := changeEvent(now, c.ch)
		if e.Text != c.want || e.Key != "k" || strings.Contains(fmt.Sprint(e), "hunter2") {
			t.Errorf("changeEvent(%+v) = %+v, want text %q and no value", c.ch, e, c.want)
		}
	}
}

func TestRates(t *testing.T) {
	t0 := time.Unix(100, 0)
	prev := sample{at: t0, pubsub: pubsub.Stats{Topics: map[string]pubsub.TopicStats{
		"a": {Published: 10, Received: 100, PublishedBytes: 1000}, "b": {Published: 50},
	}}}
	cur := sample{at: t0.Add(2 * time.Second), pubsub: pubsub.Stats{Topics: map[string]pubsub.TopicStats{
		"a": {Published: 30, Received: 100, PublishedBytes: 5000}, "b": {Published: 3}, "c": {Published: 7},
	}}}
	r := rates(prev, cur)
	want := map[string]Rate{"a": {Published: 10, PublishedBytes: 2000}, "b": {}, "c": {}}
	if len(r) != len(want) {
		t.Fatalf("rates %v, want %v", r, want)
	}
	for k, w := range want {
		if r[k] != w {
			t.Errorf("rate of %s = %+v, want %+v", k, r[k], w)
		}
	}
	if r := rates(cur, cur); r["a"] != (Rate{}) {
		t.Errorf("no time between samples: %+v, want zero", r["a"])
	}
}
