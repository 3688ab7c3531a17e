package netlab

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// baseRules creates the lab's nftables table in the bridge namespace: a
// forward-hook chain that first lets address resolution through, so that a
// one-way cut stays one-way and a healed partition needs no ARP recovery.
const baseRules = `add table bridge lab
add chain bridge lab links { type filter hook forward priority 0; policy accept; }
` + exemptRules

const exemptRules = `add rule bridge lab links ether type arp accept
add rule bridge lab links icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept
`

// faults is the set of rules in force. Every change rewrites the chain from
// it in one nft transaction.
type faults struct {
	cut  map[[2]int]bool // from, to
	loss map[int]int     // host -> percent
}

// rules renders the nft script that replaces the chain's rules.
func (f *faults) rules() string {
	var b strings.Builder
	b.WriteString("flush chain bridge lab links\n")
	b.WriteString(exemptRules)
	for _, c := range slices.SortedFunc(maps.Keys(f.cut), comparePairs) {
		fmt.Fprintf(&b, "add rule bridge lab links iifname \"p%d\" oifname \"p%d\" drop\n", c[0], c[1])
	}
	for _, h := range slices.Sorted(maps.Keys(f.loss)) {
		random := fmt.Sprintf(" numgen random mod 100 < %d", f.loss[h])
		if f.loss[h] >= 100 {
			random = "" // numgen values are 0 to 99: "< 100" is not allowed
		}
		fmt.Fprintf(&b, "add rule bridge lab links iifname \"p%d\"%s drop\n", h, random)
		fmt.Fprintf(&b, "add rule bridge lab links oifname \"p%d\"%s drop\n", h, random)
	}
	return b.String()
}

func (f *faults) String() string {
	if len(f.cut) == 0 && len(f.loss) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range slices.SortedFunc(maps.Keys(f.cut), comparePairs) {
		parts = append(parts, fmt.Sprintf("cut %d->%d", c[0], c[1]))
	}
	for _, h := range slices.Sorted(maps.Keys(f.loss)) {
		parts = append(parts, fmt.Sprintf("loss %d%% at %d", f.loss[h], h))
	}
	return strings.Join(parts, ", ")
}

func comparePairs(a, b [2]int) int {
	if a[0] != b[0] {
		return a[0] - b[0]
	}
	return a[1] - b[1]
}

// Partition silently drops all traffic, both ways, between hosts of different
// groups, multicast included. Hosts in no group keep talking to everyone.
// Partitions and cuts add up until Heal.
func (l *Lab) Partition(groups ...[]int) error {
	return l.change("Partition", func(f *faults) error {
		seen := map[int]int{}
		for gi, g := range groups {
			for _, h := range g {
				if err := l.checkHostLocked(h); err != nil {
					return err
				}
				if prev, dup := seen[h]; dup {
					return fmt.Errorf("host %d is in groups %d and %d", h, prev+1, gi+1)
				}
				seen[h] = gi
			}
		}
		for gi, g := range groups {
			for gj, other := range groups {
				if gi == gj {
					continue
				}
				for _, a := range g {
					for _, b := range other {
						f.cut[[2]int{a, b}] = true
					}
				}
			}
		}
		return nil
	})
}

// Cut silently drops traffic from host from to host to (one way).
func (l *Lab) Cut(from, to int) error {
	return l.change("Cut", func(f *faults) error {
		if err := l.checkHostLocked(from); err != nil {
			return err
		}
		if err := l.checkHostLocked(to); err != nil {
			return err
		}
		if from == to {
			return fmt.Errorf("cannot cut host %d from itself", from)
		}
		f.cut[[2]int{from, to}] = true
		return nil
	})
}

// Loss drops the given percentage of the packets that host sends and,
// independently, of those it receives (chosen at random per packet). It
// replaces the host's previous loss; 0 removes it.
func (l *Lab) Loss(host int, percent int) error {
	return l.change("Loss", func(f *faults) error {
		if err := l.checkHostLocked(host); err != nil {
			return err
		}
		if percent < 0 || percent > 100 {
			return fmt.Errorf("loss of %d%%: want 0 to 100", percent)
		}
		if percent == 0 {
			delete(f.loss, host)
		} else {
			f.loss[host] = percent
		}
		return nil
	})
}

// Heal removes every partition, cut and loss. Links taken down with LinkDown
// stay down.
func (l *Lab) Heal() error {
	return l.change("Heal", func(f *faults) error {
		clear(f.cut)
		clear(f.loss)
		return nil
	})
}

// change applies edit to a copy of the faults, installs the result, and keeps
// it if nft accepted it.
func (l *Lab) change(op string, edit func(*faults) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.errClosed()
	}
	next := faults{cut: maps.Clone(l.faults.cut), loss: maps.Clone(l.faults.loss)}
	if next.cut == nil {
		next.cut = map[[2]int]bool{}
	}
	if next.loss == nil {
		next.loss = map[int]int{}
	}
	if err := edit(&next); err != nil {
		return fmt.Errorf("netlab: %s: %w", op, err)
	}
	if err := run(context.Background(), next.rules(), "ip", "netns", "exec", l.bridgeNS(), "nft", "-f", "-"); err != nil {
		return fmt.Errorf("netlab: %s: %w", op, err)
	}
	l.faults = next
	return nil
}

// LinkDown takes host's bridge port down: the host loses carrier and nothing
// reaches it or leaves it until LinkUp.
func (l *Lab) LinkDown(host int) error { return l.setLink(host, "down") }

// LinkUp brings host's bridge port back up.
func (l *Lab) LinkUp(host int) error { return l.setLink(host, "up") }

func (l *Lab) setLink(host int, state string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.errClosed()
	}
	if err := l.checkHostLocked(host); err != nil {
		return fmt.Errorf("netlab: link %s: %w", state, err)
	}
	return run(context.Background(), "", "ip", "-n", l.bridgeNS(), "link", "set", fmt.Sprintf("p%d", host), state)
}

func (l *Lab) checkHostLocked(i int) error {
	if i < 1 || i > len(l.hosts) {
		return fmt.Errorf("lab %s has no host %d (hosts are 1 to %d)", l.name, i, len(l.hosts))
	}
	return nil
}
