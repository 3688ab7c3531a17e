package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reflectmesh/reflect/crdtstore"
	_ "github.com/reflectmesh/reflect/crdtstore/disk" // -data: the stores on disk
	"github.com/reflectmesh/reflect/internal/statuspage"
	"github.com/reflectmesh/reflect/node"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // could not start, reading standard input failed, or (scripts, one-shot) a command failed
	exitUsage = 2 // bad flags, no secret, invalid addresses or command
)

// keyEnv is the environment variable read when -key is not given.
const keyEnv = "REFLECT_KEY"

// defaultOneShotWait is -wait's default: how long a one-shot command waits
// for a peer (and the store's sync) before it gives up.
const defaultOneShotWait = 5 * time.Second

// options are the parsed flags.
type options struct {
	key      string
	listen   []string
	peers    []string
	mdns     bool
	identity string
	store    string
	data     string // -data: keep the store (and the identity) here
	json     bool
	verbose  bool
	wait     time.Duration
	http     string // the status page's listen address, "" for none
	public   bool   // -http-public: serve the page on a non-loopback address
	version  bool
	fast     bool
	maxPeers int      // -max-peers: node.Config.MaxPeers
	cpuProf  string   // -cpuprofile: write a CPU profile here until exit
	command  []string // the arguments after the flags: one command to run
}

// hiddenFlags work but are left out of -h: they are for tests.
var hiddenFlags = map[string]bool{"fast-timers": true, "cpuprofile": true}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// errNoKey reports that neither -key nor $REFLECT_KEY gave a secret.
var errNoKey = errors.New("no secret: pass -key SECRET or set " + keyEnv +
	" (every instance of a mesh uses the same one)")

// newFlagSet defines the flags into o.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("reflect-demo", flag.ContinueOnError)
	fs.StringVar(&o.key, "key", "", "shared `secret` (default $"+keyEnv+")")
	fs.Var((*stringList)(&o.listen), "listen", "listen `multiaddr`, repeatable (default: every interface, TCP, port 0)")
	fs.Var((*stringList)(&o.peers), "peer", "bootstrap peer `multiaddr` with /p2p/ID, repeatable")
	fs.BoolVar(&o.mdns, "mdns", true, "find peers on the LAN with mDNS")
	fs.IntVar(&o.maxPeers, "max-peers", 0, "keep at most `n` direct peers; larger meshes are partial, and relay (default: all up to node.DefaultFullMesh nodes, then node.DefaultMaxPeers)")
	fs.StringVar(&o.identity, "identity", "", "keep the peer identity in `file` (created if missing)")
	fs.StringVar(&o.data, "data", "", "keep the store on disk in `dir` across restarts (and the peer identity, unless -identity)")
	fs.StringVar(&o.store, "store", "", "use the store `name`d so (default \""+crdtstore.DefaultName+"\")")
	fs.BoolVar(&o.json, "json", false, "machine-readable output: one JSON object per line")
	fs.BoolVar(&o.verbose, "v", false, "debug logs on stderr (default: warnings only)")
	fs.DurationVar(&o.wait, "wait", defaultOneShotWait, "one-shot COMMAND: how long to wait for a peer and the store's sync (0: not at all)")
	fs.StringVar(&o.http, "http", "", "serve a live status page, /status and /metrics at `host:port` (loopback only, e.g. 127.0.0.1:8080)")
	fs.BoolVar(&o.public, "http-public", false, "let -http listen on a non-loopback address: anyone who reaches it sees the mesh's peers, topics and key names")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(&o.fast, "fast-timers", false, "test timers: notice dead links within about 4 s and redial every second, anti-entropy every second")
	fs.StringVar(&o.cpuProf, "cpuprofile", "", "write a CPU profile to `file` from the start until the demo exits (the scale scenario's diagnosis)")
	return fs
}

// parseFlags parses the command line; getenv supplies $REFLECT_KEY. Flag
// errors are printed on stderr; flag.ErrHelp means -h (the caller prints
// the help).
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := newFlagSet(&o)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // -h: the caller prints the help on stdout
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "usage: reflect-demo [flags] [COMMAND [ARG...]]; reflect-demo -h for the flags and commands\n")
		}
		return o, err
	}
	if fs.NArg() > 0 {
		o.command = fs.Args()
	}
	if o.version {
		return o, nil
	}
	if o.wait < 0 {
		err := fmt.Errorf("-wait %v is negative", o.wait)
		fmt.Fprintf(stderr, "reflect-demo: %v\n", err)
		return o, err
	}
	if o.http != "" && !o.public && !statuspage.IsLoopbackHost(o.http) {
		err := fmt.Errorf("-http %s is not a loopback address: the status page shows the mesh's peers, topics and key names to anyone who can reach it; add -http-public to serve it there anyway", o.http)
		fmt.Fprintf(stderr, "reflect-demo: %v\n", err)
		return o, err
	}
	if o.key == "" {
		o.key = getenv(keyEnv)
	}
	if o.key == "" {
		fmt.Fprintf(stderr, "reflect-demo: %v\n", errNoKey)
		return o, errNoKey
	}
	return o, nil
}

