package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/reflectmesh/reflect/pubsub"
)

// defaultWait is the timeout of the wait- commands without SECONDS;
// defaultCallWait that of req and send without -t; maxWaitSeconds bounds
// SECONDS (a year).
const (
	defaultWait     = 10 * time.Second
	defaultCallWait = 5 * time.Second
	maxWaitSeconds  = 365 * 24 * 3600
)

// A command is one parsed input line, its arguments checked.
type command struct {
	name    string
	topic   string        // sub, unsub, pub, req, reply, unreply, send, wait-subscribers, wait-responders
	data    []byte        // pub, req, reply, send: the JSON message; reply -e: the error text
	key     string        // set, get, del
	value   []byte        // set
	prefix  string        // keys, watch, dump
	n       int           // wait-peers, wait-subscribers, wait-responders
	timeout time.Duration // wait-peers, wait-synced, wait-subscribers, wait-responders; req, send (-t); reply (-d)
	group   string        // sub, unsub, reply, unreply: -q GROUP
	header  pubsub.Header // pub, req, send: -h KEY=VALUE
	peer    peer.ID       // send
	fail    bool          // reply -e: answer with an error
}

// usage gives each command's synopsis, in help order.
var usage = []struct{ name, args, what string }{
	{"sub", "[-q GROUP] TOPIC", "print the messages on TOPIC (a pattern: a.* a.>); -q: one of GROUP's members gets each"},
	{"unsub", "[-q GROUP] TOPIC", "stop printing them"},
	{"pub", "[-h K=V]... TOPIC MESSAGE", `publish a JSON object, or text sent as {"text": "..."}; -h: a header`},
	{"send", "[-h K=V]... PEER TOPIC MESSAGE", "send MESSAGE to PEER's subscribers of TOPIC only"},
	{"req", "[-t SECONDS] [-h K=V]... TOPIC MESSAGE", "send a request, print the first reply (default timeout 5 s)"},
	{"reply", "[-q GROUP] [-e] [-d SECONDS] TOPIC MESSAGE", "answer requests on TOPIC with MESSAGE (-e: fail with the text; -d: after a delay)"},
	{"unreply", "[-q GROUP] TOPIC", "stop answering"},
	{"set", "KEY VALUE", "store VALUE (the rest of the line) under KEY"},
	{"get", "KEY", "print KEY's value"},
	{"del", "KEY", "delete KEY"},
	{"keys", "[PREFIX]", "list the keys (starting with PREFIX)"},
	{"dump", "[PREFIX]", "list the keys (starting with PREFIX) with their values"},
	{"watch", "[PREFIX]", "print every change of the keys (starting with PREFIX)"},
	{"peers", "", "list the connected peers"},
	{"id", "", "print this node's peer id and addresses"},
	{"wait-peers", "N [SECONDS]", "wait until N peers are connected (default 10 s)"},
	{"wait-synced", "[SECONDS]", "wait until the store has synced with every peer (default 10 s)"},
	{"wait-subscribers", "TOPIC N [SECONDS]", "wait until N other nodes subscribe to TOPIC (default 10 s)"},
	{"wait-responders", "TOPIC N [SECONDS]", "wait until N other nodes answer requests on TOPIC (default 10 s)"},
	{"stats", "", "goroutines, open files, peers, pub/sub and store counters"},
	{"help", "", "this list"},
	{"quit", "", "leave (like the end of input)"},
}

// helpText lists the commands.
func helpText() string {
	var b strings.Builder
	for _, u := range usage {
		if syn := strings.TrimSpace(u.name + " " + u.args); len(syn) > 26 {
			fmt.Fprintf(&b, "%s\n%-26s %s\n", syn, "", u.what)
		} else {
			fmt.Fprintf(&b, "%-26s %s\n", syn, u.what)
		}
	}
	return b.String()
}

// errSkip reports a line with no command: blank, or a '#' comment.
var errSkip = errors.New("no command")

