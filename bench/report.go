package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// table is one table of the report, printed as text or as Markdown.
type table struct {
	title string
	head  []string
	rows  [][]string
}

func (t table) text(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", t.title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.head, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func (t table) markdown(w io.Writer) {
	fmt.Fprintf(w, "\n**%s**\n\n| %s |\n|%s\n", t.title, strings.Join(t.head, " | "), strings.Repeat("---|", len(t.head)))
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
}

// tables builds every table of the report.
func tables(res *Results) []table {
	var out []table
	for _, n := range res.Ns {
		if !hasPubSub(res, n) {
			continue
		}
		main := table{
			title: fmt.Sprintf("N = %d (1 publisher, %d subscribers); medians of %d run(s), range in parentheses", n, n-1, res.Runs),
			head: []string{"system", "p50 µs", "p99 µs", "p99.9 µs", "delivered %",
				"256 B msgs/s", "64 KiB MB/s", "burst 256 B delivered %", "burst 64 KiB delivered %",
				"idle MB/node", "64 KiB burst MB/node"},
		}
		burst := table{
			title: fmt.Sprintf("Bursts, N = %d: unpaced, %d × 256 B and %d × 64 KiB", n, res.Params.BurstCount[small], res.Params.BurstCount[large]),
			head:  []string{"system", "size", "sent", "delivered %", "worst subscriber %", "lost", "drops surfaced", "publisher", "silent loss"},
		}
		for _, s := range res.Summaries {
			if s.N != n {
				continue
			}
			name := s.System
			if len(s.Errors) > 0 {
				name += " (errors)"
			}
			sm, lg := s.size(small), s.size(large)
			burstMem := s.BurstHeldMB.short()
			if s.ServerBurstMB.ok() {
				burstMem += " + server " + s.ServerBurstMB.short()
			}
			idleMem := s.IdleHeldMB.short()
			if s.ServerIdleMB.ok() {
				idleMem += " + server " + s.ServerIdleMB.short()
			}
			main.rows = append(main.rows, []string{name,
				s.P50.short(), s.P99.short(), s.P999.short(), s.LatDelivered.format("%.2f"),
				s.size(small).MsgsPerSec.short() + methodMark(sm.Method), lg.MBPerSec.short() + methodMark(lg.Method),
				sm.BurstDelivered.format("%.1f"), lg.BurstDelivered.format("%.1f"),
				idleMem, burstMem,
			})
			for _, z := range s.Sizes {
				if !z.BurstSent.ok() {
					continue
				}
				pub := fmt.Sprintf("blocked %d/%d runs (max call %s ms)", z.BlockedRuns, z.BurstSent.Runs, num(z.BurstMaxCallMS.Median))
				if z.ErrorRuns > 0 {
					pub += fmt.Sprintf("; errors in %d runs: %s", z.ErrorRuns, z.FirstError)
				}
				drops := z.BurstDrops.short()
				if z.DropDetail != "" {
					drops += " [" + z.DropDetail + "]"
				}
				burst.rows = append(burst.rows, []string{s.System, sizeName(z.Size), z.BurstSent.short(),
					z.BurstDelivered.format("%.1f"), z.BurstMinDelivered.format("%.1f"), z.BurstLost.short(), drops, pub,
					silentCell(z)})
			}
		}
		out = append(out, main, burst)
	}
	if len(res.Ratios) > 0 {
		rt := table{
			title: "Reflect ÷ baseline, per run then median (latency: < 1 is better; throughput: > 1 is better)",
			head:  []string{"baseline", "N", "p50", "p99", "256 B msgs/s", "64 KiB MB/s"},
		}
		for _, r := range res.Ratios {
			rt.rows = append(rt.rows, []string{r.Baseline, fmt.Sprint(r.N), r.P50.format("%.2f"), r.P99.format("%.2f"),
				r.Small.format("%.2f"), r.LargeMB.format("%.2f")})
		}
		out = append(out, rt)
	}
	out = append(out, storeTables(res)...)
	out = append(out, callTables(res)...)
	if len(res.Targets) > 0 {
		tt := table{title: "Targets (issue 6; store: the store issue; request/reply, queue group: issue 15)", head: []string{"target", "N", "measured", "met"}}
		for _, t := range res.Targets {
			tt.rows = append(tt.rows, []string{t.Target, fmt.Sprint(t.N), t.Measured, t.Met})
		}
		out = append(out, tt)
	}
	return out
}

