package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisSystem is Redis pub/sub: a redis-server (Debian's package) started
// for each cluster on 127.0.0.1 with a free port, --save ” --appendonly no,
// defaults otherwise, and stopped when the cluster closes; one go-redis
// client per participant, subscribers read PubSub.Channel() (defaults).
//
// pipelined publishes through a bounded queue (4,096, like Reflect's) that
// one goroutine drains into pipelines of up to 256 PUBLISH commands or
// 128 KiB: what a developer writes to get Redis's pipelined rate. Publish
// blocks while the queue is full. Without it ("redis-rtt"), each Publish
// is one round trip.
type redisSystem struct {
	pipelined bool
}

func (s *redisSystem) Name() string {
	if s.pipelined {
		return "redis"
	}
	return "redis-rtt"
}

func (s *redisSystem) Describe() string {
	how := "pipelined publisher (queue 4096, ≤256 cmds or 128 KiB per pipeline)"
	if !s.pipelined {
		how = "one PUBLISH per round trip"
	}
	return "Redis pub/sub: " + redisVersion() + " (127.0.0.1, --save '' --appendonly no), go-redis " +
		moduleVersion("github.com/redis/go-redis/v9") + ", " + how
}

func (*redisSystem) Unavailable() string {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "redis-server not found (apt-get install -y redis-server)"
	}
	return ""
}

// redisVersion returns "redis-server 7.0.15" or "redis-server (unknown)".
func redisVersion() string {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return "redis-server (unknown)"
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return "redis-server " + v
		}
	}
	return "redis-server (unknown)"
}

type redisCluster struct {
	srv     *redisServer
	pub     *redis.Client
	clients []*redis.Client
	subs    []*redis.PubSub
	wg      sync.WaitGroup

	// pipelined publishing
	queue  chan []byte
	stop   chan struct{}
	failed atomic.Uint64 // messages whose pipeline failed
}

func (s *redisSystem) OpenPubSub(ctx context.Context, n int, _ OpenOptions, deliver func(int, []byte)) (PubSubCluster, error) {
	srv, err := startRedis(ctx)
	if err != nil {
		return nil, err
	}
	c := &redisCluster{srv: srv, stop: make(chan struct{})}
	fail := func(err error) (PubSubCluster, error) {
		_ = c.Close()
		return nil, err
	}
	c.pub = redis.NewClient(&redis.Options{Addr: srv.addr})
	for i := 1; i < n; i++ {
		cl := redis.NewClient(&redis.Options{Addr: srv.addr})
		c.clients = append(c.clients, cl)
		ps := cl.Subscribe(ctx, topicName)
		if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
			return fail(fmt.Errorf("subscribe %d: %w", i, err))
		}
		c.subs = append(c.subs, ps)
		ch := ps.Channel()
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for m := range ch {
				deliver(i, []byte(m.Payload))
			}
		}()
	}
	if err := waitFor(ctx, func() bool {
		v, err := c.pub.PubSubNumSub(ctx, topicName).Result()
		return err == nil && v[topicName] >= int64(n-1)
	}); err != nil {
		return fail(fmt.Errorf("waiting for %d subscribers: %w", n-1, err))
	}
	if s.pipelined {
		c.queue = make(chan []byte, 4096)
		c.wg.Add(1)
		go c.pipeline()
	}
	return c, nil
}

func (c *redisCluster) Publish(ctx context.Context, data []byte) error {
	if c.queue == nil {
		return c.pub.Publish(ctx, topicName, data).Err()
	}
	m := bytes.Clone(data)
	select {
	case c.queue <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return net.ErrClosed
	}
}

// pipeline sends whatever is queued in one pipeline, like Reflect's batching:
// no timer, a lone message goes at once.
func (c *redisCluster) pipeline() {
	defer c.wg.Done()
	ctx := context.Background()
	for {
		var m []byte
		select {
		case m = <-c.queue:
		case <-c.stop:
			return
		}
		p := c.pub.Pipeline()
		p.Publish(ctx, topicName, m)
		count, size := 1, len(m)
	fill:
		for count < 256 && size < 128<<10 {
			select {
			case m = <-c.queue:
				p.Publish(ctx, topicName, m)
				count++
				size += len(m)
			default:
				break fill
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			c.failed.Add(uint64(count))
		}
	}
}

func (c *redisCluster) Drops() Drops {
	cut := c.srv.outputLimitDisconnects()
	failed := c.failed.Load()
	return newDrops("subscribers closed over output buffer limit (server log)", cut,
		"messages of failed pipelines", failed)
}

func (c *redisCluster) ServerPIDs() []int { return []int{c.srv.cmd.Process.Pid} }

func (c *redisCluster) Close() error {
	close(c.stop)
	for _, ps := range c.subs {
		_ = ps.Close() // closes its Channel, ending the reader
	}
	c.wg.Wait()
	for _, cl := range c.clients {
		_ = cl.Close()
	}
	if c.pub != nil {
		_ = c.pub.Close()
	}
	return c.srv.stop()
}

// redisServer is one redis-server process this benchmark started.
type redisServer struct {
	cmd  *exec.Cmd
	addr string
	log  string // its log file
	dir  string
	done chan struct{}
}

// startRedis starts redis-server on 127.0.0.1 and a free port, without
// persistence, and waits until it answers PING.
func startRedis(ctx context.Context) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bench-redis-")
	if err != nil {
		return nil, err
	}
	s := &redisServer{addr: "127.0.0.1:" + strconv.Itoa(port), log: filepath.Join(dir, "redis.log"), dir: dir, done: make(chan struct{})}
	s.cmd = exec.Command("redis-server",
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--dir", dir, "--logfile", s.log)
	// It dies with us, whatever happens to this process.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	cl := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer cl.Close()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = waitFor(wctx, func() bool { return cl.Ping(wctx).Err() == nil })
	if err != nil {
		_ = s.stop()
		return nil, fmt.Errorf("redis-server did not answer on %s: %w", s.addr, err)
	}
	return s, nil
}

// stop ends the server this benchmark started (by its PID), politely first.
func (s *redisServer) stop() error {
	defer os.RemoveAll(s.dir)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(5 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	return errors.New("redis-server ignored SIGTERM; killed")
}

// outputLimitDisconnects counts the subscribers the server closed for
// exceeding client-output-buffer-limit pubsub (32 MB hard, 8 MB for 60 s
// by default): go-redis reconnects silently, so this log line is the only
// trace of the messages lost.
func (s *redisServer) outputLimitDisconnects() uint64 {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return 0
	}
	return uint64(bytes.Count(b, []byte("output buffer limits")))
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
