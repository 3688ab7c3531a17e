package pubsub

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// Header holds a message's headers: keys with one or more values each, as
// in net/http and nats.go (keys are case-sensitive here). Trace ids and
// content types go here rather than in the body. A message without headers
// (nil or empty) costs nothing on the wire.
type Header map[string][]string

// MaxHeaderBytes bounds the encoded headers of one message (each key and
// value plus a length prefix each).
const MaxHeaderBytes = 16 << 10

// Get returns the first value of key, or "".
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of key.
func (h Header) Values(key string) []string { return h[key] }

// Set makes value the only value of key.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Add appends value to key's values.
func (h Header) Add(key, value string) { h[key] = append(h[key], value) }

// Del removes key.
func (h Header) Del(key string) { delete(h, key) }

// Clone returns a deep copy of h (nil for nil).
func (h Header) Clone() Header {
	if h == nil {
		return nil
	}
	c := make(Header, len(h))
	for k, v := range h {
		c[k] = slices.Clone(v)
	}
	return c
}

// encodeHeader encodes h as (key, value) pairs, keys sorted, each key once
// per value:
//
//	pairs ×  uvarint length + key bytes, uvarint length + value bytes
//
// Keys must be non-empty and, like values, valid UTF-8; the result is at
// most MaxHeaderBytes. Empty headers encode as nil.
func encodeHeader(h Header) ([]byte, error) {
	if len(h) == 0 {
		return nil, nil
	}
	var out []byte
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if k == "" || !utf8.ValidString(k) {
			return nil, fmt.Errorf("%w: key %q", ErrHeader, k)
		}
		for _, v := range h[k] {
			if !utf8.ValidString(v) {
				return nil, fmt.Errorf("%w: value of %q is not UTF-8", ErrHeader, k)
			}
			out = binary.AppendUvarint(out, uint64(len(k)))
			out = append(out, k...)
			out = binary.AppendUvarint(out, uint64(len(v)))
			out = append(out, v...)
			if len(out) > MaxHeaderBytes {
				return nil, fmt.Errorf("%w: more than %d bytes", ErrHeader, MaxHeaderBytes)
			}
		}
	}
	return out, nil
}

// decodeHeader decodes what encodeHeader produced; nil for no bytes.
func decodeHeader(b []byte) (Header, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > MaxHeaderBytes {
		return nil, fmt.Errorf("%w: headers of %d bytes", ErrMalformed, len(b))
	}
	h := Header{}
	for len(b) > 0 {
		k, rest, err := headerString(b)
		if err != nil || k == "" {
			return nil, fmt.Errorf("%w: header key", ErrMalformed)
		}
		v, rest, err := headerString(rest)
		if err != nil {
			return nil, fmt.Errorf("%w: header value of %q", ErrMalformed, k)
		}
		h[k] = append(h[k], v)
		b = rest
	}
	return h, nil
}

// headerString reads one length-prefixed UTF-8 string.
func headerString(b []byte) (string, []byte, error) {
	l, n := uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return "", nil, ErrMalformed
	}
	s := b[n : n+int(l)]
	if !utf8.Valid(s) {
		return "", nil, ErrMalformed
	}
	return string(s), b[n+int(l):], nil
}
