package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/reflectmesh/reflect/crdtstore"
	"github.com/reflectmesh/reflect/pubsub"
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
		// HTTP is the status page's URL (-http), absent without it.
		HTTP string `json:"http,omitempty"`
	}
	peerEvent struct {
		Event string `json:"event"`
		ID    string `json:"id"`
		State string `json:"state"`
	}
	messageEvent struct {
		Event   string          `json:"event"`
		Topic   string          `json:"topic"` // the concrete topic
		From    string          `json:"from"`
		Data    json.RawMessage `json:"data"`
		Sub     string          `json:"sub,omitempty"`   // the pattern subscribed to, if not Topic
		Group   string          `json:"group,omitempty"` // the queue group of the subscription
		Headers pubsub.Header   `json:"headers,omitempty"`
	}
	// requestEvent: a responder of this node got a request.
	requestEvent struct {
		Event   string          `json:"event"`
		Topic   string          `json:"topic"`
		From    string          `json:"from"`
		Data    json.RawMessage `json:"data"`
		Group   string          `json:"group,omitempty"`
		Headers pubsub.Header   `json:"headers,omitempty"`
	}
	// responseEvent: the reply to req.
	responseEvent struct {
		Event   string          `json:"event"`
		Topic   string          `json:"topic"`
		From    string          `json:"from"`
		Data    json.RawMessage `json:"data"`
		Headers pubsub.Header   `json:"headers,omitempty"`
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
		Event  string `json:"event"`
		Cmd    string `json:"cmd"`
		Error  string `json:"error"`
		Reason string `json:"reason,omitempty"` // req, send: reasonNoResponders, ...
		From   string `json:"from,omitempty"`   // req: the responder that failed
	}
)

func ready(id string, addrs []string, httpURL string) readyEvent {
	return readyEvent{"ready", id, nonNil(addrs), httpURL}
}

func peerChange(id, state string) peerEvent { return peerEvent{"peer", id, state} }

func message(topic, from string, data []byte) messageEvent {
	return messageEvent{Event: "message", Topic: topic, From: from, Data: jsonValue(data)}
}

// delivered is the event of m, delivered to the subscription to sub (a
// topic or a pattern) in group.
func delivered(m pubsub.Message, sub, group string) messageEvent {
	e := message(m.Topic, m.From.String(), m.Data)
	if sub != m.Topic {
		e.Sub = sub
	}
	e.Group, e.Headers = group, nonEmpty(m.Header)
	return e
}

func requested(m pubsub.Message, group string) requestEvent {
	return requestEvent{"request", m.Topic, m.From.String(), jsonValue(m.Data), group, nonEmpty(m.Header)}
}

func response(m pubsub.Message) responseEvent {
	return responseEvent{"response", m.Topic, m.From.String(), jsonValue(m.Data), nonEmpty(m.Header)}
}

