// Command bench measures Reflect side by side with what a user would pick
// instead — raw go-libp2p-pubsub with its defaults, NATS core pub/sub and
// Redis pub/sub; for the store, NATS JetStream KV and Redis SET/GET — in one
// run on one machine, and regenerates BENCHMARKS.md
// (tables, machine, commands, plots in bench/plots) and results.json.
//
//	cd bench
//	../../shared/tools/sandbox go run .   # full run: N = 5 and 20, 3 runs (~30–40 min)
//	go run . -quick                       # CI smoke: N = 5, 1 run, < 1 min, writes no files
//	go run . -n 5 -runs 1 -systems reflect,nats,redis \
//	        -scenarios set-visible,set-rate,join,reconnect,key-memory -out '' -md '' -plots ''
//	go run . -n 5 -runs 3 -systems reflect,nats,redis -scenarios set-rate,join \
//	        -store-keys 1000000 -store-wait 3m -out '' -md '' -plots ''   # issue 12's 1M-key join
//	go run . -n 5 -runs 1 -systems reflect,nats -sizes 256 \
//	        -scenarios throughput,headers,request,request-rate,queue -out '' -md '' -plots ''
//	go run . -systems reflect -n 5 -runs 1 -scenarios throughput -sizes 256 \
//	        -search-trials 0 -cpuprofile cpu.pprof -out '' -md '' -plots ''
//	go run . -from results.json           # re-render the reports, measure nothing''
//	go run . -procs                       # one process per participant: reflect, nats, nats-tls,
//	                                      # redis, N = 5, 3 runs (~9 min); BENCHMARKS.md's headline
//	go run . -procs -quick                # its CI smoke: N = 5, 1 run, < 1 min, writes no files
//	go run . -procs -from results-procs.json   # re-render BENCHMARKS.md, measure nothing
//
// It is a module of its own (go.mod with a replace of the root module), so
// the NATS server, the Redis client and gonum/plot never enter the
// library's module graph. redis-server comes from Debian's package; the
// benchmark starts one per cluster on 127.0.0.1 and a free port and stops
// it (by its PID) when the cluster closes. NATS runs embedded.
//
// # One process per participant (-procs)
//
// The default mode runs every participant of a system in this process: a
// library micro-view, which hides per-process memory, CPU and wake-ups.
// -procs runs them as users do, each its own OS process: a small binary
// per system (package participant and its cmd/reflect-node,
// cmd/reflect-store, cmd/nats-client, cmd/redis-client, cmd/nats-server;
// the pub/sub node links no store, so its memory is a pub/sub node's),
// built with go build
// at start (or taken from -participants DIR), started one per participant
// and driven over stdin and stdout, one JSON line per command and reply
// (participant/proto.go). NATS's server is one more process, with TLS for
// nats-tls (a CA generated at start, procs_tls.go; clients verify);
// Redis's is redis-server. Latency comes from CLOCK_MONOTONIC, one clock
// for every process. Each process's VmRSS and RssAnon (private memory) are
// read from /proc idle and sampled at peak, and the CPU time of every
// process, servers included, gives CPU per delivered message
// (procstat.go). Files: procs_main.go (flags, the run), procs_build.go,
// procs_proc.go (one child), procs_cluster.go (opening a system),
// procs_run.go (scenarios: latency, unpaced throughput at each size,
// memory, CPU, context switches), procs_join.go (the store scenario join at
// N = -store-n, reflect and nats: -store-keys written on one participant,
// replicated, then a new process joins, timed from its exec, with holder
// and joiner memory), procs_crypto.go (Reflect's crypto ceiling for 64
// KiB), procs_summary.go (medians, Reflect's ratios within runs, tables;
// results-procs.json). BENCHMARKS.md shows
// these tables first, as the headline, and the in-process ones after as
// the library micro-view, whichever mode regenerates it (when both
// results files exist).
//
// # Network safety
//
// Everything binds 127.0.0.1 and Reflect's mDNS is off. On top of that the
// command runs only in a network namespace whose only interface is
// loopback: it runs in place when it already is in one (the sandbox tool),
// re-executes itself in a fresh one when it is root, and refuses otherwise
// (isolate.go). The test uses internal/netns like the library's tests.
// The -procs children inherit the namespace, and refuse to run in one
// with another interface (participant.Main).
//
// # Layout
//
//   - system.go: the System interface (one per compared system) and its
//     PubSubCluster; system_reflect.go, system_libp2p.go, system_nats.go,
//     system_redis.go implement it. Next to it KVSystem and KVCluster, for
//     the systems with a store: system_reflect_kv.go (crdtstore),
//     system_nats_kv.go (JetStream KV, memory storage),
//     system_redis_kv.go (SET/GET + keyspace notifications); countconn.go
//     counts the baselines' bytes and round trips on the wire.
//   - suite.go: a Suite opens one cluster and runs its scenarios into a
//     Sample; pubsubSuite is scenarios 1–3: scenario_latency.go,
//     scenario_throughput.go, scenario_burst.go, with the publisher loop
//     (publish.go), the delivery recorder (recorder.go) and memory sampling
//     (memory.go). storeSuite (suite_store.go) is scenarios 4–8 at N =
//     -store-n (5): set-rate (which also fills the store), set-visible,
//     join, reconnect on one cluster, key-memory on a cluster of one.
//     -store-keys sets the store's size (default 100,000), -store-wait
//     the bound of each of its waits (default 1 min); the join also
//     records this process's memory growth (peak, and after with the new
//     participant still holding the keys), and its target is < 1 s below
//     1,000,000 keys, issue 12's ≤ 5 s from there on.
//     callsSuite (suite_calls.go) is issue 15's request/reply and queue
//     groups at N = 5 on systems that implement CallSystem
//     (system_calls.go; system_reflect_calls.go, system_nats_calls.go):
//     request and request-rate (scenario_request.go) on one cluster,
//     queue (scenario_queue.go) on another. The headers scenario (256 B
//     throughput with a 2-key header on every message, for clusters with
//     HeaderPublisher) is part of pubsubSuite.
//   - summary.go (medians, ratios within runs, issue 6's and the store
//     issue's targets; summary_calls.go: issue 15's, and their tables),
//     report.go (tables, JSON), markdown.go
//     (BENCHMARKS.md, with how each figure is measured), plot.go (PNG),
//     machine.go (CPU, cores, Go, commit).
//
// Scenario 9 of benchmarks.md (Get and local Set latency) is a go test
// -bench next to the store's code (crdtstore/bench_test.go), not part of
// this command.
package main
