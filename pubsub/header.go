package pubsub

import (
	"fmt"
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
	var buf [8]string
	keys := buf[:0]
	size := 0
	for k, vs := range h {
		if k == "" || !utf8.ValidString(k) {
			return nil, fmt.Errorf("%w: key %q", ErrHeader, k)
		}
		keys = append(keys, k)
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, fmt.Errorf("%w: value of %q is not UTF-8", ErrHeader, k)
			}
			size += strLen(k) + strLen(v)
		}
	}
	if size > MaxHeaderBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrHeader, size, MaxHeaderBytes)
	}
	if len(keys) > 1 {
		slices.Sort(keys)
	}
	out := make([]byte, 0, size)
	for _, k := range keys {
		for _, v := range h[k] {
			out = appendString(out, k)
			out = appendString(out, v)
		}
	}
	return out, nil
}

// decodeHeader decodes what encodeHeader produced; nil for no bytes. Keys
// and values share one string (one allocation for them all).
func decodeHeader(b []byte) (Header, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > MaxHeaderBytes {
		return nil, fmt.Errorf("%w: headers of %d bytes", ErrMalformed, len(b))
	}
	all := string(b)
	h := make(Header, 2)
	for off := 0; off < len(all); {
		k, next, err := headerString(all, off)
		if err != nil || k == "" {
			return nil, fmt.Errorf("%w: header key", ErrMalformed)
		}
		v, next, err := headerString(all, next)
		if err != nil {
			return nil, fmt.Errorf("%w: header value of %q", ErrMalformed, k)
		}
		h[k] = append(h[k], v)
		off = next
	}
	return h, nil
}

// headerString reads the length-prefixed UTF-8 string at off in all and
// returns it (a substring of all) with the offset after it.
func headerString(all string, off int) (string, int, error) {
	var l uint64
	var n int
	for shift := uint(0); ; shift += 7 { // a canonical uvarint
		if off+n >= len(all) || shift > 63 {
			return "", 0, ErrMalformed
		}
		c := all[off+n]
		n++
		l |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if n != uvarintLen(l) {
				return "", 0, ErrMalformed
			}
			break
		}
	}
	start := off + n
	if l > uint64(len(all)-start) {
		return "", 0, ErrMalformed
	}
	str := all[start : start+int(l)]
	if !utf8.ValidString(str) {
		return "", 0, ErrMalformed
	}
	return str, start + int(l), nil
}
