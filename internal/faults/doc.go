// Package faults holds Reflect's fault-injection suite: real reflect-demo
// processes on virtual hosts (network namespaces cabled to a bridge, built
// by internal/netlab), driven through their JSON command interface while
// nftables partitions, cuts and drops their traffic and processes are
// killed, Jepsen style. Every scenario prints a line of figures and checks
// the guarantees: acknowledged writes survive, nodes reconnect by
// themselves, outsiders never get in, and outsiders flooding a node with
// idle connections or forged mDNS adverts lock no member out
// (strangers_test.go).
//
// The tests need root, iproute2 and nftables; without them they skip, or
// fail when REFLECT_REQUIRE_NETNS=1 (CI). The whole suite runs inside its
// own network namespace (internal/netns), so no packet can reach a real
// interface. Run it with
//
//	go test ./internal/faults/ -v
//
// and -short to skip the long scenarios. The scale scenario (scale_test.go)
// runs only with REFLECT_SCALE=N, N hosts (at least 5; the partition
// step from 12). It first reports what one wake-up of an idle process
// costs on the machine, the floor under its idle figures. And
// REFLECT_SCALE_LOGS=DIR keeps each demo's -v log there (large: GossipSub
// logs every RPC at Debug, about 800 MB for 35 hosts, and the writing
// alone changes the figures):
//
//	REFLECT_SCALE=50 go test -count=1 -run TestScale -v ./internal/faults/
//
// # Run time
//
// The partition, loss and flapping scenarios spend a minute or more each
// mostly waiting while a fault holds, and each builds its own lab (its own
// namespaces, bridge and nftables ruleset), so they call t.Parallel: with
// go test's default -parallel (GOMAXPROCS), two of them run at a time,
// after the other scenarios. On two cores that took the suite from 266 s
// to 184–186 s of the README's test command (three CI runs).
package faults
