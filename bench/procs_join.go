package main

import (
	"context"
	"fmt"
	"time"

	"github.com/reflectmesh/reflect/bench/participant"
)

// ProcsJoin is the -procs store scenario (join) of one run: a store of
// Params.StoreKeys keys of Params.ValueSize bytes written on participant 0
// of Params.StoreN, replicated, then loaded by a new process, timed from
// its exec. Reflect: every participant a node with a replica; NATS:
// JetStream KV (memory storage) in the nats-server process, one client
// process per participant.
type ProcsJoin struct {
	Keys int `json:"keys"`
	// FillSecs is the writer's writes until flushed (Reflect: handed to
	// the network; NATS: acknowledged by the server); ReplicatedSecs
	// until every participant held every key (NATS: as FillSecs, the
	// server holds them).
	FillSecs       float64 `json:"fill_secs"`
	ReplicatedSecs float64 `json:"replicated_secs"`
	// Holders, after Params.MemIdle: the median over participants 1..N−1
	// (Reflect: replicas; NATS: clients, which hold nothing) and the
	// server (NATS).
	HolderRSSMB  float64 `json:"holder_rss_mb"`
	HolderAnonMB float64 `json:"holder_private_mb"`
	ServerRSSMB  float64 `json:"server_rss_mb,omitempty"`
	ServerAnonMB float64 `json:"server_private_mb,omitempty"`
	// The joiner: from the exec of its process until it was up (Reflect:
	// node and store open; NATS: connected) and until it held every key
	// (Reflect: connected to all at once, WaitSynced, every key; NATS:
	// KeyValue, WatchAll until every key's value is in, kept in a map).
	UpSecs   float64 `json:"up_secs"`
	JoinSecs float64 `json:"join_secs"`
	// Its memory right after the join, after Params.MemIdle more (final),
	// and the peak from exec to then (sampled every 10 ms).
	JoinerAtOnceRSSMB float64 `json:"joiner_rss_mb_at_once"`
	JoinerRSSMB       float64 `json:"joiner_rss_mb"`
	JoinerAnonMB      float64 `json:"joiner_private_mb"`
	JoinerPeakRSSMB   float64 `json:"joiner_peak_rss_mb"`
	JoinerPeakAnonMB  float64 `json:"joiner_peak_private_mb"`
}

// joinSystems have a store in the -procs mode.
var joinSystems = map[string]bool{"reflect": true, "nats": true}

// runProcsJoin opens a store cluster of sys, fills it, and joins it.
func runProcsJoin(ctx context.Context, bin, sys string, n int, env *Env) (j *ProcsJoin, err error) {
	p := env.P
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	c, err := openProcs(octx, bin, sys, n, false, true)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := c.close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, p.StoreWait)
	defer cancel()
	j = &ProcsJoin{Keys: p.StoreKeys}

	env.Logf("    join: writing %d keys of %d B", p.StoreKeys, p.ValueSize)
	r, err := c.parts[0].call(wctx, participant.Command{Op: "kv_fill", Count: p.StoreKeys, Size: p.ValueSize})
	if err != nil {
		return j, err
	}
	j.FillSecs = float64(r.DoneNS-r.StartNS) / 1e9
	j.ReplicatedSecs = j.FillSecs
	for {
		all, err := allHold(wctx, c, p.StoreKeys)
		if err != nil {
			return j, err
		}
		if all {
			break
		}
		if err := sleepCtx(wctx, 10*time.Millisecond); err != nil {
			return j, fmt.Errorf("replicating: %w", err)
		}
		j.ReplicatedSecs = float64(participant.Now()-r.StartNS) / 1e9
	}

	sleepCtx(ctx, p.MemIdle)
	var rss, anon []float64
	for _, pr := range c.processes() {
		st, _ := readProcStat(pr.pid)
		switch {
		case pr.role == roleServer:
			j.ServerRSSMB, j.ServerAnonMB = float64(st.RSS)/mb, float64(st.Anon)/mb
		case pr.role == roleSub:
			rss, anon = append(rss, float64(st.RSS)/mb), append(anon, float64(st.Anon)/mb)
		}
	}
	j.HolderRSSMB, j.HolderAnonMB = statOf(rss).Median, statOf(anon).Median

	exec := participant.Now()
	jp, err := c.startJoiner()
	if err != nil {
		return j, err
	}
	defer func() {
		if serr := jp.stop(); serr != nil && err == nil {
			err = fmt.Errorf("joiner: %w", serr)
		}
	}()
	peak := startPeaks([]pidRole{{jp.pid(), roleSub}}, 10*time.Millisecond)
	r, err = jp.call(wctx, participant.Command{Op: "kv_join", Addrs: c.addrs, Count: p.StoreKeys})
	if err != nil {
		peak.done()
		return j, err
	}
	j.UpSecs, j.JoinSecs = float64(r.UpNS-exec)/1e9, float64(r.DoneNS-exec)/1e9
	rssNow, _ := procMem(jp.pid())
	j.JoinerAtOnceRSSMB = float64(rssNow) / mb
	sleepCtx(ctx, p.MemIdle)
	pk := peak.done()[jp.pid()]
	rssEnd, anonEnd := procMem(jp.pid())
	j.JoinerRSSMB, j.JoinerAnonMB = float64(rssEnd)/mb, float64(anonEnd)/mb
	j.JoinerPeakRSSMB, j.JoinerPeakAnonMB = float64(pk.RSS)/mb, float64(pk.Anon)/mb
	env.Logf("      up %.2fs, joined %.2fs from exec; joiner %.1f MB RSS (%.1f private), peak %.1f; holders %.1f MB RSS (%.1f private), server %.1f",
		j.UpSecs, j.JoinSecs, j.JoinerRSSMB, j.JoinerAnonMB, j.JoinerPeakRSSMB, j.HolderRSSMB, j.HolderAnonMB, j.ServerRSSMB)
	return j, ctx.Err()
}

// allHold reports whether every participant that holds keys itself
// (kv_keys ≥ 0) has at least want.
func allHold(ctx context.Context, c *procsCluster, want int) (bool, error) {
	for _, p := range c.parts {
		r, err := p.call(ctx, participant.Command{Op: "kv_keys"})
		if err != nil {
			return false, err
		}
		if r.Count >= 0 && r.Count < int64(want) {
			return false, nil
		}
	}
	return true, nil
}
