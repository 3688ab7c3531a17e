// Command reflect-demo joins a Reflect mesh from a shell: by hand in a
// terminal, or driven by a script through its standard input and output.
//
// Start it in two terminals with the same secret; the two find each other on
// the LAN (mDNS), then chat on topics and share the default key-value store:
//
//	reflect-demo -key 'correct horse battery staple'
//
// # Flags
//
//	-key SECRET      shared secret; default $REFLECT_KEY (none at all: exit 2)
//	-listen ADDR     listen multiaddr, repeatable (default: every interface, TCP, port 0);
//	                 one that parses but cannot be used (a transport the demo
//	                 lacks, such as /udp/.../quic-v1 or /ws; a port in use; an
//	                 IP not on this host) is an error naming it: exit 1
//	-peer ADDR       bootstrap peer multiaddr with /p2p/ID, repeatable
//	-mdns=false      turn mDNS discovery off (on by default)
//	-max-peers N     keep at most N direct peers (node.Config.MaxPeers); a
//	                 larger mesh is partial and relays, each node dialling
//	                 N/2 (default: every node up to 24, then 8 each)
//	-identity FILE   keep the peer identity in FILE (created if missing)
//	-data DIR        keep the store on disk in DIR/store-NAME across restarts
//	                 (crdtstore.Options.Dir), and the peer identity in
//	                 DIR/identity unless -identity is given, so that a
//	                 restart resumes the same replica
//	-store NAME      use the store named NAME (default "default"; letters,
//	                 digits, '.', '_', '-'): instances share only a store of
//	                 the same name
//	-json            machine-readable output: one JSON object per line
//	-v               debug logs on standard error (default: warnings only)
//	-wait DURATION   one-shot COMMAND: how long to wait for a peer and the
//	                 store's sync (default 5s; 0: not at all)
//	-http HOST:PORT  serve a live status page at http://HOST:PORT/ (see below),
//	                 with /status (JSON) and /metrics (Prometheus); HOST must
//	                 be a loopback address or localhost (else exit 2) unless
//	                 -http-public is given; port 0 picks a free one
//	-http-public     let -http listen on any address: whoever reaches it sees
//	                 the mesh's peer ids, addresses, topic and key names
//	-version         print the module version (and VCS revision, if the build
//	                 recorded it) and exit
//	-h               the flags, and the commands with an example each
//
// -fast-timers, for tests and fault drills, is left out of -h: dead links
// are noticed in ~4 s, lost peers redialled at least every second, store
// anti-entropy runs every second.
//
// # Status page
//
// With -http the demo serves the live status page of internal/statuspage:
// the mesh as a graph (every node this one knows, the links each node
// announces, round-trip times on this node's links), the peers (state,
// address, connected since, RTT, the store's sync state and lag), the
// topics (counters, messages per second), the store (keys, size, syncs)
// and the last 100 events (peers joining and leaving, keys set or deleted
// with their writer and size, never their values, syncs), read every
// second. /status serves the same data as JSON, /metrics the node's and
// store's Prometheus metrics with Go's and the process's. The page's URL
// is in the ready line ("http") and, in human mode, printed after the
// addresses. Requests whose Host is not a loopback name get 403 (no DNS
// rebinding), unless -http-public.
//
// # One-shot commands
//
// Arguments after the flags form one command, run like redis-cli or nats
// run theirs; standard input is not read:
//
//	reflect-demo -key K get color          # joins, syncs, prints the value
//	reflect-demo -key K set color blue     # joins, syncs, writes, delivers, exits
//	reflect-demo -key K pub chat hi        # joins, waits for a peer, publishes
//	reflect-demo -key K keys user/
//	reflect-demo -key K sub chat           # prints messages until Ctrl-C
//
// Before running it the demo waits, at most -wait, as the command needs:
// get, keys, dump, set and del wait for a peer to join and for the store to
// sync with the peers (wait-synced), and fail if no peer joins in time
// (this node's store alone would be empty, and a write would reach no one);
// pub and send wait for a peer, and fail likewise; req waits for a
// responder on its topic (none: req fails with no-responders); peers waits
// for a peer but lists none without failing; the others run at once. sub,
// watch and reply then print their events until SIGINT or SIGTERM. Standard
// output holds the reply only (and those events): no banner and no peer
// events; with -json the ready line comes first as always. Then the demo
// closes as at the end of input, delivering what it sent, and exits 0, or 1
// if the command failed (the error on standard error in human mode).
//
// # Commands
//
// Commands are read from standard input, one per line (or come after the
// flags: see above). Blank lines and lines starting with '#' are ignored. In
// human mode error replies go to standard error and everything else to
// standard output; with -json every reply is on standard output.
//
// In human mode on a terminal (standard input and output both terminals)
// there is a prompt and line editing: the arrow keys move in the line and
// through the history of the session, Ctrl-A, Ctrl-E, Ctrl-W, Ctrl-U and
// Ctrl-K edit, events arriving while a line is typed print above it, Ctrl-D
// on an empty line ends the input and Ctrl-C interrupts (SIGINT). Errors and
// logs then go to the terminal too. A typed line holds at most 4096
// characters; feed longer ones through a pipe.
//
//	sub [-q GROUP] TOPIC     print the messages published on TOPIC, or on every topic
//	                         matching a pattern (orders.* orders.>); -q: join queue
//	                         group GROUP (each message reaches one of its members)
//	unsub [-q GROUP] TOPIC   stop printing them (error if not subscribed)
//	pub [-h K=V]... TOPIC MESSAGE
//	                         publish a JSON object, or plain text sent as {"text": "..."},
//	                         with a header K: V per -h
//	send [-h K=V]... PEER TOPIC MESSAGE
//	                         the same to the subscribers of TOPIC on PEER only
//	req [-t SECONDS] [-h K=V]... TOPIC MESSAGE
//	                         send a request and print the first reply (timeout 5 s)
//	reply [-q GROUP] [-e] [-d SECONDS] TOPIC MESSAGE
//	                         answer every request on TOPIC (-q: those for GROUP, in
//	                         turn with its other members) with MESSAGE; -e: fail with
//	                         MESSAGE as the error text; -d: after SECONDS
//	unreply [-q GROUP] TOPIC stop answering
//	set KEY VALUE            store VALUE (the rest of the line, verbatim) under KEY
//	get KEY                  print KEY's value
//	del KEY                  delete KEY
//	keys [PREFIX]            list the keys (starting with PREFIX)
//	dump [PREFIX]            list the keys (starting with PREFIX) with their values
//	watch [PREFIX]           print every change of the keys (starting with PREFIX)
//	peers                    list the connected peers
//	id                       print this node's peer id and addresses
//	wait-peers N [SECONDS]   wait until N peers are connected (default timeout 10 s)
//	wait-synced [SECONDS]    wait until the store has synced with every peer (10 s)
//	wait-subscribers TOPIC N [SECONDS]
//	                         wait until N other nodes subscribe to TOPIC (10 s)
//	wait-responders TOPIC N [SECONDS]
//	                         wait until N other nodes answer requests on TOPIC (10 s)
//	stats                    goroutines, open files, peers, pub/sub and store counters
//	help                     list the commands
//	quit                     leave (like the end of input)
//
// pub, send, req, reply: a MESSAGE starting with '{' must be one valid JSON
// object (it is sent compacted, keys in the given order); anything else is
// sent as {"text": MESSAGE}. Topic names starting with "_reflect/" are
// reserved.
//
// Flags come right after the command name, before its arguments, so that
// nothing in a message is taken for one: "pub chat -h k=v" publishes the
// text "-h k=v". sub, unsub and unreply also take them after TOPIC. "--"
// ends the flags (for a topic starting with '-'). A flag's value is one
// word, or a Go string literal: -h "note=two words", -h "k=\t". PEER is a
// peer id as printed by peers or id. A queue group's members get nothing
// but the group's share; a pattern subscription prints the concrete topic.
//
// wait-synced on a terminal (human mode) prints its progress every second
// while it waits ("… syncing with …abc12345: 12.3 MB (4 s); waiting for
// …def67890"). When it gives up, its error says why, per peer not synced:
// "peer X: syncing for 3.2 s, 12.0 MB so far", "peer X: last sync failed
// 2.0 s ago: ERROR", "peer X: not synced yet (no sync started)", or "no
// peer joined". Scripts and -json get the same error text and no progress.
//
// req waits for the first answer. Its error replies say why in a reason
// (shown in brackets in human mode): "no-responders" (nobody answers on
// TOPIC; at once), "timeout", "remote" (the responder failed: the error
// holds its text, "from" the responder), "busy" (the responders' queues
// were full), "invalid" (bad topic, header or size; nothing sent) or
// "failed". send's are "no-subscriber" (PEER does not subscribe to TOPIC),
// "no-route" (PEER not reachable), "timeout", "invalid" or "failed". A
// responder prints each request it answers. Responders cannot attach
// headers to their replies (pubsub has no way yet).
//
// Values are stored as the bytes typed. get, and change events, show a
// value that is valid JSON as that JSON value, and any other value as a JSON
// string: after "set n 42" get shows 42, after "set name alice" (or
// set name "alice") it shows "alice". In human mode values print verbatim,
// apart from the escaped characters below. Keys cannot contain spaces.
//
// wait-peers returns once N peers have joined: connected, with their pub/sub
// ready, so that a pub right after it reaches the peers that had subscribed
// before connecting. To wait for subscriptions made later, use
// wait-subscribers. A timeout (SECONDS may be fractional) is an error reply;
// the demo keeps running.
//
// watch adds PREFIX to the watched prefixes (watching the same prefix twice
// changes nothing); each change is printed once even if several prefixes
// match it.
//
// # JSON mode
//
// With -json every line on standard output is one JSON object with an
// "event" field; logs go to standard error only. The first line is
//
//	{"event":"ready","id":PEER_ID,"addrs":[FULL_MULTIADDRS_WITH_P2P]}
//
// with "http":URL added when -http serves the status page.
//
// Every command line gets exactly one reply, in command order:
//
//	{"event":"ok","cmd":NAME}                         sub unsub pub send reply unreply set del watch wait-* quit
//	{"event":"ok","cmd":"help","help":TEXT}           help
//	{"event":"value","key":K,"value":V,"found":BOOL}  get (V is null when not found)
//	{"event":"keys","keys":[...]}                     keys
//	{"event":"dump","entries":[{"key":K,"value":V}...]} dump (sorted by key)
//	{"event":"peers","peers":[...]}                   peers (sorted)
//	{"event":"id","id":PEER_ID,"addrs":[...]}         id
//	{"event":"stats","goroutines":N,"fds":N,"peers":N,"pubsub":{...},"store":{...}}
//	{"event":"response","topic":T,"from":PEER_ID,"data":OBJECT,"headers":H}  req
//	{"event":"error","cmd":NAME,"error":TEXT}         any failure: unknown command, bad arguments or JSON, timeout
//	{"event":"error","cmd":"req"|"send","error":TEXT,"reason":R,"from":PEER_ID}  ("from": remote and busy only)
//
// Asynchronous events come between replies, never inside a line:
//
//	{"event":"peer","id":PEER_ID,"state":"joined"|"left"}
//	{"event":"message","topic":T,"from":PEER_ID,"data":OBJECT,"sub":PATTERN,"group":G,"headers":H}
//	{"event":"request","topic":T,"from":PEER_ID,"data":OBJECT,"group":G,"headers":H}
//	{"event":"change","key":K,"value":V,"deleted":BOOL,"origin":"local"|"remote"}
//
// A message's data is the published JSON; bytes that are not JSON (sent by an
// application with Publish) appear as a string, and invalid UTF-8 as U+FFFD.
// "sub" (the pattern subscribed to, when not the topic), "group" (a queue
// group's share) and "headers" ({"key": ["value", ...]}) appear only when
// they apply. In human mode everything that can come from another node (the
// topic, the headers and the text of messages, keys and values of the store,
// peer ids, addresses, error texts) is printed with every character that is
// not printable escaped (\x1b, \n, \u202e, \xff for a byte of invalid
// UTF-8; invalid UTF-8 in a value shows as U+FFFD, as in JSON): no peer can
// move the cursor, clear the screen or forge a line. In -json mode every
// line is valid UTF-8, keys included (invalid bytes become U+FFFD). A
// change carries "missed":N when N earlier changes were dropped because the
// output fell behind (read the keys again). In stats, "fds" is the number of open file
// descriptors (-1 where /proc/self/fd does not exist) and "pubsub" and
// "store" hold the counters of pubsub.Stats and crdtstore.Stats in
// snake_case.
//
// # Ending
//
// At the end of input, after quit, and on SIGINT or SIGTERM the demo closes
// the store (publishing its last writes) and the node, which sends the
// messages still queued and waits (at most three seconds) until the peers
// have received them; peers see it leave. A command still waiting when the
// signal arrives gets an error reply ("interrupted"); a second signal during
// the shutdown kills the demo at once.
//
// # Exit status
//
//	0  all went well (or -h, -version)
//	1  the demo could not start (e.g. an unusable -listen address) or read
//	   its input; or a command failed in a non-interactive run: commands
//	   read from a pipe or file, any run with -json, a one-shot COMMAND
//	   (error replies, "interrupted" included; a person at a terminal sees
//	   the errors, and exits 0)
//	2  bad usage: flags, no secret, invalid addresses, an invalid -store
//	   name, an invalid one-shot COMMAND
package main
