// Package netlab builds small virtual networks out of Linux network
// namespaces, runs real processes on them, and injects faults: the harness of
// Reflect's multi-host (Jepsen-style) tests and of the demo's end-to-end tests.
//
// A [Lab] is one bridge in a namespace of its own plus N hosts, each a network
// namespace with lo up and a veth0 cabled to the bridge:
//
//	host i:  namespace <lab>-h<i>, veth0 = 10.X.Y.i/24 (X, Y random per lab),
//	         224.0.0.0/4 routed to veth0, IPv6 DAD off, no default route,
//	         a fixed MAC, and a permanent neighbour (ARP) entry for every
//	         other host (the kernel's dynamic neighbour table is shared by
//	         all namespaces: a full mesh of 33 hosts would overflow it)
//	bridge:  namespace <lab>-br, br0 (multicast snooping and STP off),
//	         port p<i> for host i
//
// Multicast (mDNS on 224.0.0.251 and ff02::fb) floods across the bridge, and
// nothing is connected to the outside: lab traffic cannot leave the machine.
// Building a lab takes a few milliseconds per host.
//
// Faults live in one nftables table (bridge family, forward hook) in the
// bridge namespace, rewritten atomically on every change: [Lab.Partition] and
// [Lab.Cut] drop silently, [Lab.Loss] drops a random share, [Lab.Heal] removes
// them all; [Lab.LinkDown] takes a host's bridge port down (the host sees no
// carrier). Faults act on IP traffic, unicast and multicast alike; address
// resolution (ARP, IPv6 neighbour discovery) is exempt so that a one-way cut
// is really one-way, as with Jepsen's iptables partitions.
//
// Processes run inside a host through `ip netns exec NAMESPACE` (see
// [Host.Command]); [Host.Start] also tracks them ([Proc]: stdin, stdout lines,
// stderr kept for failure reports, Kill, Stop). They carry netns.HostEnv, so
// a test binary re-executed on a host (the os/exec helper-process pattern)
// runs its tests in place there, and they are killed if the process that
// started them dies.
//
// [New] ties a lab to a test: it skips the test when the lab cannot be built
// ([Available]; it fails instead when REFLECT_REQUIRE_NETNS=1) and tears the
// lab down in t.Cleanup, also when the test fails or panics, logging the
// stderr of the processes first if the test failed. [Open] and [Lab.Close]
// serve programs. Teardown kills every process in the lab's namespaces, then
// deletes them. Each lab holds a lock file under /run/reflect-netlab while it
// lives; [CleanupStale] (run once per process by New and Open) removes the
// namespaces of labs whose owner died without tearing down.
//
// The test runner must never address a lab host itself: run a process on a
// host instead. Needs Linux, root, iproute2 (ip), nftables (nft) and sysctl.
package netlab
