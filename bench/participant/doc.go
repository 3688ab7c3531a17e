// Package participant is one participant of the bench's -procs mode in a
// process of its own, as users run a node or a client: a small binary per
// system (cmd/reflect-node, cmd/reflect-store: the node with the store,
// cmd/nats-client, cmd/redis-client; and cmd/nats-server, the server
// library NATS's clients connect to), so that its memory is that system's,
// not the bench's. The bench builds them
// (go build), starts one per participant and drives each over its stdin
// and stdout, one JSON line per command and per reply (proto.go).
//
// A participant publishes or subscribes on one topic. Every message
// starts with a 20-byte header — trial, sequence number, send time on
// CLOCK_MONOTONIC (clock.go) — in the same layout as the bench's
// in-process messages (bench/recorder.go); CLOCK_MONOTONIC is one clock
// for every process of the machine, so a subscriber's receive time minus
// the send time is its one-way latency (recorder.go), and publishing is
// paced by it (publish.go).
//
// Like the bench, a participant only runs in a network namespace whose
// only interface is loopback (Main refuses otherwise), binds 127.0.0.1,
// and Reflect's mDNS is off.
package participant
