package netns

import "testing"

func TestInPlaceReason(t *testing.T) {
	for _, tc := range []struct {
		name           string
		flags          map[string]string
		inPlace, quiet bool
	}{
		{"plain run", map[string]string{"test.run": "X", "test.fuzzworker": "false"}, false, false},
		{"fuzz coordinator", map[string]string{"test.fuzz": "FuzzX"}, true, false},
		{"fuzz worker", map[string]string{"test.fuzz": "FuzzX", "test.fuzzworker": "true"}, true, true},
		{"list", map[string]string{"test.list": "."}, true, true},
		{"flags not defined", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why, quiet := inPlaceReason(func(name string) string { return tc.flags[name] })
			if (why != "") != tc.inPlace || quiet != tc.quiet {
				t.Fatalf("inPlaceReason = %q, quiet %v; want in place %v, quiet %v", why, quiet, tc.inPlace, tc.quiet)
			}
		})
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	ppid, ns, ok := parseMarker(markerFor(4242, "net:[4026531840]"))
	if !ok || ppid != 4242 || ns != "net:[4026531840]" {
		t.Fatalf("parseMarker = %d, %q, %v", ppid, ns, ok)
	}
	for _, bad := range []string{"", ":", "12", "12:", ":net:[1]", "-3:net:[1]", "0:x", "a:b"} {
		if _, _, ok := parseMarker(bad); ok {
			t.Errorf("parseMarker(%q) accepted", bad)
		}
	}
}

func FuzzParseMarker(f *testing.F) {
	f.Add("4242:net:[4026531840]")
	f.Add("1:x")
	f.Add("::")
	f.Fuzz(func(t *testing.T, s string) {
		ppid, ns, ok := parseMarker(s)
		if !ok {
			return
		}
		if ppid <= 0 || ns == "" {
			t.Fatalf("parseMarker(%q) = %d, %q, true", s, ppid, ns)
		}
		if p2, ns2, ok2 := parseMarker(markerFor(ppid, ns)); !ok2 || p2 != ppid || ns2 != ns {
			t.Fatalf("round trip of %q: %d, %q, %v", s, p2, ns2, ok2)
		}
	})
}
