// Package node is what an application embeds to join a Reflect mesh: every
// instance started with the same secret finds the others and exchanges
// messages with them, encrypted, with no broker.
//
//	n, err := node.New(node.Config{Key: "correct horse battery staple"})
//	if err != nil { ... }
//	defer n.Close()
//	n.Subscribe("chat", func(m map[string]any) { fmt.Println(m["text"]) })
//	n.Broadcast(ctx, "chat", map[string]any{"text": "hello"})
//
// # What a node runs
//
//   - A libp2p host on the private network derived from the secret (package
//     pnet): every connection is encrypted with the network key and then
//     secured with Noise; hosts with another key cannot connect. TCP only by
//     default, without port reuse (two peers dialling each other at once
//     otherwise sometimes share one TCP connection on which Noise fails).
//     Relay, hole punching and NAT port mapping are off. Pass
//     Config.Libp2pOptions to add or swap transports (WebSocket works; QUIC,
//     WebTransport and WebRTC cannot use a network key and are refused with
//     ErrTransport).
//   - mDNS discovery under a service name derived from the secret, so meshes
//     with other secrets do not even see each other's adverts; bootstrap
//     peers for networks without multicast.
//   - A reconnect loop. libp2p never redials a lost peer and mDNS reports a
//     peer only once, so the node remembers every peer's addresses and
//     redials with jittered exponential backoff (Config.ReconnectMin to
//     ReconnectMax), one dial loop per peer, each dial bounded by
//     Config.DialTimeout, clearing libp2p's own dial backoff first. Dead
//     links are noticed by yamux keepalives in about KeepAlive+WriteTimeout.
//   - Resource limits for a LAN: private and loopback addresses are exempt
//     from libp2p's per-IP connection-rate limit, and each IP may hold 64
//     connections (many instances per host).
//   - Pub/sub (package pubsub): GossipSub, and a direct stream to each
//     connected peer, used while no peer needs a relay (a full mesh).
//
// # Membership
//
// The node owns the membership: Peers lists the peers that have joined,
// OnPeer reports joins and leaves, WaitPeers blocks until enough peers have
// joined. A peer joins once it is connected and its pub/sub is ready, so a
// broadcast made after WaitPeers returns reaches the subscriptions those
// peers had; pub/sub and the store follow the same membership. A peer that
// left is redialled for Config.ForgetAfter (bootstrap peers and peers given
// to Connect forever).
//
// # Identity
//
// A node has a new identity (peer id) on each start unless
// Config.IdentityFile or Config.Identity is set.
//
// # Lifecycle
//
// New starts everything; Close stops discovery and redials, closes pub/sub
// (which sends what is still queued and waits, a few seconds at most, until
// the peers have it) and the host, in that order, and waits for every
// goroutine. Logs go to Config.Logger (silent by default).
package node
