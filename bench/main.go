package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	code, done, err := isolate()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if done {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the flags ask for.
type config struct {
	quick      bool
	ns         []int
	runs       int
	out        string
	md         string
	plots      string
	systems    []System
	scenarios  map[string]bool
	params     Params
	star       bool
	cpuProfile string
	timeout    time.Duration
	quiet      bool
	command    string
	from       string
	// procs selects the multi-process mode (procs_main.go) of the
	// systems in procsSystems, written to procsOut.
	procs        bool
	procsSystems []string
	procsOut     string
	participants string // prebuilt participant binaries, or "" to build them
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if cfg.procs {
		return runProcs(ctx, cfg, stdout, stderr)
	}

	var res *Results
	if cfg.from != "" {
		if res, err = loadResults(cfg.from); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	} else {
		res = benchmark(ctx, cfg, stderr)
	}
	printText(stdout, res)
	failed := false
	if cfg.out != "" {
		if err := writeJSON(cfg.out, res); err != nil {
			fmt.Fprintln(stderr, "bench: writing JSON:", err)
			failed = true
		} else {
			fmt.Fprintln(stderr, "bench: wrote", cfg.out)
		}
	}
	var plots []string
	if cfg.plots != "" {
		if plots, err = writePlots(cfg.plots, res); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			failed = true
		} else {
			fmt.Fprintln(stderr, "bench: wrote", strings.Join(plots, ", "))
		}
	}
	if cfg.md != "" {
		procs, err := loadProcsResults(procsResultsFile)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintln(stderr, "bench: the one-process-per-participant results are left out:", err)
		}
		if err := writeMarkdown(cfg.md, res, procs, plots); err != nil {
			fmt.Fprintln(stderr, "bench: writing Markdown:", err)
			failed = true
		} else {
			fmt.Fprintln(stderr, "bench: wrote", cfg.md)
		}
	}
	for _, s := range res.Samples {
		if s.Error != "" {
			failed = true
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "bench: stopped early:", context.Cause(ctx))
		failed = true
	}
	if failed {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		quick     = fs.Bool("quick", false, "CI smoke run: short scenarios, N=5, one run, under a minute; writes no files unless -out/-md/-plots are given")
		ns        = fs.String("n", "5,20", "cluster sizes N (1 publisher + N−1 subscribers), comma-separated (-quick: 5)")
		runs      = fs.Int("runs", 3, "runs per system and N; medians and ranges are reported (-quick: 1)")
		out       = fs.String("out", "results.json", "JSON output file, '' for none (-quick: none)")
		md        = fs.String("md", "../BENCHMARKS.md", "Markdown report to regenerate, '' for none (-quick: none)")
		plots     = fs.String("plots", "plots", "directory for the PNG plots, '' for none (-quick: none)")
		systems   = fs.String("systems", strings.Join(defaultSystems, ","), "systems to run: reflect, libp2p, nats, redis (pipelined), redis-rtt")
		scenarios = fs.String("scenarios", "latency,throughput,headers,burst,set-visible,set-rate,join,reconnect,key-memory,request,request-rate,queue",
			"scenarios to run: pub/sub latency, throughput, headers, burst; store (at N = -store-n only) set-visible, set-rate, join, reconnect, key-memory; "+
				"calls (at N = 5 only) request, request-rate, queue")
		storeN   = fs.Int("store-n", 5, "N of the store scenarios (their cluster size; they run only if it is among -n)")
		storeK   = fs.Int("store-keys", 0, "keys of the store written by set-rate, then joined and reconnected to (default 100,000, -quick 20,000)")
		storeW   = fs.Duration("store-wait", 0, "bound of each wait of the store scenarios: replicas applying the load, a join, a reconnect (default 1m, -quick 20s)")
		sizes    = fs.String("sizes", "256,65536", "message sizes for throughput and burst (256 and/or 65536)")
		topology = fs.String("topology", "full", "peer-to-peer connections: full (every pair, as mDNS gives) or star (subscribers to the publisher)")
		cpuprof  = fs.String("cpuprofile", "", "write a CPU profile of the scenarios (after open and warm-up); needs one system, one N, one run")
		timeout  = fs.Duration("timeout", 0, "stop after this long (default 2h, -quick 5m)")
		quiet    = fs.Bool("q", false, "no progress lines on stderr")
		trials   = fs.Int("search-trials", -1, "paced trials of the throughput search (default 5, -quick 2); 0 reports the unpaced run only (e.g. for -cpuprofile)")
		from     = fs.String("from", "", "measure nothing: regenerate the table, JSON, plots and Markdown from this results.json")
		procs    = fs.Bool("procs", false, "one OS process per participant (systems reflect, nats, nats-tls, redis; scenarios latency, throughput, join (reflect, nats at -store-n); "+
			"default N 5, -out "+procsResultsFile+"); BENCHMARKS.md shows its tables first, the in-process ones (results.json) as the library micro-view")
		participants = fs.String("participants", "", "-procs: directory of prebuilt participant binaries (go build -o DIR ./participant/cmd/...); default: built at start")
	)
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg := config{quick: *quick, runs: *runs, out: *out, md: *md, plots: *plots, cpuProfile: *cpuprof,
		timeout: *timeout, quiet: *quiet, star: *topology == "star", from: *from,
		command: strings.TrimSpace("cd bench && go run . " + strings.Join(args, " "))}
	cfg.params = fullParams()
	if cfg.timeout == 0 {
		cfg.timeout = 2 * time.Hour
	}
	if *quick {
		cfg.params = quickParams()
		if !set["n"] {
			*ns = "5"
		}
		if !set["runs"] {
			cfg.runs = 1
		}
		for name, v := range map[string]*string{"out": &cfg.out, "md": &cfg.md, "plots": &cfg.plots} {
			if !set[name] {
				*v = ""
			}
		}
		if !set["timeout"] {
			cfg.timeout = 5 * time.Minute
		}
	}
	if *procs {
		if err := procsFlags(&cfg, set, ns, systems, scenarios, *participants); err != nil {
			return cfg, err
		}
	}
	if *topology != "full" && *topology != "star" {
		return cfg, fmt.Errorf("-topology %q: want full or star", *topology)
	}
	var err error
	if cfg.ns, err = parseInts(*ns); err != nil {
		return cfg, fmt.Errorf("-n: %w", err)
	}
	for _, n := range cfg.ns {
		if n < 2 || n > 100 {
			return cfg, fmt.Errorf("-n: %d out of range [2, 100]", n)
		}
	}
	if cfg.runs < 1 || cfg.runs > 20 {
		return cfg, fmt.Errorf("-runs %d out of range [1, 20]", cfg.runs)
	}
	if !cfg.procs {
		if cfg.systems, err = pickSystems(*systems); err != nil {
			return cfg, err
		}
	}
	sz, err := parseInts(*sizes)
	if err != nil {
		return cfg, fmt.Errorf("-sizes: %w", err)
	}
	for _, s := range sz {
		if s != small && s != large {
			return cfg, fmt.Errorf("-sizes: %d (only %d and %d are defined)", s, small, large)
		}
	}
	cfg.params.Sizes = sz
	cfg.params.StoreN = *storeN
	if *storeK != 0 {
		if *storeK < 10 || *storeK > 10_000_000 {
			return cfg, fmt.Errorf("-store-keys %d out of range [10, 10,000,000]", *storeK)
		}
		cfg.params.StoreKeys = *storeK
	}
	if *storeW != 0 {
		if *storeW < time.Second || *storeW > time.Hour {
			return cfg, fmt.Errorf("-store-wait %v out of range [1s, 1h]", *storeW)
		}
		cfg.params.StoreWait = *storeW
	}
	if *trials >= 0 {
		cfg.params.SearchTrials = min(*trials, 20)
	}
	known := map[string]bool{}
	for _, s := range suites() {
		for _, id := range s.Scenarios() {
			known[id] = true
		}
	}
	if cfg.procs {
		return cfg, nil // procsFlags checked the systems and scenarios
	}
	cfg.scenarios = map[string]bool{}
	for _, id := range strings.Split(*scenarios, ",") {
		id = strings.TrimSpace(id)
		if !known[id] {
			return cfg, fmt.Errorf("-scenarios: unknown %q", id)
		}
		cfg.scenarios[id] = true
	}
	if cfg.cpuProfile != "" && (len(cfg.systems) != 1 || len(cfg.ns) != 1 || cfg.runs != 1) {
		return cfg, errors.New("-cpuprofile needs exactly one system, one N and -runs 1")
	}
	return cfg, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// benchmark runs everything cfg asks for and summarises it.
