package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// keyspacePrefix starts the channels of Redis keyspace notifications.
const keyspacePrefix = "__keyspace@0__:"

func (s *redisSystem) DescribeKV() string {
	how := "writes pipelined (queue 4,096, ≤ 256 commands per pipeline)"
	if !s.pipelined {
		how = "one SET/DEL per round trip"
	}
	return "Redis SET/GET/DEL: " + redisVersion() + " as above, notify-keyspace-events K$g; one client per participant, " + how +
		"; the others PSUBSCRIBE to the keyspace notifications (the change is visible when its notification arrives: " +
		"the value is then one GET away); joins and reconnects: SCAN (COUNT 1000) + MGET per page, pipelined together"
}

// redisKV is one redis-server and one client per participant.
type redisKV struct {
	srv       *redisServer
	pipelined bool
	clients   []*redis.Client
	writers   []*redisWriter
	subs      []*redis.PubSub
	wg        sync.WaitGroup
}

func (s *redisSystem) OpenKV(ctx context.Context, n int) (KVCluster, error) {
	srv, err := startRedis(ctx)
	if err != nil {
		return nil, err
	}
	c := &redisKV{srv: srv, pipelined: s.pipelined}
	fail := func(err error) (KVCluster, error) {
		_ = c.Close()
		return nil, err
	}
	for i := 0; i < n; i++ {
		cl := redis.NewClient(&redis.Options{Addr: srv.addr})
		c.clients = append(c.clients, cl)
		if s.pipelined {
			w := newRedisWriter(cl)
			c.writers = append(c.writers, w)
		}
	}
	if err := c.clients[0].ConfigSet(ctx, "notify-keyspace-events", "K$g").Err(); err != nil {
		return fail(err)
	}
	return c, nil
}

// redisWriter sends a participant's writes in pipelines, like the pub/sub
// publisher: whatever is queued goes in one pipeline, a lone write at once.
type redisWriter struct {
	cl      *redis.Client
	queue   chan redisCmd
	pending sync.WaitGroup // writes queued or in flight
	done    chan struct{}
	mu      sync.Mutex
	err     error
}

type redisCmd struct {
	del   bool
	key   string
	value []byte
}

func newRedisWriter(cl *redis.Client) *redisWriter {
	w := &redisWriter{cl: cl, queue: make(chan redisCmd, 4096), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *redisWriter) loop() {
	defer close(w.done)
	ctx := context.Background()
	for m := range w.queue {
		p := w.cl.Pipeline()
		add := func(m redisCmd) {
			if m.del {
				p.Del(ctx, m.key)
			} else {
				p.Set(ctx, m.key, m.value, 0)
			}
		}
		add(m)
		count := 1
	fill:
		for count < 256 {
			select {
			case m, ok := <-w.queue:
				if !ok {
					break fill
				}
				add(m)
				count++
			default:
				break fill
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
		for range count {
			w.pending.Done()
		}
	}
}

func (w *redisWriter) send(ctx context.Context, m redisCmd) error {
	w.pending.Add(1)
	select {
	case w.queue <- m:
		return nil
	case <-ctx.Done():
		w.pending.Done()
		return ctx.Err()
	}
}

func (w *redisWriter) flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() { w.pending.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.err
	w.err = nil
	return err
}

func (w *redisWriter) close() {
	close(w.queue)
	<-w.done
}

func (c *redisKV) Put(ctx context.Context, i int, key string, value []byte) error {
	if c.pipelined {
		return c.writers[i].send(ctx, redisCmd{key: key, value: bytes.Clone(value)})
	}
	return c.clients[i].Set(ctx, key, value, 0).Err()
}

func (c *redisKV) Delete(ctx context.Context, i int, key string) error {
	if c.pipelined {
		return c.writers[i].send(ctx, redisCmd{del: true, key: key})
	}
	return c.clients[i].Del(ctx, key).Err()
}

func (c *redisKV) Flush(ctx context.Context, i int) error {
	if c.pipelined {
		return c.writers[i].flush(ctx)
	}
	return nil
}

func (c *redisKV) Watch(i int, fn func(key string, missed int)) error {
	ctx := context.Background()
	ps := c.clients[i].PSubscribe(ctx, keyspacePrefix+"*")
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		return err
	}
	c.subs = append(c.subs, ps)
	ch := ps.Channel(redis.WithChannelSize(1 << 14))
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for m := range ch {
			fn(strings.TrimPrefix(m.Channel, keyspacePrefix), 0)
		}
	}()
	return nil
}

// load reads every key with a new client: SCAN pages of about 1,000 keys,
// each page's MGET pipelined with the next SCAN (one round trip per page).
func (c *redisKV) load(ctx context.Context) (SyncFigures, error) {
	cc := &connCounter{}
	t0 := time.Now()
	cl := redis.NewClient(&redis.Options{Addr: c.srv.addr, PoolSize: 1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return cc.wrap(conn), nil
		}})
	defer cl.Close()
	f := SyncFigures{}
	keys, cursor, err := cl.Scan(ctx, 0, "*", 1000).Result()
	if err != nil {
		return f, err
	}
	f.Exchanges = 1
	for {
		p := cl.Pipeline()
		var mget *redis.SliceCmd
		if len(keys) > 0 {
			mget = p.MGet(ctx, keys...)
		}
		var scan *redis.ScanCmd
		if cursor != 0 {
			scan = p.Scan(ctx, cursor, "*", 1000)
		}
		if mget == nil && scan == nil {
			break
		}
		if _, err := p.Exec(ctx); err != nil {
			return f, err
		}
		f.Exchanges++
		if mget != nil {
			for _, v := range mget.Val() {
				if v != nil {
					f.Keys++
				}
			}
		}
		keys = nil
		if scan != nil {
			keys, cursor = scan.Val()
		}
	}
	f.Secs = time.Since(t0).Seconds()
	d := cc.read()
	f.BytesIn, f.BytesOut = d.in, d.out
	f.RoundTrips = float64(f.Exchanges)
	f.MaxExchangeBytes = d.in + d.out
	return f, nil
}

func (c *redisKV) Join(ctx context.Context, keys int, held func()) (SyncFigures, error) {
	f, err := c.load(ctx)
	if err == nil && held != nil {
		held()
	}
	f.How = "new client: SCAN COUNT 1000 + MGET of each page, pipelined together (wire bytes, connection handshake included)"
	return f, err
}

// Reconnect: Redis keeps no history of changes and keyspace notifications
// are not kept for a subscriber that is away, so a client that mirrors the
// store and was disconnected must read it all again.
func (c *redisKV) Reconnect(ctx context.Context, i int, change func(context.Context) error, changed []string) (SyncFigures, error) {
	if err := change(ctx); err != nil {
		return SyncFigures{}, err
	}
	f, err := c.load(ctx)
	f.Keys = len(changed)
	f.How = "no change log in Redis (notifications missed while away are lost): reload everything as for a join"
	return f, err
}

// ServerMem returns INFO memory's used_memory.
func (c *redisKV) ServerMem(ctx context.Context) uint64 {
	s, err := c.clients[0].Info(ctx, "memory").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

func (c *redisKV) ServerPIDs() []int { return []int{c.srv.cmd.Process.Pid} }

func (c *redisKV) Close() error {
	for _, w := range c.writers {
		w.close()
	}
	for _, ps := range c.subs {
		_ = ps.Close()
	}
	c.wg.Wait()
	for _, cl := range c.clients {
		_ = cl.Close()
	}
	if err := c.srv.stop(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	return nil
}
