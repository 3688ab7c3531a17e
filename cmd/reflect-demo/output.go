package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/reflectmesh/reflect/crdtstore"
)

// An event is one thing the demo reports: a reply to a command or an
// asynchronous event. Its JSON form is the struct itself (the "event"
// field first); human gives the readable form, one or more lines without
// the final newline.
type event interface {
	human() string
}

// Replies and events. Constructors set the "event" field.
type (
	readyEvent struct {
		Event string   `json:"event"`
		ID    string   `json:"id"`
		Addrs []string `json:"addrs"`
	}
	peerEvent struct {
		Event string `json:"event"`
		ID    string `json:"id"`
		State string `json:"state"`
	}
	messageEvent struct {
		Event string          `json:"event"`
		Topic string          `json:"topic"`
		From  string          `json:"from"`
		Data  json.RawMessage `json:"data"`
	}
	changeEvent struct {
		Event   string          `json:"event"`
		Key     string          `json:"key"`
		Value   json.RawMessage `json:"value"`
		Deleted bool            `json:"deleted"`
		Origin  string          `json:"origin"`
		Missed  uint64          `json:"missed,omitempty"`
	}
	okReply struct {
		Event string `json:"event"`
		Cmd   string `json:"cmd"`
		Help  string `json:"help,omitempty"`
	}
	valueReply struct {
		Event string          `json:"event"`
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
		Found bool            `json:"found"`
	}
	keysReply struct {
		Event string   `json:"event"`
		Keys  []string `json:"keys"`
	}
	peersReply struct {
		Event string   `json:"event"`
		Peers []string `json:"peers"`
	}
	dumpEntry struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	dumpReply struct {
		Event   string      `json:"event"`
		Entries []dumpEntry `json:"entries"`
	}
	idReply struct {
		Event string   `json:"event"`
		ID    string   `json:"id"`
		Addrs []string `json:"addrs"`
	}
	errorReply struct {
		Event string `json:"event"`
		Cmd   string `json:"cmd"`
		Error string `json:"error"`
	}
)

func ready(id string, addrs []string) readyEvent {
	return readyEvent{"ready", id, nonNil(addrs)}
}

func peerChange(id, state string) peerEvent { return peerEvent{"peer", id, state} }

func message(topic, from string, data []byte) messageEvent {
	return messageEvent{"message", topic, from, jsonValue(data)}
}

func change(key string, value []byte, deleted bool, origin string, missed uint64) changeEvent {
	v := json.RawMessage("null")
	if !deleted {
		v = jsonValue(value)
	}
	return changeEvent{"change", key, v, deleted, origin, missed}
}

func ok(cmd string) okReply { return okReply{Event: "ok", Cmd: cmd} }

func value(key string, v []byte, found bool) valueReply {
	raw := json.RawMessage("null")
	if found {
		raw = jsonValue(v)
	}
	return valueReply{"value", key, raw, found}
}

func keys(ks []string) keysReply { return keysReply{"keys", nonNil(ks)} }

func peers(ps []string) peersReply { return peersReply{"peers", nonNil(ps)} }

func dump(kvs []crdtstore.KeyValue) dumpReply {
	es := make([]dumpEntry, len(kvs))
	for i, kv := range kvs {
		es[i] = dumpEntry{kv.Key, jsonValue(kv.Value)}
	}
	return dumpReply{"dump", es}
}

func identity(id string, addrs []string) idReply { return idReply{"id", id, nonNil(addrs)} }

func failure(cmd string, err error) errorReply { return errorReply{"error", cmd, err.Error()} }

// nonNil makes an empty list encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// jsonValue returns b itself (compacted) if it is valid JSON, and b as a
// JSON string otherwise.
func jsonValue(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Valid(b) && json.Compact(&buf, b) == nil {
		return buf.Bytes()
	}
	return jsonString(string(b))
}

