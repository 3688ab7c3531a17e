package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// demo runs the commands against a node and its store, and reports what
// happens on out.
type demo struct {
	node  *node.Node
	store *crdtstore.Store
	out   *output

	// Used by the command loop only:
	subs       map[subKey]*pubsub.Subscription
	responders map[subKey]*responder

	watchMu   sync.Mutex
	watcher   *crdtstore.Watcher // nil until the first watch
	prefixes  map[string]bool
	watchDone chan struct{} // closed when the forwarding goroutine ends

	peerMu    sync.Mutex
	peerState map[peer.ID]string // last state printed per peer

	progress bool // wait-synced prints its progress (human mode on a terminal)
}

func newDemo(n *node.Node, s *crdtstore.Store, out *output) *demo {
	return &demo{
		node:       n,
		store:      s,
		out:        out,
		subs:       make(map[subKey]*pubsub.Subscription),
		responders: make(map[subKey]*responder),
		prefixes:   make(map[string]bool),
		watchDone:  make(chan struct{}),
		peerState:  make(map[peer.ID]string),
	}
}

// watchPeers starts the peer events (Node.Close stops them); OnPeer first
// reports the peers already joined. peerSeen prints each transition once.
func (d *demo) watchPeers() {
	d.node.OnPeer(func(e node.PeerEvent) { d.peerSeen(e.ID, e.State.String()) })
}

func (d *demo) peerSeen(id peer.ID, state string) {
	d.peerMu.Lock()
	defer d.peerMu.Unlock()
	prev, known := d.peerState[id]
	if prev == state || (!known && state == node.PeerLeft.String()) {
		return
	}
	d.peerState[id] = state
	d.out.event(peerChange(id.String(), state))
}

// exec runs one command and returns its reply.
func (d *demo) exec(ctx context.Context, c command) event {
	var err error
	switch c.name {
	case "sub":
		err = d.sub(c.topic, c.group)
	case "unsub":
		err = d.unsub(c.topic, c.group)
	case "pub":
		err = d.node.PubSub().Publish(ctx, c.topic, c.data, pubsub.WithHeader(c.header))
	case "send":
		return d.send(ctx, c)
	case "req":
		return d.request(ctx, c)
	case "reply":
		err = d.reply(c)
	case "unreply":
		err = d.unreply(c.topic, c.group)
	case "set":
		err = d.store.Set(c.key, c.value)
	case "get":
		v, found := d.store.Get(c.key)
		return value(c.key, v, found)
	case "del":
		err = d.store.Delete(c.key)
	case "keys":
		return keys(d.store.Keys(c.prefix))
	case "dump":
		return dump(d.store.List(c.prefix))
	case "watch":
		d.watch(c.prefix)
	case "peers":
		return peers(d.peerIDs())
	case "id":
		return identity(d.node.ID().String(), d.addrs())
	case "wait-peers":
		err = d.waitPeers(ctx, c.n, c.timeout)
	case "wait-synced":
		err = d.waitSynced(ctx, c.timeout)
	case "wait-subscribers":
		tctx, cancel := context.WithTimeout(ctx, c.timeout)
		if err = d.node.PubSub().WaitSubscribers(tctx, c.topic, c.n); err != nil && tctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%d of %d subscribers of %q after %v", len(d.node.PubSub().ListPeers(c.topic)), c.n, c.topic, c.timeout)
		}
		cancel()
	case "wait-responders":
		err = d.waitResponders(ctx, c.topic, c.n, c.timeout)
	case "stats":
		return d.stats()
	case "help":
		return okReply{Event: "ok", Cmd: "help", Help: helpText()}
	case "quit":
	default:
		err = usageError(c.name) // parseLine lets no other name through
	}
	if err != nil {
		return failure(c.name, err)
	}
	return ok(c.name)
}

// subKey names a subscription or a responder: its topic (or pattern) and
// queue group ("" for none).
type subKey struct{ topic, group string }

func (k subKey) String() string {
	if k.group == "" {
		return strconv.Quote(k.topic)
	}
	return fmt.Sprintf("%q in group %q", k.topic, k.group)
}

// sub prints the messages on topic, a wildcard pattern, or the queue
// group's share of them.
func (d *demo) sub(topic, group string) error {
	k := subKey{topic, group}
	if d.subs[k] != nil {
		return nil // already printing them
	}
	var opts []pubsub.Option
	if group != "" {
		opts = append(opts, pubsub.WithQueueGroup(group))
	}
	s, err := d.node.PubSub().Subscribe(topic, func(m pubsub.Message) {
		d.out.event(delivered(m, topic, group))
	}, opts...)
	if err != nil {
		return err
	}
	d.subs[k] = s
	return nil
}

func (d *demo) unsub(topic, group string) error {
	k := subKey{topic, group}
	s := d.subs[k]
	if s == nil {
		return fmt.Errorf("not subscribed to %v", k)
	}
	s.Unsubscribe()
	delete(d.subs, k)
	return nil
}

// watch adds prefix to the watched ones. One store watcher of every key
// serves them all, so a change matching several prefixes prints once.
func (d *demo) watch(prefix string) {
	d.watchMu.Lock()
	defer d.watchMu.Unlock()
	d.prefixes[prefix] = true
	if d.watcher == nil {
		d.watcher = d.store.Watch("")
		go d.forward(d.watcher)
	}
}

// forward prints the watched changes until the store closes the watcher.
func (d *demo) forward(w *crdtstore.Watcher) {
	defer close(d.watchDone)
	var missed uint64
	for c := range w.Updates() {
		missed += c.Missed
		if !d.watched(c.Key) {
			continue
		}
		d.out.event(change(c.Key, c.Value, c.Deleted, c.Origin.String(), missed))
		missed = 0
	}
}

func (d *demo) watched(key string) bool {
	d.watchMu.Lock()
	defer d.watchMu.Unlock()
	for p := range d.prefixes {
		if len(key) >= len(p) && key[:len(p)] == p {
			return true
		}
	}
	return false
}

func (d *demo) peerIDs() []string {
	ps := d.node.Peers()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	sort.Strings(out)
	return out
}

func (d *demo) addrs() []string {
	as := d.node.Addrs()
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// waitPeers waits until n peers have joined: connected, with their pub/sub
// ready, so a pub right after reaches their subscriptions.
func (d *demo) waitPeers(ctx context.Context, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := d.node.WaitPeers(ctx, n); err != nil {
		return fmt.Errorf("%d of %d peers joined after %v", len(d.node.Peers()), n, timeout)
	}
	return nil
}
