// Package pubsub carries application messages between the nodes of a mesh
// on GossipSub topics.
//
// # API
//
// Subscribe delivers raw messages (Message: topic, sender, bytes);
// SubscribeMap and Broadcast are the original library's JSON-object calls;
// SubscribeJSON and PublishJSON do the same for any Go type. Topic names are
// prefixed on the wire with Config.TopicPrefix, which the node derives from
// the secret, so different meshes never share a topic. Names starting with
// ReservedPrefix belong to Reflect itself (the store).
//
// # Delivery
//
//   - Best effort: a message lost to a failed link is not re-sent. The store
//     (package crdtstore) repairs its own losses; pub/sub does not.
//   - In order per publisher and topic. Batches carry consecutive numbers;
//     one that overtakes its predecessor (a relayed copy) waits up to 100 ms
//     for it, then goes on without it (counted in SkippedBatches).
//   - No silent loss. Publish blocks while the topic's queue is full (4,096
//     messages or 8 MiB: backpressure) and fails with ErrTooLarge for
//     oversized messages; the publisher waits for slow peers' queues (a
//     window of Config.Window batches per peer) instead of overflowing them.
//     Whatever is dropped anyway is counted in Stats: a slow handler's queue
//     overflowing (Dropped, per subscription and per topic; the queue grows
//     up to 65,536 messages or 32 MiB while the handler is behind),
//     GossipSub's outbound queue to a stuck peer (OutboundDropped), and its
//     inbound queues (InboundThrottled, InboundUndeliverable).
//   - A node's own broadcasts do not reach its own subscribers unless
//     Config.Echo is set.
//   - Each subscription has its own goroutine and bounded queue: a slow
//     handler delays nobody else.
//
// # Batching
//
// Each topic has one publisher goroutine. It sends a message at once when it
// is idle; messages queued while it is busy sending travel together in the
// next GossipSub message (up to Config.MaxBatchBytes), which the receiver
// unpacks. There is no timer, so batching adds no latency when idle and
// raises throughput under load by an order of magnitude. The batch header
// (author, sequence number) is the GossipSub message id, so no payload hash
// is computed.
//
// # Forwarding
//
// GossipSub relays every message to its mesh peers. With flood publishing,
// in a mesh where every node is connected to every other (what mDNS
// discovery builds), each subscriber already has the message from its
// author, and every relayed copy is a duplicate: measured, 4.6 bytes sent
// per byte delivered with 5 nodes, 11.7 with 20. So every node announces
// whom it is connected to (on a reserved topic, when that changes), and a
// node relays a message only if one of its peers has not announced a
// connection to the message's author. A fully connected mesh relays
// nothing; a partial one (bootstrap peers, a broken link) relays as
// GossipSub does. Messages are delivered to this node's subscriptions by
// the validator, in the order they pass it, whether relayed or not.
//
// # Validation
//
// Every received batch must decode, each message must fit MaxMessageSize,
// and with signing on the author must be the signer. A topic may add its
// own check (WithValidator): a batch holding a message that fails it is
// rejected whole, neither delivered nor relayed, and counted in
// Stats.Invalid. The store uses it so that a delta that does not decode
// goes no further than the first node that receives it.
//
// # Signing
//
// Messages are not signed by default (GossipSub StrictNoSign). Only holders
// of the mesh secret can connect at all (the private network key), and Noise
// authenticates every hop, so a signature would only prove which member
// wrote a message to the other members, who are trusted anyway. It is
// expensive: measured with BenchmarkLatency and BenchmarkThroughput on 2
// shared cores (loopback, 256-byte messages, medians of 3 runs), signing
// raised the one-way p50 latency from 36 µs to 294 µs (p99 162 → 578 µs) and
// cut throughput from 305 k to 155 k messages/s. Config.Sign turns it on:
// then every message is signed and verified, and the batch author must be the
// signer.
//
// # Wire format
//
// One GossipSub message is a batch: version byte, flags byte, author
// (length-prefixed peer id), sequence number (uvarint), message count, then
// each message length-prefixed. Decoding never trusts a declared size beyond
// the bytes present; see batch.go.
package pubsub
