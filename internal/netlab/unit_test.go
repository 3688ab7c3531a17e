package netlab

import (
	"errors"
	"strings"
	"testing"
)

func TestAvailability(t *testing.T) {
	none := func(string) (string, error) { return "", errors.New("not found") }
	all := func(name string) (string, error) { return "/usr/sbin/" + name, nil }
	for _, tc := range []struct {
		name string
		goos string
		euid int
		look func(string) (string, error)
		want []string // substrings; nil means no error
	}{
		{"ready", "linux", 0, all, nil},
		{"darwin", "darwin", 0, all, []string{"need Linux"}},
		{"user", "linux", 1000, all, []string{"root (running as uid 1000)"}},
		{"bare", "linux", 1000, none, []string{"root", "ip in PATH (apt-get install iproute2)", "nft in PATH (apt-get install nftables)", "sysctl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := availability(tc.goos, tc.euid, tc.look)
			if (err == nil) != (tc.want == nil) {
				t.Fatalf("err = %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

func TestRules(t *testing.T) {
	f := faults{cut: map[[2]int]bool{{2, 1}: true, {1, 2}: true, {1, 3}: true}, loss: map[int]int{3: 10, 4: 100}}
	want := "flush chain bridge lab links\n" + exemptRules +
		`add rule bridge lab links iifname "p1" oifname "p2" drop
add rule bridge lab links iifname "p1" oifname "p3" drop
add rule bridge lab links iifname "p2" oifname "p1" drop
add rule bridge lab links iifname "p3" numgen random mod 100 < 10 drop
add rule bridge lab links oifname "p3" numgen random mod 100 < 10 drop
add rule bridge lab links iifname "p4" drop
add rule bridge lab links oifname "p4" drop
`
	if got := f.rules(); got != want {
		t.Fatalf("rules:\n%s\nwant:\n%s", got, want)
	}
	if got, want := f.String(), "cut 1->2, cut 1->3, cut 2->1, loss 10% at 3, loss 100% at 4"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if got := (&faults{}).rules(); got != "flush chain bridge lab links\n"+exemptRules {
		t.Fatalf("no faults:\n%s", got)
	}
}
