package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const kvBucket = "bench"

func (*natsSystem) DescribeKV() string {
	return "NATS JetStream KV: nats-server " + server.VERSION + " embedded with JetStream (StoreDir in a temp dir), bucket with " +
		"memory storage (Reflect's store is in memory too), History 1, 1 replica; one connection per participant; " +
		"writes are asynchronous publishes to the bucket's subject (what kv.Put sends, ≤ 4,096 acks pending), " +
		"kv.WatchAll(UpdatesOnly) on the others; joins: WatchAll with initial values; reconnects: WatchAll(ResumeFromRevision)"
}

// natsKV is one JetStream server and one client per participant.
type natsKV struct {
	srv *server.Server
	dir string
	ps  []*natsParticipant

	errMu    sync.Mutex
	firstErr error
}

type natsParticipant struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	counter *connCounter
	w       jetstream.KeyWatcher
	done    chan struct{} // closed when the watch loop ended
	lastRev atomic.Uint64 // highest revision its watch saw
	fn      func(string, int)
}

func (*natsSystem) OpenKV(ctx context.Context, n int) (KVCluster, error) {
	dir, err := os.MkdirTemp("", "bench-jetstream-")
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		NoLog:     true,
		NoSigs:    true,
		JetStream: true,
		StoreDir:  dir,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go srv.Start()
	c := &natsKV{srv: srv, dir: dir}
	fail := func(err error) (KVCluster, error) {
		_ = c.Close()
		return nil, err
	}
	if !srv.ReadyForConnections(10 * time.Second) {
		return fail(errors.New("nats-server did not start"))
	}
	for i := 0; i < n; i++ {
		p, err := c.connect(ctx, i == 0)
		if err != nil {
			return fail(fmt.Errorf("participant %d: %w", i, err))
		}
		c.ps = append(c.ps, p)
	}
	return c, nil
}

// connect opens a participant's connection and binds the bucket (creating
// it if create).
func (c *natsKV) connect(ctx context.Context, create bool) (*natsParticipant, error) {
	p := &natsParticipant{counter: &connCounter{}}
	nc, err := nats.Connect(c.srv.ClientURL(), nats.SetCustomDialer(countingDialer{p.counter}))
	if err != nil {
		return nil, err
	}
	p.nc = nc
	p.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { c.noteErr(err) }))
	if err != nil {
		nc.Close()
		return nil, err
	}
	if create {
		p.kv, err = p.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: kvBucket, History: 1, Storage: jetstream.MemoryStorage, Replicas: 1})
	} else {
		p.kv, err = p.js.KeyValue(ctx, kvBucket)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

// countingDialer dials TCP and counts what the connection moves.
type countingDialer struct{ cc *connCounter }

func (d countingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := net.DialTimeout(network, address, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return d.cc.wrap(c), nil
}

func (c *natsKV) noteErr(err error) {
	c.errMu.Lock()
	if c.firstErr == nil {
		c.firstErr = err
	}
	c.errMu.Unlock()
}

func (c *natsKV) Put(ctx context.Context, i int, key string, value []byte) error {
	_, err := c.ps[i].js.PublishAsync("$KV."+kvBucket+"."+key, value, jetstream.WithStallWait(time.Minute))
	return err
}

func (c *natsKV) Delete(ctx context.Context, i int, key string) error {
	m := nats.NewMsg("$KV." + kvBucket + "." + key)
	m.Header.Set("KV-Operation", "DEL") // what kv.Delete sends
	_, err := c.ps[i].js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute))
	return err
}