// jsonString encodes s as a JSON string, leaving <, > and & as they are.
func jsonString(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // never fails for a string
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Human forms.

func (e readyEvent) human() string {
	var b strings.Builder
	fmt.Fprintf(&b, "peer id %s, listening on:", e.ID)
	for _, a := range e.Addrs {
		fmt.Fprintf(&b, "\n  %s", a)
	}
	b.WriteString("\ntype help for the commands")
	return b.String()
}

func (e peerEvent) human() string { return fmt.Sprintf("* peer %s %s", e.ID, e.State) }

func (e messageEvent) human() string {
	return fmt.Sprintf("[%s] %s: %s", e.Topic, short(e.From), messageText(e.Data))
}

// messageText shows {"text": "..."} as its text, and other data as JSON.
func messageText(data json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) == nil && len(m) == 1 {
		var s string
		if t, ok := m["text"]; ok && json.Unmarshal(t, &s) == nil {
			return s
		}
	}
	return string(data)
}

// short abbreviates a peer id to its last eight characters.
func short(id string) string {
	if len(id) <= 12 {
		return id
	}
	return "…" + id[len(id)-8:]
}

func (e changeEvent) human() string {
	s := fmt.Sprintf("~ %s = %s (%s)", e.Key, plain(e.Value), e.Origin)
	if e.Deleted {
		s = fmt.Sprintf("~ %s deleted (%s)", e.Key, e.Origin)
	}
	if e.Missed > 0 {
		s += fmt.Sprintf(" [%d earlier changes missed]", e.Missed)
	}
	return s
}

// plain turns a JSON value back into the text the user stored: a string
// without its quotes, anything else as JSON.
func plain(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

func (e okReply) human() string {
	if e.Help != "" {
		return strings.TrimRight(e.Help, "\n")
	}
	return "ok"
}

func (e valueReply) human() string {
	if !e.Found {
		return fmt.Sprintf("(%s not found)", e.Key)
	}
	return plain(e.Value)
}

func (e keysReply) human() string { return list(e.Keys, "(no keys)") }

func (e peersReply) human() string { return list(e.Peers, "(no peers)") }

func (e dumpReply) human() string {
	lines := make([]string, len(e.Entries))
	for i, kv := range e.Entries {
		lines[i] = kv.Key + " = " + plain(kv.Value)
	}
	return list(lines, "(no keys)")
}

func list(items []string, empty string) string {
	if len(items) == 0 {
		return empty
	}
	return strings.Join(items, "\n")
}

func (e idReply) human() string {
	return strings.Join(append([]string{e.ID}, e.Addrs...), "\n  ")
}

func (e errorReply) human() string { return fmt.Sprintf("error: %s: %s", e.Cmd, e.Error) }

// output writes events to standard output, one call to Write per event, under
// a mutex: replies and asynchronous events never split each other's lines.
type output struct {
	mu     sync.Mutex
	w      io.Writer
	json   bool
	prompt string // shown before each command when non-empty (human mode on a terminal)
}

func newOutput(w io.Writer, jsonMode, interactive bool) *output {
	o := &output{w: w, json: jsonMode}
	if interactive && !jsonMode {
		o.prompt = "> "
	}
	return o
}

// format renders e as the bytes to write, newline included.
func (o *output) format(e event) []byte {
	if !o.json {
		return []byte(e.human() + "\n")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		// Only a bug can get here: report it as an event rather than
		// breaking the one-object-per-line promise.
		buf.Reset()
		_ = enc.Encode(errorReply{"error", "internal", fmt.Sprintf("encoding %T: %v", e, err)})
	}
	return buf.Bytes()
}

// reply writes the reply to a command.
func (o *output) reply(e event) { o.write(o.format(e)) }

// event writes an asynchronous event; on a terminal the prompt follows it
// again, since the event took its place.
func (o *output) event(e event) {
	b := o.format(e)
	if o.prompt != "" {
		b = append(append([]byte("\r"), b...), o.prompt...)
	}
	o.write(b)
}

// showPrompt writes the prompt, if any.
func (o *output) showPrompt() {
	if o.prompt != "" {
		o.write([]byte(o.prompt))
	}
}

func (o *output) write(b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.w.Write(b) // a closed stdout ends the process with SIGPIPE
}
