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
//     with other secrets do not even see each other's adverts (adverts are
//     unauthenticated hints: see Strangers); bootstrap peers for networks
//     without multicast, given with their peer id (/p2p/<id>) or by address
//     alone, the id then learnt from the node that answers. The node
//     answers with zeroconf's responder (libp2p's advert, so older releases
//     find it) and asks for unicast answers, listing the members of its
//     mesh (connected or not) as known answers: a formed mesh's questions
//     bring no answers, where libp2p's mDNS cost N³ packets a round. Once
//     it has a peer, it asks once a minute per 20 members (at most every
//     five minutes): peer exchange finds the rest (mdns.go).
//   - Peer exchange: members tell each other the members they have joined,
//     with addresses, on a stream of the private network; one discovered or
//     bootstrap peer is enough to find the whole mesh (exchange.go,
//     Stats.PeersExchanged). A node tells its bootstrap peers and those
//     given to Connect that it keeps them, and they never trim it: a
//     node every other bootstraps to holds them all (keep.go).
//   - A reconnect loop. libp2p never redials a lost peer and mDNS reports a
//     connected peer no more, so the node remembers every peer's addresses and
//     redials with jittered exponential backoff (Config.ReconnectMin to
//     ReconnectMax), one dial loop per peer, each dial bounded by
//     Config.DialTimeout, clearing libp2p's own dial backoff first. Dead
//     links are noticed by the kernel's TCP keepalive, which wakes no process,
//     in about KeepAlive plus WriteTimeout, or plus 3 s if that is longer
//     (tcpalive.go; yamux pings on other transports); a link that data was
//     sent down after it went silent, by the membership's sweep soon after
//     (silentlinks.go, Stats.SilentClosed).
//   - Resource limits for a LAN: private and loopback addresses are exempt
//     from libp2p's per-IP connection-rate limit; each remote address may
//     hold 64 connections (an IPv6 /64, 256; all of loopback, 1024), private
//     ranges included (see Strangers).
//   - Pub/sub (package pubsub): GossipSub, and a direct stream to each
//     connected peer, used while no peer needs a relay (a full mesh).
//   - A mesh shape for its size: every node connects to every other up to
//     DefaultFullMesh nodes; in a larger mesh each dials half of
//     DefaultMaxPeers and takes the nodes that dial it, up to
//     DefaultMaxPeers and a quarter more, and pub/sub relays (degree.go;
//     Config.MaxPeers sets the bound instead).
//
// # Membership
//
// The node owns the membership: Peers lists the members of the mesh that
// have joined, OnPeer reports joins and leaves, WaitPeers blocks until
// enough members have joined. A peer joins once it is connected and its
// pub/sub is ready, so a broadcast made after WaitPeers returns reaches the
// subscriptions those peers had. On a partial mesh (a large one, bootstrap
// peers, a firewall), members beyond the direct peers join and
// leave as the others' peer announcements tell (meshview.go); Neighbours
// and OnNeighbour report the direct peers, which pub/sub and the store
// follow.
// A direct peer that was lost is redialled for Config.ForgetAfter
// (bootstrap peers and peers given to Connect forever).
//
// # Threat model
//
// Who can do what to a mesh, and what bounds it (each bound is counted in
// a Stats and logged at Warn, at most once per 10 s):
//
//   - A stranger (without the secret) cannot connect, read or inject, and
//     sees only what mDNS adverts show: peer ids, addresses and the mesh's
//     service name. It can load a node within the bounds of "Strangers"
//     below, and guess the secret offline at one Argon2id per guess (use a
//     long random secret: pnet.GenerateSecret).
//   - A member (a node with the secret) reads every topic and writes under
//     its own name. It cannot pass a message, a request or a reply as
//     another member's: From is the author on every path (package pubsub,
//     "Authorship"; pubsub Stats.Forged). It cannot erase, hide or forge
//     another replica's store values by the deltas it publishes (package
//     crdtstore, "Trust"; crdtstore Stats.DeltasForged). It cannot exhaust
//     a node's memory: deltas held for missing dots are bounded per peer and
//     in all (16 and 64 MiB), sync frames are read as their bytes arrive
//     with at most two large ones at a time, one served sync stream per
//     peer and a sync rate and reply budget per peer (package crdtstore,
//     "Limits"), direct-stream frames are read as they arrive and cut after
//     10 s, and a peer's topic subscriptions are capped at 25,000 (pubsub
//     Stats.SubscriptionsRefused). It cannot stall the others: a member that
//     stops reading slows only what is sent to it, and is disconnected after
//     pubsub Config.StallTimeout (pubsub Stats.StalledPeers).
//   - What remains: a member can flood at the rate its node sends (the
//     receivers' queues drop and count past their bounds; there is no rate
//     limit per member on pub/sub). Store sync replies are trusted as their
//     sender is: a member answering syncs can remove, hide or relay values
//     in others' names at the nodes that sync with it, or fill the replica
//     table (crdtstore "Trust"). Relays of a partial mesh can drop, delay or
//     replay what they forward. A member can take many peer ids and so
//     several shares of every per-peer bound. Reflect is for a group of
//     instances one operator runs; it is not Byzantine fault tolerant.
//
// # Strangers
//
// A host without the secret cannot connect, read or inject: every
// connection starts with the network key. What it can do is load the node,
// within these bounds (Stats counts each; warnings are logged at most once
// per 10 s per kind):
//
//   - Connections that never finish the handshakes. Inbound connections
//     must pass the private network and Noise handshakes within
//     Config.HandshakeTimeout (3 s; libp2p's default is 15 s). Until then
//     they take one of libp2p's transient connection slots (about 80 on a
//     machine with 24 GiB), and one source address (an IPv4 address, an
//     IPv6 /64) may hold at most 8 of them, from a private range or not:
//     on a LAN the stranger is the threat. Past 8, its connections are
//     closed on accept (Stats.HandshakesRefused). A member holds one such
//     slot for the few milliseconds its handshake takes, so several
//     instances on one host (or behind one NAT) can join at once; more than
//     8 dialling at the same instant retry after their backoff. A stranger
//     with ten or more addresses can still fill the transient slots; the
//     connections of members already joined are not affected.
//   - Forged mDNS adverts. Anyone on the LAN can answer a node's mDNS
//     questions, with any peer id and address (unsolicited adverts are not
//     read). A peer found by mDNS (or by peer exchange, from a member) is a
//     candidate until it connects: at most 256 wait in a table apart from
//     the members, are dialled by one goroutine with 4 dial slots of their
//     own (members have 16), and are forgotten after 3 failed dials or a
//     minute; a new advert replaces only a candidate that has failed, and
//     is dropped otherwise (Stats.CandidatesDropped). An advert naming a
//     member adds at most 8 hint addresses to it and can neither replace
//     its addresses nor remove it. So a flood of adverts costs a few
//     goroutines and never delays the redial of a member. During a flood a
//     newcomer found only by mDNS may wait for its turn, but it dials this
//     node too (and bootstrap peers and Connect are not affected).
//
// # Logs
//
// Logs go to Config.Logger. By default warnings and errors go to
// slog.Default() and debug and info records are dropped; pub/sub and the
// stores opened on the node log to the same logger. The warnings that name
// why nodes do not find each other (each at most once per 10 s per remote
// address or peer):
//
//   - "node: an inbound connection did not finish the handshakes in time
//     (different secret?)", with the remote address: a connection that did
//     not pass the private network and Noise handshakes within
//     Config.HandshakeTimeout. A node with another secret looks like this
//     (each side decrypts the other's bytes to garbage and waits); so does
//     a port scanner. A failed handshake followed at once by a successful
//     one from the same address (a peer that dialled by address and learnt
//     this node's id) is not logged.
//   - "node: cannot connect to a bootstrap peer: it ...", for a bootstrap
//     peer or one given to Connect, naming the peer and its addresses:
//     "answered with another peer id" (with actual_peer), "refused the
//     connection", "failed the handshakes (different secret?)", "timed out
//     in the handshakes (different secret, or not a Reflect node?)", or
//     "timed out (unreachable, or firewalled)". Connect's error names the
//     same cause.
//   - "node: mDNS is on, but mDNS does not advertise WebSocket
//     (/ws) addresses, ...", once at New, for a node that listens on
//     WebSocket only: other nodes will not find it on the LAN.
//   - "node: the secret is short and could be guessed", "node: mDNS
//     discovery unavailable" (no multicast), and the bounds of Strangers.
//
// Every failed handshake of the first two counts in Stats.HandshakesFailed
// (reflect_node_handshakes_failed_total), logged or not: an inbound one when
// its entry expires, an outbound one when the dial fails; "answered with
// another peer id" does not count.
//
// A bootstrap address without /p2p/<id> is dialled under a placeholder id:
// the node that answers passes the private network handshake (it has the
// secret), then proves its peer id in Noise, and that id is kept and
// dialled. If a node with another id answers there later (the peer
// restarted without Config.IdentityFile), it is followed
// ("node: another node answers at a bootstrap address", at Info). The node
// dialled sees one aborted handshake each time, and does not log it. A
// node's own address in its bootstrap list is noticed and dropped, so every
// node of a mesh can be given one list.
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
// goroutine. Logs go to Config.Logger (see Logs).
package node