func (c *natsKV) Flush(ctx context.Context, i int) error {
	select {
	case <-c.ps[i].js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	c.errMu.Lock()
	defer c.errMu.Unlock()
	err := c.firstErr
	c.firstErr = nil
	return err
}

func (c *natsKV) Watch(i int, fn func(key string, missed int)) error {
	p := c.ps[i]
	p.fn = fn
	w, err := p.kv.WatchAll(context.Background(), jetstream.UpdatesOnly())
	if err != nil {
		return err
	}
	p.startWatch(w, nil)
	return nil
}

// watchInitial starts watching every key with opts and waits until the
// initial values are in.
func (p *natsParticipant) watchInitial(ctx context.Context, opts ...jetstream.WatchOpt) error {
	w, err := p.kv.WatchAll(ctx, opts...)
	if err != nil {
		return err
	}
	ready := make(chan struct{})
	p.startWatch(w, ready)
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startWatch runs p's watch loop on w: fn for every entry; the first nil
// (initial values delivered) is sent on ready.
func (p *natsParticipant) startWatch(w jetstream.KeyWatcher, ready chan<- struct{}) {
	p.w = w
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		for e := range w.Updates() {
			if e == nil {
				if ready != nil {
					close(ready)
					ready = nil
				}
				continue
			}
			if r := e.Revision(); r > p.lastRev.Load() {
				p.lastRev.Store(r)
			}
			if p.fn != nil {
				p.fn(e.Key(), 0)
			}
		}
	}()
}

func (p *natsParticipant) close() {
	if p.w != nil {
		_ = p.w.Stop()
		<-p.done
		p.w = nil
	}
	p.nc.Close()
}

// Join connects a new client and loads every key with a watch that first
// delivers the current value of each key (an ordered push consumer).
func (c *natsKV) Join(ctx context.Context, keys int, held func()) (SyncFigures, error) {
	t0 := time.Now()
	p, err := c.connect(ctx, false)
	if err != nil {
		return SyncFigures{}, err
	}
	defer p.close()
	var count atomic.Int64
	p.fn = func(string, int) { count.Add(1) }
	if err := p.watchInitial(ctx); err != nil {
		return SyncFigures{}, err
	}
	f := SyncFigures{Secs: time.Since(t0).Seconds(), Keys: int(count.Load())}
	d := p.counter.read()
	f.BytesIn, f.BytesOut, f.RoundTrips, f.Exchanges = d.in, d.out, float64(d.turns), d.turns
	f.How = "new connection, KeyValue(bucket), WatchAll until the initial values are in (wire bytes, connection handshake included)"
	if held != nil {
		held()
	}
	return f, nil
}

// Reconnect closes participant i's connection, runs change, then connects
// again and resumes its watch after the last revision it saw: the server
// sends what changed since.
func (c *natsKV) Reconnect(ctx context.Context, i int, change func(context.Context) error, changed []string) (SyncFigures, error) {
	old := c.ps[i]
	old.close()
	if err := change(ctx); err != nil {
		return SyncFigures{}, err
	}
	t0 := time.Now()
	p := &natsParticipant{counter: &connCounter{}, fn: old.fn}
	nc, err := nats.Connect(c.srv.ClientURL(), nats.SetCustomDialer(countingDialer{p.counter}))
	if err != nil {
		return SyncFigures{}, err
	}
	p.nc = nc
	c.ps[i] = p
	before := p.counter.read()
	if p.js, err = jetstream.New(nc); err != nil {
		return SyncFigures{}, err
	}
	if p.kv, err = p.js.KeyValue(ctx, kvBucket); err != nil {
		return SyncFigures{}, err
	}
	seen := map[string]bool{}
	var mu sync.Mutex
	fn := p.fn
	p.fn = func(key string, missed int) {
		mu.Lock()
		seen[key] = true
		mu.Unlock()
		if fn != nil {
			fn(key, missed)
		}
	}
	p.lastRev.Store(old.lastRev.Load())
	if err := p.watchInitial(ctx, jetstream.ResumeFromRevision(old.lastRev.Load()+1)); err != nil {
		return SyncFigures{}, err
	}
	f := SyncFigures{Secs: time.Since(t0).Seconds()}
	d := p.counter.read().sub(before)
	f.BytesIn, f.BytesOut, f.RoundTrips, f.Exchanges = d.in, d.out, float64(d.turns), d.turns
	f.MaxExchangeBytes = d.in + d.out
	mu.Lock()
	for _, k := range changed {
		if seen[k] {
			f.Keys++
		}
	}
	mu.Unlock()
	f.How = fmt.Sprintf("new connection, KeyValue(bucket), WatchAll(ResumeFromRevision(last seen + 1)) until caught up: %d of %d changed keys received", f.Keys, len(changed))
	if f.Keys != len(changed) {
		return f, fmt.Errorf("resumed watch delivered %d of %d changed keys", f.Keys, len(changed))
	}
	return f, nil
}

func (c *natsKV) ServerMem(context.Context) uint64 { return 0 }
func (c *natsKV) ServerPIDs() []int                { return nil }

func (c *natsKV) Close() error {
	for _, p := range c.ps {
		p.close()
	}
	c.srv.Shutdown()
	c.srv.WaitForShutdown()
	return os.RemoveAll(c.dir)
}