func benchmark(ctx context.Context, cfg config, log io.Writer) *Results {
	start := time.Now()
	logf := func(format string, args ...any) {
		if !cfg.quiet {
			fmt.Fprintf(log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		}
	}
	topo := "every pair of participants connected (as mDNS discovery gives on a LAN)"
	if cfg.star {
		topo = "star: every subscriber connected to the publisher only"
	}
	res := &Results{Machine: describeMachine(cfg.command), Quick: cfg.quick, Ns: cfg.ns, Runs: cfg.runs,
		Topology: topo, Params: cfg.params}
	var systems []System
	for _, s := range cfg.systems {
		info := SystemInfo{Name: s.Name(), Describe: s.Describe(), Unavailable: s.Unavailable()}
		if kv, ok := s.(KVSystem); ok {
			info.DescribeKV = kv.DescribeKV()
		}
		res.Systems = append(res.Systems, info)
		if info.Unavailable != "" {
			logf("skipping %s: %s", s.Name(), info.Unavailable)
			continue
		}
		systems = append(systems, s)
	}
	env := &Env{P: cfg.params, Scenarios: cfg.scenarios, Open: OpenOptions{Star: cfg.star}, CPUProfile: cfg.cpuProfile, Logf: logf}
	for r := 1; r <= cfg.runs && ctx.Err() == nil; r++ {
		for _, n := range cfg.ns {
			// Rotate the order each run so that no system always goes first.
			order := slices.Clone(systems)
			if len(order) > 0 {
				k := (r - 1) % len(order)
				order = append(order[k:], order[:k]...)
			}
			for _, sys := range order {
				if ctx.Err() != nil {
					break
				}
				logf("run %d/%d, N=%d, %s", r, cfg.runs, n, sys.Name())
				s := Sample{Run: r, System: sys.Name(), N: n}
				for _, suite := range suites() {
					if !suite.Supports(sys) {
						continue
					}
					if err := suite.Run(ctx, sys, n, env, &s); err != nil {
						s.Error = strings.TrimSpace(s.Error + " " + suite.Name() + ": " + err.Error())
						logf("  %s: %v", sys.Name(), err)
					}
				}
				res.Samples = append(res.Samples, s)
			}
		}
	}
	res.ElapsedSecs = time.Since(start).Seconds()
	analyze(res)
	return res
}

// analyze derives everything from res.Samples: burst classification,
// summaries per system and N, ratios to each baseline, targets.
func analyze(res *Results) {
	var names []string
	for _, s := range res.Systems {
		if s.Unavailable == "" {
			names = append(names, s.Name)
		}
	}
	for i := range res.Samples {
		for j := range res.Samples[i].Burst {
			res.Samples[i].Burst[j].classify(res.Params)
		}
	}
	res.Summaries, res.Ratios, res.Targets = nil, nil, nil
	res.StoreSummaries, res.StoreRatios = nil, nil
	res.CallSummaries, res.CallRatios = nil, nil
	for _, n := range res.Ns {
		for _, name := range names {
			res.Summaries = append(res.Summaries, summarize(res.Samples, name, n, res.Params.Sizes))
		}
	}
	if slices.Contains(names, "reflect") {
		for _, n := range res.Ns {
			for _, b := range names {
				if b != "reflect" {
					res.Ratios = append(res.Ratios, ratios(res.Samples, "reflect", b, n))
				}
			}
		}
		res.Targets = checkTargets(res)
	}
	for _, name := range names {
		if s, ok := summarizeStore(res.Samples, name, res.Params.StoreN); ok {
			res.StoreSummaries = append(res.StoreSummaries, s)
		}
	}
	if slices.ContainsFunc(res.StoreSummaries, func(s StoreSummary) bool { return s.System == "reflect" }) {
		for _, s := range res.StoreSummaries {
			if s.System != "reflect" {
				res.StoreRatios = append(res.StoreRatios, storeRatios(res.Samples, "reflect", s.System, res.Params.StoreN))
			}
		}
		res.Targets = append(res.Targets, checkStoreTargets(res)...)
	}
	for _, n := range res.Ns {
		for _, name := range names {
			if s, ok := summarizeCalls(res.Samples, name, n); ok {
				res.CallSummaries = append(res.CallSummaries, s)
			}
		}
	}
	if slices.ContainsFunc(res.CallSummaries, func(s CallSummary) bool { return s.System == "reflect" }) {
		for _, n := range res.Ns {
			for _, s := range res.CallSummaries {
				if s.System != "reflect" && s.N == n {
					res.CallRatios = append(res.CallRatios, callRatios(res.Samples, "reflect", s.System, n))
				}
			}
		}
		res.Targets = append(res.Targets, checkCallTargets(res)...)
	}
}

// loadResults reads a results.json written earlier and analyzes it again
// (-from: regenerate the reports without measuring).
func loadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if kb, ok := strings.CutSuffix(res.Machine.MemoryGB, " kB"); ok { // written by an older version
		if v, err := strconv.ParseFloat(kb, 64); err == nil {
			res.Machine.MemoryGB = fmt.Sprintf("%.1f GiB", v/(1<<20))
		}
	}
	analyze(&res)
	return &res, nil
}
