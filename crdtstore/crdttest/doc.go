// Package crdttest is an in-memory network for crdtstore: stores opened on
// its transports replicate through it with no sockets and no node, in the
// same process. Use it to test code built on crdtstore, as net/http/httptest
// serves code built on net/http:
//
//	net := crdttest.NewNetwork()
//	a, err := crdtstore.OpenTransport(net.Transport("a"), crdtstore.Options{})
//	...
//	b, err := crdtstore.OpenTransport(net.Transport("b"), crdtstore.Options{})
//	...
//	a.SetString("k", "v") // b has it a moment later
//
// The transports behave like the node-backed one where the store can tell:
// every received delta goes through the store's decoder once, before
// delivery, and one that does not decode is refused; deltas from one peer
// arrive in the order they were published; sync streams are full-duplex
// pipes with deadlines; joins and leaves are reported to both sides.
// Network.Disconnect and Network.Connect cut and restore links, to test
// partitions. Unlike a real network, nothing is lost or reordered by
// accident, so tests of loss and repair must cause it (Disconnect, or a
// Transport's Publish of hand-made bytes).
package crdttest
