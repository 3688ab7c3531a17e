package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// storeSuite is scenarios 4–8 of benchmarks.md on a KVSystem, at N =
// Params.StoreN: one cluster for 4–7 (participant 0 writes, the others
// watch), and a cluster of one participant for 8.
type storeSuite struct{}

// Store scenario ids, for -scenarios.
const (
	scVisible   = "set-visible"
	scRate      = "set-rate"
	scJoin      = "join"
	scReconnect = "reconnect"
	scKeyMem    = "key-memory"
)

func (storeSuite) Name() string { return "store" }
func (storeSuite) Scenarios() []string {
	return []string{scVisible, scRate, scJoin, scReconnect, scKeyMem}
}
func (storeSuite) Supports(sys System) bool { _, ok := sys.(KVSystem); return ok }

// StoreResult is one run of the store scenarios.
type StoreResult struct {
	Visible   *VisibleResult   `json:"set_visible,omitempty"`
	Rate      *RateResult      `json:"set_rate,omitempty"`
	Join      *SyncFigures     `json:"join,omitempty"`
	Reconnect *SyncFigures     `json:"reconnect_changed,omitempty"`
	InSync    *SyncFigures     `json:"reconnect_in_sync,omitempty"`
	KeyMemory *KeyMemoryResult `json:"key_memory,omitempty"`
	// OpenSecs is how long the cluster of N took to start.
	OpenSecs float64 `json:"open_secs"`
}

