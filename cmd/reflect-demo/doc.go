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
//	-listen ADDR     listen multiaddr, repeatable (default: every interface, TCP, port 0)
//	-peer ADDR       bootstrap peer multiaddr with /p2p/ID, repeatable
//	-mdns=false      turn mDNS discovery off (on by default)
//	-identity FILE   keep the peer identity in FILE (created if missing)
//	-json            machine-readable output: one JSON object per line
//	-v               debug logs on standard error (default: warnings only)
//	-fast-timers     test timers: dead links noticed in ~2 s, lost peers redialled
//	                 at least every second, store anti-entropy every second
//
// # Commands
//
// Commands are read from standard input, one per line. Blank lines and lines
// starting with '#' are ignored. A prompt is shown only in human mode when
// standard input is a terminal (there is no line editing).
//
//	sub TOPIC                print the messages published on TOPIC
//	unsub TOPIC              stop printing them (error if not subscribed)
//	pub TOPIC MESSAGE        publish a JSON object, or plain text sent as {"text": "..."}
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
//	stats                    goroutines, open files, peers, pub/sub and store counters
//	help                     list the commands
//	quit                     leave (like the end of input)
//
// pub: a MESSAGE starting with '{' must be one valid JSON object (it is sent
// compacted, keys in the given order); anything else is sent as
// {"text": MESSAGE}. Topic names starting with "_reflect/" are reserved.
//
// Values are stored as the bytes typed. get, and change events, show a
// value that is valid JSON as that JSON value, and any other value as a JSON
// string: after "set n 42" get shows 42, after "set name alice" (or
// set name "alice") it shows "alice". In human mode values print verbatim.
// Keys cannot contain spaces.
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
// Every command line gets exactly one reply, in command order:
//
//	{"event":"ok","cmd":NAME}                         sub unsub pub set del watch wait-peers wait-synced wait-subscribers quit
//	{"event":"ok","cmd":"help","help":TEXT}           help
//	{"event":"value","key":K,"value":V,"found":BOOL}  get (V is null when not found)
//	{"event":"keys","keys":[...]}                     keys
//	{"event":"dump","entries":[{"key":K,"value":V}...]} dump (sorted by key)
//	{"event":"peers","peers":[...]}                   peers (sorted)
//	{"event":"id","id":PEER_ID,"addrs":[...]}         id
//	{"event":"stats","goroutines":N,"fds":N,"peers":N,"pubsub":{...},"store":{...}}
//	{"event":"error","cmd":NAME,"error":TEXT}         any failure: unknown command, bad arguments or JSON, timeout
//
// Asynchronous events come between replies, never inside a line:
//
//	{"event":"peer","id":PEER_ID,"state":"joined"|"left"}
//	{"event":"message","topic":T,"from":PEER_ID,"data":OBJECT}
//	{"event":"change","key":K,"value":V,"deleted":BOOL,"origin":"local"|"remote"}
//
// A message's data is the published JSON; bytes that are not JSON (sent by an
// application with Publish) appear as a string. A change carries
// "missed":N when N earlier changes were dropped because the output fell
// behind (read the keys again). In stats, "fds" is the number of open file
// descriptors (-1 where /proc/self/fd does not exist) and "pubsub" and
// "store" hold the counters of pubsub.Stats and crdtstore.Stats in
// snake_case.
//
// # Ending
//
// At the end of input, after quit, and on SIGINT or SIGTERM the demo closes
// the store (publishing its last writes) and the node, which sends the
// messages still queued and waits (at most three seconds) until the peers
// have received them; peers see it leave. Then it exits with status 0. A command still waiting when the signal arrives
// gets an error reply ("interrupted"); a second signal during the shutdown
// kills the demo at once. Exit status 2 means bad usage (flags, no secret,
// invalid addresses), 1 a failure to start or to read standard input.
package main
