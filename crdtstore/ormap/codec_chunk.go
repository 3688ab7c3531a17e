package ormap

// EncodeChunk encodes ch as a chunk frame (kind 3): the range, then a
// delta body as in a delta frame (see the package documentation).
func EncodeChunk(ch Chunk) []byte {
	head := appendString(nil, ch.from)
	if ch.done {
		head = append(head, 1)
	} else {
		head = append(head, 0)
		head = appendString(head, ch.next)
	}
	return encodeDelta(ch.d, kindChunk, head)
}

// DecodeChunk decodes a chunk frame within the limits l. Besides what
// DecodeDelta checks, it refuses (ErrMalformed) a range that is empty or
// misses a key of the chunk, a key without entries, an origin, flags, deps,
// and a context that is not exactly the dots of the entries.
func DecodeChunk(b []byte, l Limits) (Chunk, error) {
	r, err := newReader(b, l, kindChunk, wireTTL)
	if err != nil {
		return Chunk{}, err
	}
	var ch Chunk
	ch.from = r.str(r.lim.MaxKeyLen, "key")
	switch r.byte() {
	case 0:
		ch.next = r.str(r.lim.MaxKeyLen, "key")
		if r.err == nil && ch.next <= ch.from {
			r.fail(ErrMalformed, "empty chunk range")
		}
	case 1:
		ch.done = true
	default:
		r.fail(ErrMalformed, "bad chunk end flag")
	}
	if r.err != nil {
		return Chunk{}, r.err
	}
	if ch.d, err = r.delta(); err != nil {
		return Chunk{}, err
	}
	d := ch.d
	n := 0
	for _, g := range d.groups {
		if len(g.ents) == 0 {
			return Chunk{}, r.malformed("key without entries in a chunk")
		}
		if g.key < ch.from || !ch.done && g.key >= ch.next {
			return Chunk{}, r.malformed("key outside the chunk's range")
		}
		n += len(g.ents)
	}
	switch {
	case d.global || d.origin != "":
		return Chunk{}, r.malformed("chunk with flags or an origin")
	case !d.deps.IsEmpty():
		return Chunk{}, r.malformed("chunk with dependencies")
	case d.ctx.Size() != uint64(n):
		// Every entry's dot is in the context and distinct (DecodeDelta
		// checked): equal sizes mean the context is exactly those dots.
		return Chunk{}, r.malformed("chunk context beyond its entries")
	}
	return ch, nil
}

// malformed returns an ErrMalformed error (for checks after the reader).
func (r *reader) malformed(what string) error {
	r.fail(ErrMalformed, "%s", what)
	return r.err
}