// hasPubSub reports whether any pub/sub figure was measured at N = n.
func hasPubSub(res *Results, n int) bool {
	for _, s := range res.Summaries {
		if s.N != n {
			continue
		}
		if s.P50.ok() || s.IdleHeldMB.ok() {
			return true
		}
		for _, z := range s.Sizes {
			if z.MsgsPerSec.ok() || z.BurstSent.ok() {
				return true
			}
		}
	}
	return false
}

// storeTables are the store scenarios (4–8) and their ratios.
func storeTables(res *Results) []table {
	if len(res.StoreSummaries) == 0 {
		return nil
	}
	p := res.Params
	runs := 0
	for _, s := range res.StoreSummaries {
		runs = max(runs, s.Runs)
	}
	st := table{
		title: fmt.Sprintf("Store, N = %d (participant 0 writes, the others watch); medians of %d run(s), range in parentheses", p.StoreN, runs),
		head: []string{"system", "Set→visible on all p50 µs", "p99 µs",
			fmt.Sprintf("Sets/s, all applied (%s × %d B)", count(p.StoreKeys), p.ValueSize), "replica lag ms",
			fmt.Sprintf("join %s keys: s", count(p.StoreKeys)), "join MB",
			fmt.Sprintf("reconnect, %d changed: B", p.Changed), "round trips",
			"in-sync reconnect: B per exchange", "round trips",
			fmt.Sprintf("B per live key (%s keys)", count(p.MemKeys)), "beyond key+value", "B per deleted key"},
	}
	for _, s := range res.StoreSummaries {
		st.rows = append(st.rows, []string{s.System,
			s.VisibleP50.short(), s.VisibleP99.short(),
			s.SetsPerSec.short(), s.LagMS.short(),
			s.JoinSecs.format("%.3f"), mbStat(s.JoinBytes).format("%.1f"),
			s.ReconBytes.short(), s.ReconRT.short(),
			s.InSyncMaxBytes.short(), s.InSyncRT.short(),
			s.LivePerKey.format("%.1f"), s.MetaPerKey.format("%.1f"), s.DeletedPerKey.format("%.1f"),
		})
	}
	out := []table{st}
	if len(res.StoreRatios) > 0 {
		rt := table{
			title: "Store: Reflect ÷ baseline, per run then median (latency, time, bytes, memory: < 1 is better; Sets/s: > 1 is better)",
			head:  []string{"baseline", "Set→visible p50", "p99", "Sets/s", "join s", "join bytes", "reconnect bytes", "B per live key"},
		}
		for _, r := range res.StoreRatios {
			rt.rows = append(rt.rows, []string{r.Baseline, r.VisibleP50.format("%.2f"), r.VisibleP99.format("%.2f"),
				r.SetsPerSec.format("%.2f"), r.JoinSecs.format("%.2f"), r.JoinBytes.format("%.2f"), r.ReconBytes.format("%.3g"),
				r.LivePerKey.format("%.2f")})
		}
		out = append(out, rt)
	}
	return out
}

// mbStat converts a Stat of bytes to MB.
func mbStat(s Stat) Stat {
	s.Median, s.Min, s.Max = s.Median/mb, s.Min/mb, s.Max/mb
	return s
}

func silentCell(z SizeSummary) string {
	c := fmt.Sprintf("%d/%d runs", z.SilentRuns, z.BurstSent.Runs)
	if z.LateRuns > 0 {
		c += fmt.Sprintf("; %d/%d runs still delivering when the wait ended", z.LateRuns, z.BurstSent.Runs)
	}
	return c
}

// methodMark flags throughput that needed the paced search ("s") or found
// no lossless rate ("!").
func methodMark(m string) string {
	switch {
	case strings.Contains(m, "none"):
		return " !"
	case strings.Contains(m, "search"):
		return " s"
	}
	return ""
}

func sizeName(size int) string {
	if size >= 1<<10 && size%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", size>>10)
	}
	return fmt.Sprintf("%d B", size)
}

func printText(w io.Writer, res *Results) {
	m := res.Machine
	fmt.Fprintf(w, "\nMachine: %s, %d cores (GOMAXPROCS %d), %s; %s; commit %s%s; %s\n",
		m.CPU, m.Cores, m.GOMAXPROCS, m.Kernel, m.Go, short(m.Commit), dirtyMark(m.Dirty), m.Date)
	for _, t := range tables(res) {
		t.text(w)
	}
	fmt.Fprintln(w, "\ns: rate found by the paced search (the system loses messages when unpaced); !: no lossless rate found")
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func dirtyMark(d bool) string {
	if d {
		return " (+ uncommitted changes)"
	}
	return ""
}

func writeJSON(path string, res *Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
