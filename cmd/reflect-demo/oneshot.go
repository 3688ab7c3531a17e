package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reflectmesh/reflect/crdtstore"
)

// One-shot use, like redis-cli or nats: "reflect-demo -key K get color".
// The arguments after the flags are one command line. The demo joins the
// mesh, waits as long as the command needs it (at most -wait), runs it,
// prints its reply, and exits once what it sent has been delivered.

// How long a one-shot command waits before it runs.
type readiness int

const (
	needNothing   readiness = iota // id, stats, help, quit, wait-*: at once
	needStream                     // sub, watch, reply: at once, then print events until a signal
	mayWaitPeer                    // peers: a peer if one comes within -wait
	needPeer                       // pub, send: a joined peer, or fail
	needResponder                  // req: a responder on the topic if one comes (else req says no-responders)
	needSync                       // get, keys, dump, set, del: a joined peer and the store synced, or fail
)

func readinessOf(name string) readiness {
	switch name {
	case "sub", "watch", "reply":
		return needStream
	case "peers":
		return mayWaitPeer
	case "pub", "send":
		return needPeer
	case "req":
		return needResponder
	case "get", "keys", "dump", "set", "del":
		return needSync
	}
	return needNothing
}

// oneShot runs c as the only command: it waits (at most wait) for what c
// needs, runs it and writes the reply; for sub, watch and reply it then
// prints their events until ctx ends (a signal).
func (d *demo) oneShot(ctx context.Context, c command, wait time.Duration) {
	need := readinessOf(c.name)
	if err := d.await(ctx, c, need, wait); err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		d.out.reply(failure(c.name, err))
		return
	}
	r := d.exec(ctx, c)
	if _, failed := r.(errorReply); failed && ctx.Err() != nil {
		r = failure(c.name, errors.New("interrupted"))
	}
	d.out.reply(r)
	if _, failed := r.(errorReply); !failed && need == needStream {
		<-ctx.Done()
	}
}

// await waits, at most wait, for what a command of readiness need needs.
// With wait 0 it does not wait at all.
func (d *demo) await(ctx context.Context, c command, need readiness, wait time.Duration) error {
	if wait == 0 || need == needNothing || need == needStream {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	switch need {
	case mayWaitPeer:
		_ = d.node.WaitPeers(ctx, 1) // none in time: the list is empty
	case needResponder:
		_ = d.node.PubSub().WaitResponders(ctx, c.topic, 1) // none: req says so
	case needPeer, needSync:
		if err := d.node.WaitPeers(ctx, 1); err != nil {
			return fmt.Errorf("no peer joined within %v (-wait)", wait)
		}
		if need == needSync {
			if err := d.store.WaitSynced(ctx); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					msg := fmt.Sprintf("the store did not sync with its peers within %v (-wait)", wait)
					var nse *crdtstore.NotSyncedError
					if errors.As(err, &nse) {
						msg += ": " + nse.Reason
					}
					return errors.New(msg)
				}
				return err
			}
		}
	}
	return nil
}
