package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"unicode"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/node"
	"github.com/reflectmesh/reflect/pubsub"
)

// statsReply is the reply to stats: what a fault-injection suite watches
// for leaks (goroutines, file descriptors) and losses (the counters).
type statsReply struct {
	Event      string `json:"event"`
	Goroutines int    `json:"goroutines"`
	FDs        int    `json:"fds"`
	Peers      int    `json:"peers"`
	Node       any    `json:"node"`   // node.Stats: discovery and strangers
	PubSub     any    `json:"pubsub"` // pubsub.Stats, see counters
	Store      any    `json:"store"`  // crdtstore.Stats
}

func (d *demo) stats() statsReply {
	return makeStats(runtime.NumGoroutine(), openFDs(), len(d.node.Peers()),
		d.node.Stats(), d.node.PubSub().Stats(), d.store.Stats())
}

func makeStats(goroutines, fds, peers int, ns node.Stats, ps pubsub.Stats, ss crdtstore.Stats) statsReply {
	return statsReply{
		Event:      "stats",
		Goroutines: goroutines,
		FDs:        fds,
		Peers:      peers,
		Node:       counters(reflect.ValueOf(ns)),
		PubSub:     counters(reflect.ValueOf(ps)),
		Store:      counters(reflect.ValueOf(ss)),
	}
}

// counters turns a struct of counters, nested structs and maps included,
// into JSON values with snake_case field names (DeltasSent: "deltas_sent"),
// so that a counter added to a library appears here without a change.
func counters(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Struct:
		m := make(map[string]any, v.NumField())
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				m[snakeCase(f.Name)] = counters(v.Field(i))
			}
		}
		return m
	case reflect.Map:
		m := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			m[fmt.Sprint(it.Key().Interface())] = counters(it.Value())
		}
		return m
	default:
		return v.Interface()
	}
}

// snakeCase converts a Go name: "SyncBytesIn" → "sync_bytes_in",
// "RTTMax" → "rtt_max".
func snakeCase(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 &&
			(!unicode.IsUpper(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// openFDs counts this process's open file descriptors, not counting the one
// used to list them; -1 without /proc.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1
}

// human shows the counters as indented JSON.
func (e statsReply) human() string {
	b, _ := json.MarshalIndent(e, "", "  ")
	return string(b)
}