// nonEmpty returns nil for headers without a key.
func nonEmpty(h pubsub.Header) pubsub.Header {
	if len(h) == 0 {
		return nil
	}
	return h
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

func failure(cmd string, err error) errorReply {
	return errorReply{Event: "error", Cmd: cmd, Error: err.Error()}
}

// callFailure is the error reply of req or send, with its reason and, for
// a responder's failure, the responder.
func callFailure(cmd string, err error, reason, from string) errorReply {
	return errorReply{"error", cmd, err.Error(), reason, from}
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// jsonValue returns b itself (compacted) if it is valid JSON, and b as a
// JSON string otherwise. Invalid UTF-8 becomes U+FFFD either way:
// json.Valid accepts it inside strings, and the output must stay UTF-8.
func jsonValue(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Valid(b) {
		if !utf8.Valid(b) {
			b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
		}
		if json.Compact(&buf, b) == nil {
			return buf.Bytes()
		}
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
	fmt.Fprintf(&b, "peer id %s, listening on:", printable(e.ID))
	for _, a := range e.Addrs {
		fmt.Fprintf(&b, "\n  %s", printable(a))
	}
	if e.HTTP != "" {
		fmt.Fprintf(&b, "\nstatus page: %s", printable(e.HTTP))
	}
	b.WriteString("\ntype help for the commands")
	return b.String()
}

func (e peerEvent) human() string {
	return fmt.Sprintf("* peer %s %s", printable(e.ID), printable(e.State))
}

// Every text in a human form goes through printable: remote text (topics,
// headers, message text, error texts, keys and values of the store, peer
// ids, addresses) cannot move the cursor, clear the screen or start a line
// of its own, and printable leaves ordinary text as it is. In -json mode
// encoding/json escapes the control characters and replaces invalid UTF-8
// in strings (keys included), and jsonValue does it in raw values.

func (e messageEvent) human() string {
	label := e.Topic
	if e.Sub != "" {
		label += " via " + e.Sub
	}
	if e.Group != "" {
		label += " group " + e.Group
	}
	return fmt.Sprintf("[%s] %s%s: %s", printable(label), printable(short(e.From)), headerText(e.Headers), printable(messageText(e.Data)))
}

func (e requestEvent) human() string {
	label := e.Topic
	if e.Group != "" {
		label += " group " + e.Group
	}
	return fmt.Sprintf("? [%s] request from %s%s: %s", printable(label), printable(short(e.From)), headerText(e.Headers), printable(messageText(e.Data)))
}

func (e responseEvent) human() string {
	return fmt.Sprintf("[%s] reply from %s%s: %s", printable(e.Topic), printable(short(e.From)), headerText(e.Headers), printable(messageText(e.Data)))
}

// headerText shows headers compactly, " {k=v, k=w, l=x}" (keys sorted),
// and nothing for none.
func headerText(h pubsub.Header) string {
	if len(h) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" {")
	for i, k := range slices.Sorted(maps.Keys(h)) {
		for j, v := range h[k] {
			if i+j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(printable(k) + "=" + printable(v))
		}
	}
	b.WriteString("}")
	return b.String()
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
	key, origin := printable(e.Key), printable(e.Origin)
	s := fmt.Sprintf("~ %s = %s (%s)", key, printable(plain(e.Value)), origin)
	if e.Deleted {
		s = fmt.Sprintf("~ %s deleted (%s)", key, origin)
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
		return fmt.Sprintf("(%s not found)", printable(e.Key))
	}
	return printable(plain(e.Value))
}

func (e keysReply) human() string { return list(printables(e.Keys), "(no keys)") }

func (e peersReply) human() string { return list(printables(e.Peers), "(no peers)") }

func (e dumpReply) human() string {
	lines := make([]string, len(e.Entries))
	for i, kv := range e.Entries {
		lines[i] = printable(kv.Key) + " = " + printable(plain(kv.Value))
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
	return strings.Join(printables(append([]string{e.ID}, e.Addrs...)), "\n  ")
}

func (e errorReply) human() string {
	if e.Reason != "" {
		return printable(fmt.Sprintf("error: %s [%s]: %s", e.Cmd, e.Reason, e.Error))
	}
	return printable(fmt.Sprintf("error: %s: %s", e.Cmd, e.Error))
}

// output writes events to standard output, one call to Write per event, under
// a mutex: replies and asynchronous events never split each other's lines.
// In human mode error replies go to standard error instead, so that stdout
// holds the results only. It counts the error replies: the exit status of a
// script depends on them.
type output struct {
	mu       sync.Mutex
	w        io.Writer
	errW     io.Writer // human mode's error replies
	json     bool
	prompt   string // shown before each command when non-empty (human mode on a terminal)
	failures int    // error replies so far
}

func newOutput(w, errW io.Writer, jsonMode, interactive bool) *output {
	o := &output{w: w, errW: errW, json: jsonMode}
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
		_ = enc.Encode(errorReply{Event: "error", Cmd: "internal", Error: fmt.Sprintf("encoding %T: %v", e, err)})
	}
	return buf.Bytes()
}

// reply writes the reply to a command, counting the error replies.
func (o *output) reply(e event) {
	b := o.format(e)
	_, failed := e.(errorReply)
	o.mu.Lock()
	defer o.mu.Unlock()
	w := o.w
	if failed {
		o.failures++
		if !o.json {
			w = o.errW
		}
	}
	_, _ = w.Write(b) // a closed stdout ends the process with SIGPIPE
}

// setWriters changes where the output goes (the terminal leaving raw mode).
func (o *output) setWriters(w, errW io.Writer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.w, o.errW = w, errW
}

// failed returns the number of error replies so far.
func (o *output) failed() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failures
}

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
