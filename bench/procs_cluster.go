package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/reflectmesh/reflect/bench/participant"
	"github.com/reflectmesh/reflect/pnet"
)

// procsSystems are the systems of the -procs mode, in table order: the
// first is the system under test. Each participant is its own process (a
// binary of bench/participant/cmd); NATS's server is one more
// (nats-server, the library), Redis's is redis-server.
var procsSystems = []string{"reflect", "nats", "nats-tls", "redis"}

// describeProcs says what runs for each -procs system.
func describeProcs(name string) SystemInfo {
	info := SystemInfo{Name: name}
	switch name {
	case "reflect":
		info.Describe = "one process per node: " + (&reflectSystem{}).Describe()
	case "nats":
		info.Describe = "one process per client (nats.go " + moduleVersion("github.com/nats-io/nats.go") +
			" defaults), nats-server " + server.VERSION + " in a process of its own (defaults, 127.0.0.1)"
	case "nats-tls":
		info.Describe = "as nats, with TLS: the server presents a certificate (ECDSA P-256) of a CA generated at start, " +
			"every client verifies it (nats.RootCAs); Go's crypto/tls defaults (TLS 1.3)"
	case "redis":
		info.Describe = "one process per client: " + (&redisSystem{pipelined: true}).Describe()
		info.Unavailable = (&redisSystem{}).Unavailable()
	}
	return info
}

// procsCluster is one cluster of the -procs mode: participant 0 publishes,
// 1..n−1 subscribe, each a process; servers are NATS's or Redis's.
type procsCluster struct {
	sys   string
	kv    bool     // a store cluster (-kv participants)
	exe   string   // the participants' binary
	args  []string // their flags besides -role
	addrs []string // Reflect: the participants' addresses
	parts []*proc  // participants; 0 is the publisher (the store's writer)
	srv   *proc    // nats-server, or nil
	redis *redisServer
	tls   *tlsFiles
}

// pidRole is one process of a cluster and what it is.
type pidRole struct {
	pid  int
	role string // roleServer, rolePub, roleSub
}

const (
	rolePub    = "publisher"
	roleSub    = "subscriber"
	roleServer = "server"
)

