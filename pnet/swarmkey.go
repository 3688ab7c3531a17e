package pnet

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// Swarm key file format (go-libp2p core/pnet, also used by IPFS/Kubo):
//
//	/key/swarm/psk/1.0.0/
//	/base16/
//	<64 hex digits>
//
// with /base64/ (standard alphabet, padded) and /bin/ (32 raw bytes) as
// alternative encodings.
const (
	swarmKeyHeader = "/key/swarm/psk/1.0.0/"
	encBase16      = "/base16/"
	encBase64      = "/base64/"
	encBin         = "/bin/"

	// maxSwarmKeyFile bounds how much ParseSwarmKey reads. A real file is
	// under 100 bytes; the slack allows for stray whitespace.
	maxSwarmKeyFile = 1024
)

// ParseSwarmKey reads a libp2p swarm key file and returns the Network whose
// PSK is the file's key; names are derived from it as in FromKey, so the
// same key gives the same Network either way.
//
// Parsing is stricter than go-libp2p's pnet.DecodeV1PSK, which accepts
// anything after the first 32 key bytes: here the header lines may end in
// "\n" or "\r\n", a /base16/ or /base64/ body may be followed by whitespace
// only, and a /bin/ body must be exactly 32 bytes. Any other input, and any
// read error, returns an error wrapping ErrSwarmKey.
func ParseSwarmKey(r io.Reader) (*Network, error) {
	key, err := decodeSwarmKey(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSwarmKey, err)
	}
	return fromRawKey(key, sourceSwarmKey), nil
}

// SwarmKey returns this network's PSK as a base16 swarm key file, readable
// by ParseSwarmKey and other libp2p tools (e.g. as IPFS's swarm.key). The
// result is key material: store it like a password.
func (n *Network) SwarmKey() []byte {
	b := make([]byte, 0, len(swarmKeyHeader)+len(encBase16)+2*KeySize+3)
	b = append(b, swarmKeyHeader+"\n"+encBase16+"\n"...)
	b = hex.AppendEncode(b, n.psk[:])
	return append(b, '\n')
}

func decodeSwarmKey(r io.Reader) (key [KeySize]byte, err error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSwarmKeyFile+1))
	if err != nil {
		return key, fmt.Errorf("read: %w", err)
	}
	if len(data) == 0 {
		return key, fmt.Errorf("empty input")
	}
	if len(data) > maxSwarmKeyFile {
		return key, fmt.Errorf("longer than %d bytes", maxSwarmKeyFile)
	}
	header, rest, ok := cutLine(data)
	if !ok || header != swarmKeyHeader {
		return key, fmt.Errorf("first line is not %q", swarmKeyHeader)
	}
	enc, body, ok := cutLine(rest)
	if !ok {
		return key, fmt.Errorf("missing encoding line")
	}
	var raw []byte
	switch enc {
	case encBin:
		raw = body
	case encBase16:
		raw, err = hex.DecodeString(string(bytes.TrimRight(body, " \t\r\n")))
	case encBase64:
		raw, err = base64.StdEncoding.DecodeString(string(bytes.TrimRight(body, " \t\r\n")))
	default:
		// Don't echo the line: in a malformed file it may be the key.
		return key, fmt.Errorf("unknown encoding line (want %s, %s or %s)", encBase16, encBase64, encBin)
	}
	if err != nil {
		return key, fmt.Errorf("%s body: %w", enc, err)
	}
	if len(raw) != KeySize {
		return key, fmt.Errorf("%s body: got %d key bytes, want %d", enc, len(raw), KeySize)
	}
	return [KeySize]byte(raw), nil
}

// cutLine splits off the first line, which must end in "\n" or "\r\n".
func cutLine(b []byte) (line string, rest []byte, ok bool) {
	l, rest, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return "", nil, false
	}
	return string(bytes.TrimSuffix(l, []byte{'\r'})), rest, true
}
