// Package statuspage serves a live status page of one Reflect node: the
// mesh as a graph (nodes, links, round-trip times), the topics with their
// message rates, the store (keys, bytes, sync state and lag per peer) and
// recent events, updating every second; beside it /status (the same data
// as JSON) and /metrics (Prometheus, from the registry the node and store
// report to).
//
// The page is what reflect-demo -http serves. It shows every member's peer
// id, address, topic names and key names (not values) to whoever can load
// it, so it belongs on a loopback address: Handler refuses requests whose
// Host is not a loopback name unless Config.Public is set, so that a web
// page the user visits cannot read it through DNS rebinding.
//
// A Page samples the node once per second while it is open (counters,
// rates, sync state) and pings its connected peers every few seconds, a
// bounded number per round; it watches peer events and the store's
// changes for the event list (the last 100). Close stops all of it.
package statuspage