// openProcs starts the cluster's processes and returns once every
// subscriber is known to the publisher; bin is the directory of the
// participant binaries (buildParticipants). With kv, the participants
// share a store instead (reflect and nats only): it returns once it
// replicates between all of them.
func openProcs(ctx context.Context, bin, sys string, n int, star, kv bool) (c *procsCluster, err error) {
	cl := &procsCluster{sys: sys, kv: kv}
	c = cl
	defer func() {
		if err != nil {
			cl.kill() // c may be nil already: a return sets it
			c = nil
		}
	}()
	var exe string
	var args []string // participant flags besides -role
	switch sys {
	case "reflect":
		secret, err := pnet.GenerateSecret()
		if err != nil {
			return nil, err
		}
		exe, args = "reflect-node", []string{"-key", secret}
	case "nats", "nats-tls":
		var sargs []string
		if sys == "nats-tls" {
			if c.tls, err = makeTLS(); err != nil {
				return nil, err
			}
			sargs = []string{"-cert", c.tls.Cert, "-cert-key", c.tls.Key}
		}
		if kv {
			sargs = append(sargs, "-kv")
		}
		if c.srv, err = startProc(sys+" server", filepath.Join(bin, "nats-server"), sargs...); err != nil {
			return nil, err
		}
		r, err := c.srv.call(ctx, participant.Command{Op: "addr"})
		if err != nil {
			return nil, err
		}
		exe, args = "nats-client", []string{"-url", r.Addr}
		if c.tls != nil {
			args = append(args, "-ca", c.tls.CA)
		}
	case "redis":
		if c.redis, err = startRedis(ctx); err != nil {
			return nil, err
		}
		exe, args = "redis-client", []string{"-url", c.redis.addr}
	default:
		return nil, fmt.Errorf("-procs: unknown system %q", sys)
	}
	if kv {
		if sys != "reflect" && sys != "nats" {
			return nil, fmt.Errorf("-procs: %s has no store here", sys)
		}
		args = append(args, "-kv")
		if sys == "reflect" {
			exe = "reflect-store" // the store linked only where it runs
		}
	}
	c.exe, c.args = filepath.Join(bin, exe), args
	for i := range n {
		role := "sub"
		if i == 0 {
			role = "pub"
		}
		p, err := startProc(sys+" "+role+" "+strconv.Itoa(i), c.exe, append([]string{"-role", role}, args...)...)
		if err != nil {
			return nil, err
		}
		c.parts = append(c.parts, p)
	}
	if sys == "reflect" {
		if err := c.meshReflect(ctx, star); err != nil {
			return nil, err
		}
	}
	errs := make([]error, n)
	if kv {
		parallel(n, func(i int) {
			_, errs[i] = c.parts[i].call(ctx, participant.Command{Op: "kv_ready", N: n - 1})
		})
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		if sys == "reflect" {
			time.Sleep(gossipSettle)
		}
		return c, nil
	}
	parallel(n-1, func(i int) {
		_, errs[i+1] = c.parts[i+1].call(ctx, participant.Command{Op: "subscribe"})
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if _, err := c.parts[0].call(ctx, participant.Command{Op: "wait_subscribers", N: n - 1}); err != nil {
		return nil, err
	}
	if sys == "reflect" {
		// As in reflectSystem: the first heartbeats build the meshes.
		time.Sleep(gossipSettle)
	}
	return c, nil
}

// meshReflect connects the nodes as connectAll does (every pair, or star)
// and waits until each has its peers.
func (c *procsCluster) meshReflect(ctx context.Context, star bool) error {
	n := len(c.parts)
	addrs := make([]string, n)
	for i, p := range c.parts {
		r, err := p.call(ctx, participant.Command{Op: "addr"})
		if err != nil {
			return err
		}
		addrs[i] = r.Addr
	}
	c.addrs = addrs
	errs := make([]error, n)
	parallel(n-1, func(k int) {
		i := k + 1 // participant i dials every j < i (star: 0 only)
		to := addrs[:i]
		if star {
			to = addrs[:1]
		}
		_, errs[i] = c.parts[i].call(ctx, participant.Command{Op: "connect", Addrs: to})
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	parallel(n, func(i int) {
		want := n - 1
		if star && i > 0 {
			want = 1
		}
		_, errs[i] = c.parts[i].call(ctx, participant.Command{Op: "wait_peers", N: want})
	})
	return errors.Join(errs...)
}

// startJoiner starts one more store participant (kv clusters); the caller
// stops it.
func (c *procsCluster) startJoiner() (*proc, error) {
	return startProc(c.sys+" joiner", c.exe, append([]string{"-role", "sub"}, c.args...)...)
}

// processes lists every process of the cluster, servers first.
func (c *procsCluster) processes() []pidRole {
	var out []pidRole
	if c.srv != nil {
		out = append(out, pidRole{c.srv.pid(), roleServer})
	}
	if c.redis != nil {
		out = append(out, pidRole{c.redis.cmd.Process.Pid, roleServer})
	}
	for i, p := range c.parts {
		role := roleSub
		if i == 0 {
			role = rolePub
		}
		out = append(out, pidRole{p.pid(), role})
	}
	return out
}

// drops sums the drop counters of every process, and redis-server's log.
func (c *procsCluster) drops(ctx context.Context) Drops {
	total := newDrops()
	add := func(d Drops) {
		for k, v := range d.Counts {
			total.Counts[k] += v
			total.Events += v
		}
	}
	for _, p := range append([]*proc{c.srv}, c.parts...) {
		if p == nil {
			continue
		}
		if r, err := p.call(ctx, participant.Command{Op: "drops"}); err == nil {
			add(Drops{Counts: r.Drops})
		}
	}
	if c.redis != nil {
		add(newDrops("subscribers closed over output buffer limit (server log)", c.redis.outputLimitDisconnects()))
	}
	return total
}

// close stops every process: participants first, then the servers.
func (c *procsCluster) close() error {
	errs := make([]error, len(c.parts))
	parallel(len(c.parts), func(i int) { errs[i] = c.parts[i].stop() })
	if c.srv != nil {
		errs = append(errs, c.srv.stop())
	}
	if c.redis != nil {
		errs = append(errs, c.redis.stop())
	}
	if c.tls != nil {
		c.tls.remove()
	}
	return errors.Join(errs...)
}

// kill ends every process at once (an open that failed).
func (c *procsCluster) kill() {
	for _, p := range c.parts {
		p.kill()
	}
	if c.srv != nil {
		c.srv.kill()
	}
	if c.redis != nil {
		_ = c.redis.stop()
	}
	if c.tls != nil {
		c.tls.remove()
	}
}