// run is the program: flags in args, commands on stdin (or one in args),
// events on stdout, logs on stderr. It returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, os.Getenv, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = io.WriteString(stdout, helpPage())
		return exitOK
	case err != nil:
		return exitUsage
	case o.version:
		fmt.Fprintln(stdout, versionLine())
		return exitOK
	}
	if o.cpuProf != "" {
		stopProfile, err := startCPUProfile(o.cpuProf)
		if err != nil {
			fmt.Fprintf(stderr, "reflect-demo: -cpuprofile: %v\n", err)
			return exitFail
		}
		defer stopProfile()
	}
	oneShot := len(o.command) > 0
	var cmd command
	if oneShot {
		if cmd, err = parseLine(strings.Join(o.command, " ")); err != nil {
			if errors.Is(err, errSkip) {
				err = fmt.Errorf("no command in %q", o.command)
			}
			fmt.Fprintf(stderr, "reflect-demo: %v\n", err)
			return exitUsage
		}
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	logW := &swapWriter{w: stderr}
	log := slog.New(slog.NewTextHandler(logW, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := node.Config{
		Key:            o.key,
		ListenAddrs:    o.listen,
		BootstrapPeers: o.peers,
		DisableMDNS:    !o.mdns,
		IdentityFile:   o.identity,
		MaxPeers:       o.maxPeers,
		Logger:         log,
	}
	sopts := crdtstore.Options{Name: o.store}
	if o.data != "" {
		if err := os.MkdirAll(o.data, 0o700); err != nil {
			fmt.Fprintf(stderr, "reflect-demo: -data: %v\n", err)
			return exitFail
		}
		if cfg.IdentityFile == "" { // the store resumes its replica id only under the same peer id
			cfg.IdentityFile = filepath.Join(o.data, "identity")
		}
		name := o.store
		if name == "" {
			name = crdtstore.DefaultName
		}
		sopts.Dir = filepath.Join(o.data, "store-"+name)
	}
	var reg *prometheus.Registry
	if o.http != "" {
		reg = newRegistry()
		cfg.Metrics, sopts.Metrics = reg, reg
	}
	if o.fast {
		cfg, sopts = fastTimers(cfg, sopts)
	}
	n, err := node.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "reflect-demo: %v\n", err)
		if errors.Is(err, node.ErrConfig) {
			return exitUsage
		}
		return exitFail
	}
	if bad := unusableListen(n.Host(), o.listen); len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintf(stderr, "reflect-demo: -listen %s: %v\n", b.addr, b.why)
		}
		_ = n.Close()
		return exitFail
	}
	store, err := crdtstore.Open(n, sopts)
	if err != nil {
		fmt.Fprintf(stderr, "reflect-demo: %v\n", err)
		_ = n.Close()
		if errors.Is(err, crdtstore.ErrConfig) {
			return exitUsage
		}
		return exitFail
	}

	var status *statusServer // nil without -http
	if o.http != "" {
		if status, err = startStatus(o.http, o.public, n, store, sopts.Name, reg, log); err != nil {
			fmt.Fprintf(stderr, "reflect-demo: %v\n", err)
			_ = store.Close()
			_ = n.Close()
			return exitFail
		}
	}

	// Scripts (stdin not a terminal), -json and one-shot runs report a
	// failed command in the exit status; a person at a terminal sees it.
	interactive := !oneShot && isTerminal(stdin)
	var tty *terminal // line editing: human mode, stdin and stdout terminals
	if interactive && !o.json {
		tty = openTerminal(stdin, stdout)
	}
	outW, errW := stdout, stderr
	if tty != nil {
		outW, errW = tty, tty
		logW.set(tty)
	}
	out := newOutput(outW, errW, o.json, interactive && tty == nil)
	d := newDemo(n, store, out)
	d.progress = tty != nil
	var readErr error
	switch {
	case oneShot:
		if o.json {
			out.reply(ready(n.ID().String(), d.addrs(), status.url()))
		}
		d.oneShot(ctx, cmd, o.wait)
	case tty != nil:
		out.reply(ready(n.ID().String(), d.addrs(), status.url())) // the first line
		d.watchPeers()
		readErr = d.repl(ctx, tty.readLines)
		tty.close() // cooked mode again: a second Ctrl-C is a real SIGINT
		out.setWriters(stdout, stderr)
		logW.set(stderr)
	default:
		out.reply(ready(n.ID().String(), d.addrs(), status.url())) // the first line
		d.watchPeers()
		readErr = d.repl(ctx, func(lines chan<- line) { readLines(stdin, lines) })
	}
	stop() // a second Ctrl-C during shutdown kills at once
	status.close()
	if err := d.close(log); err != nil {
		log.Warn("reflect-demo: closing", "err", err)
	}
	switch {
	case readErr != nil:
		fmt.Fprintf(stderr, "reflect-demo: %v\n", readErr)
		return exitFail
	case out.failed() > 0 && (o.json || !interactive):
		return exitFail
	}
	return exitOK
}

// isTerminal reports whether r is a terminal, for the prompt: a character
// device other than the null device (without a dependency for isatty).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// fastTimers shortens the timers for tests and fault drills: dead links
// are noticed in about four seconds (a second of silence, then three
// probes a second apart), lost peers redialled at least every second, and
// the store runs anti-entropy every second.
func fastTimers(cfg node.Config, o crdtstore.Options) (node.Config, crdtstore.Options) {
	cfg.DialTimeout = 2 * time.Second
	cfg.ReconnectMin = 50 * time.Millisecond
	cfg.ReconnectMax = time.Second
	cfg.KeepAlive = time.Second
	cfg.WriteTimeout = time.Second
	o.SyncInterval = time.Second
	o.SyncTimeout = 10 * time.Second
	o.DiscoveryGrace = 300 * time.Millisecond
	return cfg, o
}
