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
	"strings"
	"syscall"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // could not start, or reading standard input failed
	exitUsage = 2 // bad flags, no secret, invalid addresses
)

// keyEnv is the environment variable read when -key is not given.
const keyEnv = "REFLECT_KEY"

// options are the parsed flags.
type options struct {
	key      string
	listen   []string
	peers    []string
	mdns     bool
	identity string
	json     bool
	verbose  bool
	fast     bool
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// errNoKey reports that neither -key nor $REFLECT_KEY gave a secret.
var errNoKey = errors.New("no secret: pass -key SECRET or set " + keyEnv +
	" (every instance of a mesh uses the same one)")

// parseFlags parses the command line; getenv supplies $REFLECT_KEY. Flag
// errors are printed on stderr by the flag package; flag.ErrHelp means -h.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("reflect-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.key, "key", "", "shared `secret` (default $"+keyEnv+")")
	fs.Var((*stringList)(&o.listen), "listen", "listen `multiaddr`, repeatable (default: every interface, TCP, port 0)")
	fs.Var((*stringList)(&o.peers), "peer", "bootstrap peer `multiaddr` with /p2p/ID, repeatable")
	fs.BoolVar(&o.mdns, "mdns", true, "find peers on the LAN with mDNS")
	fs.StringVar(&o.identity, "identity", "", "keep the peer identity in `file` (created if missing)")
	fs.BoolVar(&o.json, "json", false, "machine-readable output: one JSON object per line")
	fs.BoolVar(&o.verbose, "v", false, "debug logs on stderr (default: warnings only)")
	fs.BoolVar(&o.fast, "fast-timers", false, "test timers: notice dead links and redial within about a second, anti-entropy every second")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: reflect-demo [flags]; then commands on stdin (type help)\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintf(stderr, "reflect-demo: %v\n", err)
		fs.Usage()
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

// run is the program: flags in args, commands on stdin, events on stdout,
// logs on stderr. It returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	} else if err != nil {
		return exitUsage
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := node.Config{
		Key:            o.key,
		ListenAddrs:    o.listen,
		BootstrapPeers: o.peers,
		DisableMDNS:    !o.mdns,
		IdentityFile:   o.identity,
		Logger:         log,
	}
	var sopts crdtstore.Options
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
	store, err := crdtstore.Open(n, sopts)
	if err != nil {
		fmt.Fprintf(stderr, "reflect-demo: %v\n", err)
		_ = n.Close()
		return exitFail
	}

	out := newOutput(stdout, o.json, isTerminal(stdin))
	d := newDemo(n, store, out)
	out.reply(ready(n.ID().String(), d.addrs())) // the first line
	d.watchPeers()

	readErr := d.repl(ctx, stdin)
	stop() // a second Ctrl-C during shutdown kills at once
	if err := d.close(log); err != nil {
		log.Warn("reflect-demo: closing", "err", err)
	}
	if readErr != nil {
		fmt.Fprintf(stderr, "reflect-demo: %v\n", readErr)
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
// are noticed in about two seconds, lost peers redialled at least every
// second, and the store runs anti-entropy every second.
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
