package testutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrNotEvent is returned for a line of the demo's standard output that is
// not a JSON object with an "event" field: in -json mode every line must be
// one.
var ErrNotEvent = errors.New("testutil: output line is not a JSON event")

// An Event is one line of reflect-demo's -json output: a reply to a command
// or an asynchronous event, as decoded by encoding/json (numbers are
// float64, objects map[string]any).
type Event map[string]any

// Kind returns the "event" field: "ready", "ok", "message", ...
func (e Event) Kind() string { return e.Str("event") }

// Str returns field key if it is a string, and "" otherwise.
func (e Event) Str(key string) string {
	s, _ := e[key].(string) // not a string: "", as documented
	return s
}

// Strs returns field key, a list of strings; ok is false if it is not one.
func (e Event) Strs(key string) (list []string, ok bool) {
	items, ok := e[key].([]any)
	if !ok {
		return nil, false
	}
	list = make([]string, len(items))
	for i, x := range items {
		if list[i], ok = x.(string); !ok {
			return nil, false
		}
	}
	return list, true
}

// Num returns the number at path (field names of nested objects), and 0 if
// there is none.
func (e Event) Num(path ...string) float64 {
	var cur any = map[string]any(e)
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0
		}
		cur = m[k]
	}
	f, _ := cur.(float64) // not a number: 0, as documented
	return f
}

// parseEvent decodes one output line.
func parseEvent(line string) (Event, error) {
	var e Event
	if err := json.Unmarshal([]byte(line), &e); err != nil || e.Kind() == "" {
		return nil, fmt.Errorf("%w: %q", ErrNotEvent, line)
	}
	return e, nil
}

// kindOf returns the kind of the event on line; ok is false if line is not
// an event. The demo writes the "event" field first, so most lines need no
// decoding: waiting for a reply behind thousands of unread messages stays
// cheap.
func kindOf(line string) (kind string, ok bool) {
	const prefix = `{"event":"`
	if rest, found := strings.CutPrefix(line, prefix); found && strings.HasSuffix(line, "}") {
		if i := strings.IndexByte(rest, '"'); i > 0 && !strings.Contains(rest[:i], `\`) {
			return rest[:i], true
		}
	}
	e, err := parseEvent(line)
	if err != nil {
		return "", false
	}
	return e.Kind(), true
}

// replyKinds are the events that answer a command, one per command line.
var replyKinds = map[string]bool{
	"ok": true, "error": true, "value": true, "keys": true, "dump": true,
	"peers": true, "id": true, "stats": true, "response": true,
}

// IsReply matches the replies to commands, as opposed to "ready" and the
// asynchronous events.
func IsReply(e Event) bool { return replyKinds[e.Kind()] }

// IsKind matches the events of the given kinds.
func IsKind(kinds ...string) func(Event) bool {
	return func(e Event) bool {
		for _, k := range kinds {
			if e.Kind() == k {
				return true
			}
		}
		return false
	}
}

// IsMessage matches a message event on topic from the given peer.
func IsMessage(topic, from string) func(Event) bool {
	return func(e Event) bool {
		return e.Kind() == "message" && e.Str("topic") == topic && e.Str("from") == from
	}
}

// IsChange matches a change event of key with the given origin ("local" or
// "remote").
func IsChange(key, origin string) func(Event) bool {
	return func(e Event) bool {
		return e.Kind() == "change" && e.Str("key") == key && e.Str("origin") == origin
	}
}

// IsPeer matches a peer event of id with the given state ("joined" or
// "left"); an empty state matches both.
func IsPeer(id, state string) func(Event) bool {
	return func(e Event) bool {
		return e.Kind() == "peer" && e.Str("id") == id && (state == "" || e.Str("state") == state)
	}
}

// replyKind returns the kind of a successful reply to the command name; an
// error reply may answer any command.
func replyKind(name string) string {
	switch name {
	case "get":
		return "value"
	case "req":
		return "response"
	case "keys", "dump", "peers", "id", "stats":
		return name
	}
	return "ok"
}

// answers returns nil if e can be the reply to the command line, and an
// error wrapping ErrOutOfStep if it cannot: a reply of another kind, or one
// naming another command or key.
func answers(line string, e Event) error {
	f := strings.Fields(line)
	name := f[0]
	switch {
	case e.Kind() == "error" || e.Kind() == "ok":
		if e.Str("cmd") != name {
			return fmt.Errorf("%w: reply %v to %s", ErrOutOfStep, e, name)
		}
		if e.Kind() == "error" {
			return nil
		}
	case e.Kind() == "value" && len(f) > 1 && e.Str("key") != f[1]:
		return fmt.Errorf("%w: reply %v to get %s", ErrOutOfStep, e, f[1])
	}
	if want := replyKind(name); e.Kind() != want {
		return fmt.Errorf("%w: reply %v to %s, want a %q reply", ErrOutOfStep, e, name, want)
	}
	return nil
}
