package node

import "errors"

// Errors returned by this package. Match them with errors.Is; returned
// errors wrap them with details.
var (
	// ErrConfig reports an invalid Config (see Config.Validate).
	ErrConfig = errors.New("node: invalid config")
	// ErrTransport is returned by New when an option names a transport that
	// cannot run under a private network key (QUIC, WebTransport, WebRTC).
	ErrTransport = errors.New("node: transport cannot use a private network key")
	// ErrIdentity reports an identity file that cannot be read, parsed or
	// written.
	ErrIdentity = errors.New("node: identity file")
	// ErrClosed is returned once the node is closed (a second Close too).
	ErrClosed = errors.New("node: closed")
	// ErrNoListen is returned by New when the host ends up with no listen
	// address at all.
	ErrNoListen = errors.New("node: no listen address")
)