// VisibleResult is scenario 4: a Set on participant 0 until every other
// participant has seen it, one key at a time.
type VisibleResult struct {
	Keys int     `json:"keys"`
	Lost int     `json:"lost"` // not seen everywhere within a second
	P50  float64 `json:"p50_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
}

// RateResult is scenario 5: Keys unpaced writes of ValueSize bytes on
// participant 0, until every other participant applied all of them.
type RateResult struct {
	Keys int `json:"keys"`
	// WriterSecs: the writes' calls (Reflect's Set returns before
	// anything is sent; pipelined and asynchronous writers are bounded).
	WriterSecs float64 `json:"writer_secs"`
	// AppliedSecs: first write → the last participant saw the last one.
	AppliedSecs float64 `json:"applied_secs"`
	SetsPerSec  float64 `json:"sets_per_sec"`
	// LagMS: writer's last call returned → last participant caught up.
	LagMS float64 `json:"lag_ms"`
	// Applied is the % of writes the slowest participant reported.
	Applied float64 `json:"applied_pct"`
	Missed  int     `json:"watch_missed"` // changes a watcher dropped (counted as applied)
}

// KeyMemoryResult is scenario 8, from one participant's (or server's)
// memory before, with Keys keys, and after deleting them all, each read
// Params.MemIdle after the writes were acknowledged.
type KeyMemoryResult struct {
	Keys      int `json:"keys"`
	KeyBytes  int `json:"key_bytes"`
	ValueSize int `json:"value_bytes"`
	// What is measured: this process's Go heap (Reflect; NATS: the
	// embedded server and its client) or the server's used_memory (Redis).
	What            string  `json:"what"`
	LivePerKey      float64 `json:"live_bytes_per_key"`
	MetaPerKey      float64 `json:"metadata_bytes_per_live_key"` // LivePerKey − key − value bytes
	DeletedPerKey   float64 `json:"deleted_bytes_per_key"`
	ServerRSSPerKey float64 `json:"server_rss_bytes_per_key,omitempty"`
	ServerRSSAfter  float64 `json:"server_rss_bytes_per_deleted_key,omitempty"`
	WriteSecs       float64 `json:"write_secs"`
	// The same right after the last write was acknowledged (Flush), before
	// the MemIdle wait: with what is still in flight or cached.
	LiveNowPerKey    float64 `json:"live_bytes_per_key_at_once"`
	DeletedNowPerKey float64 `json:"deleted_bytes_per_key_at_once"`
}

func (st storeSuite) selected(e *Env) bool {
	for _, id := range st.Scenarios() {
		if e.want(id) {
			return true
		}
	}
	return false
}

func (st storeSuite) Run(ctx context.Context, sys System, n int, env *Env, s *Sample) error {
	if !st.selected(env) || n != env.P.StoreN {
		return nil
	}
	kv := sys.(KVSystem)
	res := &StoreResult{}
	s.Store = res
	if env.want(scVisible) || env.want(scRate) || env.want(scJoin) || env.want(scReconnect) {
		if err := runStoreCluster(ctx, kv, n, env, res); err != nil {
			return err
		}
	}
	if env.want(scKeyMem) && ctx.Err() == nil {
		env.Logf("    key memory: %d keys of 10 B with %d B values, then deleted", env.P.MemKeys, env.P.MemValueSize)
		m, err := runKeyMemory(ctx, kv, env.P)
		res.KeyMemory = m
		if err != nil {
			return fmt.Errorf("key memory: %w", err)
		}
		env.Logf("      %.1f B per live key (%.1f B beyond key and value), %.1f B per deleted key (%s; at once: %.1f and %.1f B)",
			m.LivePerKey, m.MetaPerKey, m.DeletedPerKey, m.What, m.LiveNowPerKey, m.DeletedNowPerKey)
	}
	return nil
}

// watchHub receives every participant's watch callbacks and hands them to
// the phase running now.
type watchHub struct {
	fn atomic.Pointer[func(i int, key string, missed int)]
}

// set installs fn; nil drops the callbacks.
func (h *watchHub) set(fn func(i int, key string, missed int)) {
	if fn == nil {
		h.fn.Store(nil)
		return
	}
	h.fn.Store(&fn)
}

func (h *watchHub) deliver(i int, key string, missed int) {
	if f := h.fn.Load(); f != nil {
		(*f)(i, key, missed)
	}
}

func storeKey(k int) string { return fmt.Sprintf("key/%06d", k) }

func keyIndex(key string) int {
	k, err := strconv.Atoi(strings.TrimPrefix(key, "key/"))
	if err != nil {
		return -1
	}
	return k
}

// kvValue returns size bytes that carry tag (so that rewrites change them).
func kvValue(size, tag int) []byte {
	v := make([]byte, size)
	copy(v, fmt.Sprintf("%d:", tag))
	for i := len(strconv.Itoa(tag)) + 1; i < size; i++ {
		v[i] = 'a' + byte(i%26)
	}
	return v
}

func runStoreCluster(ctx context.Context, kv KVSystem, n int, env *Env, res *StoreResult) (err error) {
	p := env.P
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	t0 := time.Now()
	c, err := kv.OpenKV(octx, n)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	res.OpenSecs = time.Since(t0).Seconds()
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	hub := &watchHub{}
	for i := 1; i < n; i++ {
		if err := c.Watch(i, func(key string, missed int) { hub.deliver(i, key, missed) }); err != nil {
			return fmt.Errorf("watch %d: %w", i, err)
		}
	}
	if !(pubsubSuite{}).selected(env) { // one profile per invocation: the pub/sub suite's if it runs
		stop, err := env.startProfile()
		if err != nil {
			return err
		}
		defer stop()
	}

	loaded := false
	if env.want(scRate) || env.want(scJoin) || env.want(scReconnect) {
		env.Logf("    set-rate: %d × %d B unpaced on one participant", p.StoreKeys, p.ValueSize)
		r, err := runLoad(ctx, c, hub, n, p)
		if env.want(scRate) {
			res.Rate = r
		}
		if err != nil {
			return fmt.Errorf("set-rate: %w", err)
		}
		loaded = r.Applied == 100
		env.Logf("      writer %.2fs, all applied after %.2fs: %.0f Sets/s, lag %.0f ms, applied %.1f%%",
			r.WriterSecs, r.AppliedSecs, r.SetsPerSec, r.LagMS, r.Applied)
	}
	if env.want(scVisible) && ctx.Err() == nil {
		settle()
		env.Logf("    set-visible: %d keys one at a time", p.VisibleKeys)
		v, err := runVisible(ctx, c, hub, n, p)
		res.Visible = v
		if err != nil {
			return fmt.Errorf("set-visible: %w", err)
		}
		env.Logf("      p50 %.0f µs, p99 %.0f µs, max %.0f µs, lost %d", v.P50, v.P99, v.Max, v.Lost)
	}
	if !loaded {
		return nil
	}
	if env.want(scJoin) && ctx.Err() == nil {
		settle()
		env.Logf("    join: a new participant loads %d keys", p.StoreKeys)
		j, err := joinWithMemory(ctx, c, p)
		if err != nil {
			return fmt.Errorf("join: %w", err)
		}
		res.Join = &j
		env.Logf("      %.3fs, %.2f MB in, %.2f MB out, %d keys; %s", j.Secs, float64(j.BytesIn)/mb, float64(j.BytesOut)/mb, j.Keys, j.How)
		env.Logf("      this process's memory over the join: peak +%.1f MB heap, +%.1f MB held; +%.1f MB heap after, while the new participant holds the keys",
			j.PeakHeapMB, j.PeakHeldMB, j.HeldHeapMB)
	}
	if env.want(scReconnect) && ctx.Err() == nil {
		settle()
		i := n - 1
		var changed []string
		for k := range p.Changed {
			changed = append(changed, storeKey(k*p.StoreKeys/p.Changed))
		}
		env.Logf("    reconnect: participant %d away while %d keys change on participant 0", i, len(changed))
		r, err := reconnect(ctx, c, hub, n, i, changed, p)
		if err != nil {
			return fmt.Errorf("reconnect: %w", err)
		}
		res.Reconnect = &r
		env.Logf("      %.3fs, %d B in, %d B out, %g round trips, %d exchanges; %s", r.Secs, r.BytesIn, r.BytesOut, r.RoundTrips, r.Exchanges, r.How)
		env.Logf("    reconnect in sync: participant %d away, nothing changes", i)
		r2, err := reconnect(ctx, c, hub, n, i, nil, p)
		if err != nil {
			return fmt.Errorf("reconnect in sync: %w", err)
		}
		res.InSync = &r2
		env.Logf("      %.3fs, %d B in, %d B out, %g round trips, %d exchanges; %s", r2.Secs, r2.BytesIn, r2.BytesOut, r2.RoundTrips, r2.Exchanges, r2.How)
	}
	return nil
}

// joinWithMemory runs c.Join within p.StoreWait and adds this process's
// memory growth during it (SyncFigures.PeakHeapMB and the others).
func joinWithMemory(ctx context.Context, c KVCluster, p Params) (SyncFigures, error) {
	jctx, cancel := context.WithTimeout(ctx, p.StoreWait)
	defer cancel()
	base := settledMem(nil)
	peak := startMemPeak(nil, 10*time.Millisecond)
	var after memReading
	j, err := c.Join(jctx, p.StoreKeys, func() { after = settledMem(nil) })
	top := peak.done()
	growth := func(r, b uint64) float64 {
		if r < b {
			return 0
		}
		return float64(r-b) / mb
	}
	j.PeakHeapMB, j.PeakHeldMB = growth(top.Heap, base.Heap), growth(top.Held, base.Held)
	j.HeldHeapMB = growth(after.Heap, base.Heap)
	return j, err
}

// settle lets the previous phase's garbage and timers go before the next.
func settle() {
	runtime.GC()
	time.Sleep(200 * time.Millisecond)
}

// runLoad writes p.StoreKeys keys unpaced on participant 0 and waits until
// every other participant's watch reported all of them.
func runLoad(ctx context.Context, c KVCluster, hub *watchHub, n int, p Params) (*RateResult, error) {
	r := &RateResult{Keys: p.StoreKeys}
	want := int64(p.StoreKeys)
	counts := make([]atomic.Int64, n)
	lastAt := make([]atomic.Int64, n) // ns since t0 when the count reached want
	var missed atomic.Int64
	t0 := time.Now()
	done := make(chan struct{}, n)
	hub.set(func(i int, _ string, m int) {
		missed.Add(int64(m))
		if counts[i].Add(int64(1+m)) >= want && lastAt[i].Load() == 0 {
			lastAt[i].Store(int64(time.Since(t0)))
			done <- struct{}{}
		}
	})
	defer hub.set(nil)
	for k := range p.StoreKeys {
		if err := c.Put(ctx, 0, storeKey(k), kvValue(p.ValueSize, k)); err != nil {
			return r, err
		}
	}
	r.WriterSecs = time.Since(t0).Seconds()
	wctx, cancel := context.WithTimeout(ctx, p.StoreWait)
	defer cancel()
	if err := c.Flush(wctx, 0); err != nil {
		return r, fmt.Errorf("flush: %w", err)
	}
	for got := 0; got < n-1; got++ {
		select {
		case <-done:
		case <-wctx.Done():
			got = n
		}
	}
	minCount := want
	var last int64
	for i := 1; i < n; i++ {
		minCount = min(minCount, counts[i].Load())
		last = max(last, lastAt[i].Load())
	}
	r.Applied = pct(minCount, want)
	r.Missed = int(missed.Load())
	if minCount < want {
		r.SetsPerSec, r.AppliedSecs, r.LagMS = math.NaN(), math.NaN(), math.NaN()
		return r, fmt.Errorf("after %v the slowest participant had applied %d of %d writes", p.StoreWait, minCount, want)
	}
	r.AppliedSecs = time.Duration(last).Seconds()
	r.SetsPerSec = float64(p.StoreKeys) / r.AppliedSecs
	r.LagMS = (r.AppliedSecs - r.WriterSecs) * 1e3
	return r, nil
}

// runVisible writes VisibleWarmup+VisibleKeys keys on participant 0, one
// at a time, each awaited on every other participant (or for a second).
func runVisible(ctx context.Context, c KVCluster, hub *watchHub, n int, p Params) (*VisibleResult, error) {
	type arrival struct{ i, k int }
	ch := make(chan arrival, 4096)
	hub.set(func(i int, key string, _ int) {
		if k := keyIndex(key); k >= 0 {
			select {
			case ch <- arrival{i, k}:
			default: // the loop only ever waits for one key
			}
		}
	})
	defer hub.set(nil)
	v := &VisibleResult{Keys: p.VisibleKeys}
	lat := make([]int64, 0, p.VisibleKeys)
	total := p.VisibleWarmup + p.VisibleKeys
	for k := 0; k < total && ctx.Err() == nil; k++ {
		seen := make([]bool, n)
		left := n - 1
		start := time.Now()
		if err := c.Put(ctx, 0, storeKey(k), kvValue(p.ValueSize, -k)); err != nil {
			return v, err
		}
		timeout := time.NewTimer(time.Second)
	wait:
		for left > 0 {
			select {
			case a := <-ch:
				if a.k == k && !seen[a.i] {
					seen[a.i] = true
					left--
				}
			case <-timeout.C:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
		timeout.Stop()
		if k < p.VisibleWarmup {
			continue
		}
		if left > 0 {
			v.Lost++
			continue
		}
		lat = append(lat, int64(time.Since(start)))
	}
	if err := c.Flush(ctx, 0); err != nil {
		return v, fmt.Errorf("flush: %w", err)
	}
	slices.Sort(lat)
	v.P50, v.P99, v.P999 = quantileUS(lat, 0.5), quantileUS(lat, 0.99), quantileUS(lat, 0.999)
	v.Max = quantileUS(lat, 1)
	return v, nil
}

// reconnect is scenario 7: participant i is away while changed (maybe
// none) change on participant 0; the change is done when every other
// participant still connected saw it.
func reconnect(ctx context.Context, c KVCluster, hub *watchHub, n, i int, changed []string, p Params) (SyncFigures, error) {
	rctx, cancel := context.WithTimeout(ctx, p.StoreWait)
	defer cancel()
	var mu sync.Mutex
	want := map[string]int{}
	for _, k := range changed {
		want[k] = 0
	}
	hub.set(func(j int, key string, _ int) {
		if j == i {
			return
		}
		mu.Lock()
		if c, ok := want[key]; ok {
			want[key] = c + 1
		}
		mu.Unlock()
	})
	defer hub.set(nil)
	change := func(ctx context.Context) error {
		for k, key := range changed {
			if err := c.Put(ctx, 0, key, kvValue(p.ValueSize, 1_000_000+k)); err != nil {
				return err
			}
		}
		if err := c.Flush(ctx, 0); err != nil {
			return err
		}
		return waitFor(ctx, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range want {
				if c < n-2 {
					return false
				}
			}
			return true
		})
	}
	return c.Reconnect(rctx, i, change, changed)
}

// runKeyMemory is scenario 8 on a cluster of one participant.
func runKeyMemory(ctx context.Context, kv KVSystem, p Params) (m *KeyMemoryResult, err error) {
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := kv.OpenKV(octx, 1)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	key := func(k int) string { return fmt.Sprintf("k%09d", k) } // 10 bytes
	m = &KeyMemoryResult{Keys: p.MemKeys, KeyBytes: 10, ValueSize: p.MemValueSize}
	pids := c.ServerPIDs()
	readNow := func() (heap, rss uint64) {
		r := settledMem(pids)
		if s := c.ServerMem(ctx); s > 0 {
			return s, r.ServerRSS
		}
		return r.Heap, r.ServerRSS
	}
	// read is readNow after MemIdle: what stays, not what is in flight.
	var nowHeap uint64
	read := func() (heap, rss uint64) {
		nowHeap, _ = readNow()
		select {
		case <-time.After(p.MemIdle):
		case <-ctx.Done():
		}
		return readNow()
	}
	m.What = "process Go heap"
	if c.ServerMem(ctx) > 0 {
		m.What = "server used_memory"
	}
	wctx, cancel := context.WithTimeout(ctx, 2*p.StoreWait)
	defer cancel()
	h0, r0 := read()
	v := kvValue(p.MemValueSize, 7)
	t0 := time.Now()
	for k := range p.MemKeys {
		if err := c.Put(wctx, 0, key(k), v); err != nil {
			return m, err
		}
	}
	if err := c.Flush(wctx, 0); err != nil {
		return m, err
	}
	m.WriteSecs = time.Since(t0).Seconds()
	h1, r1 := read()
	h1Now := nowHeap
	for k := range p.MemKeys {
		if err := c.Delete(wctx, 0, key(k)); err != nil {
			return m, err
		}
	}
	if err := c.Flush(wctx, 0); err != nil {
		return m, err
	}
	h2, r2 := read()
	h2Now := nowHeap
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(p.MemKeys) }
	m.LivePerKey = per(h1, h0)
	m.MetaPerKey = m.LivePerKey - float64(m.KeyBytes+m.ValueSize)
	m.DeletedPerKey = per(h2, h0)
	m.LiveNowPerKey, m.DeletedNowPerKey = per(h1Now, h0), per(h2Now, h0)
	if len(pids) > 0 {
		m.ServerRSSPerKey, m.ServerRSSAfter = per(r1, r0), per(r2, r0)
	}
	return m, nil
}