// usageError is the error for a command used with the wrong arguments.
func usageError(name string) error {
	for _, u := range usage {
		if u.name == name {
			return fmt.Errorf("usage: %s", strings.TrimSpace(u.name+" "+u.args))
		}
	}
	return fmt.Errorf("unknown command %q (try help)", name)
}

// parseLine parses one input line. It returns the command's name (for the
// error reply) with any error, and errSkip for blank and comment lines.
func parseLine(line string) (command, error) {
	line = strings.TrimRight(line, "\r\n")
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return command{}, errSkip
	}
	name, rest := cut(trimmed)
	c := command{name: name}
	args := strings.Fields(rest)
	nargs := func(lo, hi int) error {
		if len(args) < lo || len(args) > hi {
			return usageError(name)
		}
		return nil
	}
	switch name {
	case "sub", "unsub", "unreply":
		if err := parseWords(&c, rest); err != nil {
			return c, err
		}
	case "get", "del":
		if err := nargs(1, 1); err != nil {
			return c, err
		}
		c.topic, c.key = args[0], args[0]
	case "keys", "watch", "dump":
		if err := nargs(0, 1); err != nil {
			return c, err
		}
		if len(args) == 1 {
			c.prefix = args[0]
		}
	case "peers", "id", "stats", "help", "quit":
		if err := nargs(0, 0); err != nil {
			return c, err
		}
	case "pub", "req", "reply", "send":
		if err := parseMessage(&c, after(line, name)); err != nil {
			return c, err
		}
	case "set":
		key, val := cut(after(line, name))
		if key == "" || val == "" {
			return c, usageError(name)
		}
		c.key, c.value = key, []byte(val)
	case "wait-peers":
		if err := nargs(1, 2); err != nil {
			return c, err
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 {
			return c, fmt.Errorf("the number of peers must be a whole number, not %q", args[0])
		}
		c.n = n
		if c.timeout, err = parseTimeout(args[1:]); err != nil {
			return c, err
		}
	case "wait-subscribers", "wait-responders":
		if err := nargs(2, 3); err != nil {
			return c, err
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 0 {
			what := strings.TrimPrefix(name, "wait-")
			return c, fmt.Errorf("the number of %s must be a whole number, not %q", what, args[1])
		}
		c.topic, c.n = args[0], n
		if c.timeout, err = parseTimeout(args[2:]); err != nil {
			return c, err
		}
	case "wait-synced":
		if err := nargs(0, 1); err != nil {
			return c, err
		}
		var err error
		if c.timeout, err = parseTimeout(args); err != nil {
			return c, err
		}
	default:
		return c, usageError(name)
	}
	return c, nil
}

// after returns what follows the command name in line.
func after(line, name string) string {
	return line[strings.Index(line, name)+len(name):]
}

// cut splits s at its first run of spaces or tabs into a word and the rest
// (verbatim, apart from the separating spaces).
func cut(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// pubData is the JSON to publish for pub's MESSAGE: a JSON object, compacted,
// if it starts with '{', else {"text": MESSAGE}.
func pubData(msg string) ([]byte, error) {
	if trimmed := strings.TrimSpace(msg); strings.HasPrefix(trimmed, "{") {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(trimmed), &obj); err != nil {
			return nil, fmt.Errorf("bad JSON object: %v", err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(trimmed)); err != nil {
			return nil, fmt.Errorf("bad JSON object: %v", err)
		}
		return buf.Bytes(), nil
	}
	return append(append([]byte(`{"text":`), jsonString(msg)...), '}'), nil
}

// parseTimeout reads the optional SECONDS argument.
func parseTimeout(args []string) (time.Duration, error) {
	if len(args) == 0 {
		return defaultWait, nil
	}
	s, err := strconv.ParseFloat(args[0], 64)
	if err != nil || !(s > 0 && s <= maxWaitSeconds) { // NaN fails too
		return 0, fmt.Errorf("the timeout must be a positive number of seconds, not %q", args[0])
	}
	return time.Duration(s * float64(time.Second)), nil
}
