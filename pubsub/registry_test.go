package pubsub

import "testing"

func TestRegistryNames(t *testing.T) {
	for _, c := range []struct{ kind, topic, group string }{
		{regResponder, "svc", ""},
		{regResponder, "a:b/c", "g:1"},
		{regQueue, "jobs", "workers"},
		{regQueue, "12:x", "3:y"},
		{regPattern, "orders.*", ""},
		{regPublisher, "orders.eu", ""},
		{regRelay, "news", ""},
	} {
		name := registryName(c.kind, c.topic, c.group)
		kind, topic, group, ok := parseRegistry(name)
		if !ok || kind != c.kind || topic != c.topic || group != c.group {
			t.Errorf("%q → %q %q %q %v, want %v", name, kind, topic, group, ok, c)
		}
	}
	for _, bad := range []string{"jobs", ReservedPrefix + "rr/", ReservedPrefix + "rr/x:svc", ReservedPrefix + "q/04:jobs",
		ReservedPrefix + "q/9:jobs", ReservedPrefix + "q/0:", ReservedPrefix + "w/", ReservedPrefix + "rl/", ReservedPrefix + "s/news", ReservedPrefix + "peers"} {
		if k, tp, g, ok := parseRegistry(bad); ok {
			t.Errorf("%q parsed as %q %q %q", bad, k, tp, g)
		}
	}
}

func FuzzParseRegistry(f *testing.F) {
	f.Add(registryName(regQueue, "jobs", "w"))
	f.Add(registryName(regResponder, "svc", ""))
	f.Add(registryName(regPattern, "a.>", ""))
	f.Fuzz(func(t *testing.T, name string) {
		kind, topic, group, ok := parseRegistry(name)
		if !ok {
			return
		}
		if again := registryName(kind, topic, group); again != name {
			t.Fatalf("%q → %q %q %q → %q", name, kind, topic, group, again)
		}
	})
}
