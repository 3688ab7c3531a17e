// Package pubsub carries application messages between the nodes of a mesh
// on topics: over direct streams between peers that are connected to each
// other, and over GossipSub where a message needs relaying.
//
// # API
//
// Subscribe delivers raw messages (Message: topic, sender, bytes, headers);
// SubscribeMap and Broadcast carry JSON objects as maps (the simplest form);
// SubscribeJSON and PublishJSON do the same for any Go type. Topic names are
// prefixed on the wire with Config.TopicPrefix, which the node derives from
// the secret, so different meshes never share a topic. Names starting with
// ReservedPrefix belong to Reflect itself (the store). New takes the
// Membership it routes by: package node passes its own; without one,
// pub/sub follows the host's connections itself.
//
// What NATS users reach for is here too, the peer-to-peer way (no node is
// special):
//
//   - Headers: WithHeader on Publish, Send and Request; Message.Header on
//     receipt. A message without headers costs nothing more.
//   - Send: to one peer's subscribers of a topic, on the stream to that
//     peer; ErrNoSubscriber or ErrNoRoute instead of a silent loss.
//   - Request/reply: Handle answers requests on a topic, Request returns
//     the first answer, RequestAll gathers them; the answers come straight
//     back to the requester, never through the topic. ErrNoResponders at
//     once when nobody answers; a responder's error comes back as ErrRemote.
//   - Queue groups: WithQueueGroup on Subscribe (or Handle) makes each
//     message (or request) reach one member of the group, the member nodes
//     taking turns, while plain subscribers get everything.
//   - Wildcards: Subscribe("orders.*") or ("orders.>"), NATS syntax.
//
// All of them work on a partial mesh too (a bounded degree, bootstrap
// peers, a firewall): broadcasts are relayed by GossipSub, every node of a
// partial mesh relaying every topic some node subscribes to (relay.go),
// and what goes to one node is passed on hop by hop by any node between
// (see "The path of a message"). ListPeers and WaitSubscribers count the
// subscribers beyond the neighbours too, never the relays. (Wildcard
// subscribers learn of a topic from their neighbours: on a partial mesh,
// from those that subscribe to it, relay it or publish on it.)
//
// # Delivery
//
//   - Best effort: a message lost to a failed link is not re-sent. The store
//     (package crdtstore) repairs its own losses; pub/sub does not.
//   - In order per publisher and topic. Batches carry consecutive numbers;
//     one that overtakes its predecessor (a relayed copy, or one sent the
//     other way) waits up to 100 ms for it, then goes on without it
//     (counted in SkippedBatches).
//   - No silent loss. Publish blocks while the topic's queue is full (4,096
//     messages or 8 MiB: backpressure) and fails with ErrTooLarge for
//     oversized messages; the publisher waits for slow peers' queues (a
//     window of Config.Window batches per peer and topic) instead of
//     overflowing them, except a peer's whose window has stayed full for
//     Config.WindowWait: one that reads nothing slows only what goes to it
//     (flow.go), and is disconnected after Config.StallTimeout. Whatever is dropped anyway is counted in Stats: a
//     slow handler's queue overflowing (Dropped, per subscription and per
//     topic; the queue grows up to 65,536 messages or 32 MiB while the
//     handler is behind), the outbound queue to a stuck peer, GossipSub's
//     or the direct stream's (OutboundDropped; peer announcements apart,
//     AnnouncementsDropped: a few while a mesh forms), GossipSub's inbound
//     queues (InboundThrottled, InboundUndeliverable), a message sent to
//     this node alone that found no subscription or member here any more
//     (InboundNoSubscriber), and a call a relay could not pass on
//     (Unroutable).
//   - A node's own broadcasts do not reach its own subscribers unless
//     Config.Echo is set.
//   - Each subscription has its own goroutine and bounded queue: a slow
//     handler delays nobody else.
//   - Close sends what is still queued and waits (a few seconds at most)
//     until the peers have received it.
//
// # The path of a message
//
// Publish (pubsub.go) queues the message on its topic (topic.go). The
// topic's publisher goroutine packs what is queued into one batch and hands
// it to the router (router.go), which waits until every subscribed peer
// has room in its flow-control window for the topic (flow.go), then sends
// the batch one way: on the direct streams (direct.go) when this node
// reaches every peer without a relay (topology.go), otherwise through
// GossipSub. On the receiving node, the direct stream's reader or
// GossipSub's validator (topic.go) checks the batch, runs the topic's
// decoder if it has one (WithDecoder), and hands it to the topic's
// reorderer (order.go), which delivers each publisher's batches in
// sequence to the queue of every subscription (subscription.go); each
// subscription's goroutine calls its handler. GossipSub tells pub/sub
// through its tracer (gstracer.go) what it queued and wrote (flow control),
// which peers subscribe to what (peertopics.go), and when a peer is ready
// to receive (ready.go).
//
// What is meant for one peer (Send, a queue group's share, a request, a
// reply) skips the router: it is framed for that peer alone (calls.go) and
// queued on the direct stream to it, which delivers in order, so it needs
// no sequence number and no reorderer. Who answers requests and who belongs
// to which queue group, and which wildcard patterns a node follows, every
// node learns from GossipSub's subscription messages: a node subscribes to
// a reserved topic named for what it offers (registry.go), on which nothing
// is ever published. Nodes beyond the neighbours learn the same from the
// peer announcements (routes.go), and a frame for such a node goes to the
// next hop on a shortest announced path, wrapped with its origin and
// target. A wildcard subscription is a subscription to every
// concrete topic that matches it, made as the node learns of them
// (wildcard.go), so its messages take the ways every topic's do.
//
// # Batching
//
// Each topic has one publisher goroutine. It sends a message at once when it
// is idle; messages queued while it is busy sending travel together in the
// next batch (up to Config.MaxBatchBytes), which the receiver unpacks. There
// is no timer, so batching adds no latency when idle and raises throughput
// under load by an order of magnitude. The batch header (author, sequence
// number) is the GossipSub message id, so no payload hash is computed.
//
// # Routing
//
// GossipSub's machinery (its event loop, a validation worker, protobuf on
// both sides of every batch) is pure overhead where nothing needs relaying.
// So when this node's neighbourhood is closed (every peer it is connected to
// is ready and has announced whom it sends to, and those are all its peers
// too: nobody is further away, as in a full mesh or a star around the
// publisher; and it has been for half a second, see below), a topic's
// batch goes straight to every subscribed peer on a direct stream (one per
// peer for all topics, over the same private-network and Noise
// connection), and the receiver delivers it from the stream's
// reader; the batch's author must be the stream's authenticated peer. In a
// partial mesh, with the deprecated Sign set, or while a subscribed peer's direct stream is
// not open yet, batches go through GossipSub. Each batch takes one way only;
// both carry the same sequence numbers, so the reorderer keeps a
// publisher's order across a change of way (see router.go for why that
// holds both ways). Which peers subscribe to what is GossipSub's view either
// way. TopicStats.DirectBatches counts the batches sent directly.
//
// Measured with the bench command (-quick -runs 3, N = 5, 2 shared cores,
// 256 B at 1,000 msg/s; medians; GossipSub only → direct streams): one-way
// p50 latency 171 → 88 µs and p99 468 → 179 µs; lossless 256 B 259 k →
// 304 k msgs/s; 64 KiB 94 → 133 MB/s; memory per node during a 64 KiB
// burst 34 → 12 MB (GossipSub's message cache keeps no direct batch). What
// remains is mostly encryption: XSalsa20 of the private network and
// ChaCha20-Poly1305 of Noise take about two thirds of the CPU time of a
// 64 KiB fan-out (BenchmarkFanout5 in package node).
//
// A node that joins behind a neighbour is announced by that neighbour once
// it is ready there (within a quarter of a second). Until the announcement
// arrives, a publisher next to the neighbour may still take its
// neighbourhood for closed and send to the neighbour alone, so the
// newcomer can miss what is published in that moment (as a GossipSub
// subscriber misses what comes before the heartbeat grafts it). A
// neighbourhood that has just closed goes on sending through GossipSub
// for half a second: the announcement that closed it may be older than a
// newcomer GossipSub already reaches, and sending directly at once would
// cut that newcomer off again after its first messages.
//
// # Forwarding
//
// GossipSub relays every message to its mesh peers. With flood publishing,
// in a mesh where every node is connected to every other, each subscriber
// already has the message from its author, and every relayed copy is a
// duplicate: measured, 4.6 bytes sent per byte delivered with 5 nodes, 11.7
// with 20. So every node announces whom it sends to (on a reserved topic,
// when that changes), and a node relays a message only if one of its peers
// does not get it from the author directly (topology.go). A fully connected
// mesh relays nothing; a partial one (bootstrap peers, a broken link)
// relays as GossipSub does. An announcement is relayed only to the peers
// it does not list (it lists whom its author sent it to), so a settled
// full mesh relays none of them either, and one overtaken by a newer
// announcement of its author is dropped. Copies that arrive anyway are
// counted in Stats.InboundDuplicates, and per topic in
// TopicStats.Duplicates: in a settled full mesh only the rare copy
// GossipSub asks for after its author's gossip while it still validates
// its own. Links returns these announcements, the mesh's graph as this
// node sees it (for a status page); a node refreshes its announcement
// once it has announced nothing for 15 s on average (give or take a half,
// so that nodes started together do not refresh together; in a mesh of
// more than 20 nodes, 15 s per 20 nodes, at most 75 s). Two peers catch
// up when they meet: each hands the other the latest announcement it holds
// of every node it reaches, newer than the other's, signed by its author
// and verified like a relayed copy (catchup.go; Stats.CatchUps,
// Stats.CaughtUp). So a node that joins, or comes back across a healed
// partition, knows the whole mesh's links at once, and a node that
// learnt something its other peers may lack (by catching up, or while the
// mesh formed around it and it relayed nothing) catches up with them too.
// A refresh that says what a relay's peers hold already goes no further
// than the author's neighbours; every node catches up with a random peer
// once per refresh period, so a lost one is corrected within about a
// period (45 s in a mesh of 50, 75 s in one of 100 or more). In a partial
// mesh of 50 where nothing changed, every node received 14 copies per
// second when every refresh crossed the mesh. A change, such as a
// connection closed and another opened, still crosses the whole mesh at
// once. What a node announced is forgotten once it has been out of reach
// for 10 minutes (forget.go), so a mesh whose members come and go holds
// only its present members.
// New links are announced once none has come for 50 ms (at most 250 ms
// after the first), lost ones within 20 ms. An announcement gives the age
// of each of its links younger than 1.5 s, so that Announced can tell since
// when a path to each node has stood: package node counts a member beyond
// the neighbours once GossipSub on that path relays to it (linkage.go).
//
// A stream can die while a connection to the peer remains (a duplicate
// connection, under loss). GossipSub then forgets the peer's topics and
// the peer never repeats them, for both ways; so pub/sub closes the
// peer's connections and both sides start afresh (Stats.ConnectionResets).
//
// # Validation
//
// Every received batch must decode, each message must fit MaxMessageSize,
// and with signing on the author must be the signer. A topic may add its
// own check (WithValidator) or decoder (WithDecoder): a batch holding a
// message that fails it is rejected whole, neither delivered nor relayed,
// and counted in Stats.Invalid; the publisher's later batches do not wait
// for it. The store uses a decoder, so that a delta
// is decoded once and goes no further than the first node that receives it
// if it does not decode.
//
// # Authorship
//
// A message's From is its author on every path; no member can publish,
// send or ask as another, nor make another's messages look like
// duplicates:
//
//   - Direct streams: the author of every batch and call must be the
//     stream's peer, whom the connection's Noise handshake authenticated.
//     Nothing is signed, so the full mesh's way costs nothing.
//   - GossipSub: every message (one batch) is signed by the node that
//     publishes it (StrictSign) and verified by each node that receives it,
//     relays included, before GossipSub marks it seen; the batch's author
//     must be the signer, and a forgery's message id names its signer, so
//     it cannot take the id of the author's own batch. A copy identical,
//     byte for byte, to one still waiting for validation is dropped before
//     its signature is checked (inflight.go): a forgery is never identical
//     to the real batch, so it cannot shadow it.
//   - Calls forwarded across a partial mesh (routes.go) carry their origin's
//     signature over the target and the frame; the target checks it.
//
// A refused forgery counts in Stats.Forged (and Invalid) and is logged at
// Warn, at most once per 10 s. What a signature costs is paid only where
// GossipSub carries batches: on a partial mesh, and while direct streams
// open. Measured with BenchmarkLatency and BenchmarkThroughput "relay"
// (leaf → hub → leaf, 256 B messages, 2 shared cores, medians of 5 runs
// against the unsigned code before it): one-way p50 43 → 231 µs, p99
// 304 → 834 µs, unpaced 501 k → 222 k messages/s (Ed25519 hashes every
// batch with SHA-512 to sign it and again at each node to verify it). The
// full mesh's direct way is unchanged.
//
// Config.Sign is deprecated: it now only keeps broadcasts off the direct
// streams (every batch through GossipSub, signed).
//
// # Wire format
//
// One GossipSub message is a batch: version byte, flags byte (the batch's
// predecessor went the other way; the messages carry headers), author
// (length-prefixed peer id), sequence number (uvarint), message count, then
// each message length-prefixed, after its length-prefixed headers when the
// flag says so. Decoding never trusts a declared size beyond the bytes
// present; see batch.go and header.go. On a direct stream each batch is
// framed with its length and wire topic name (direct.go); calls have frames
// of their own (calls.go).
package pubsub
