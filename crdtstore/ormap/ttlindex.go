package ormap

// ttlIndex holds the expiry time of every stored entry that has one, keyed
// by dot, as a min-heap by expiry so that the next one is found in O(1) and
// any one is removed in O(log n). A Map without expiring entries leaves it
// empty: no map, no slice, nothing per key.
type ttlIndex struct {
	heap []ttlItem
	pos  map[dotKey]int // dot -> index in heap
}

type ttlItem struct {
	exp int64
	key string
	dot dotKey
}

func (x *ttlIndex) len() int { return len(x.heap) }

// get returns the expiry of dot d, if indexed.
func (x *ttlIndex) get(d dotKey) (int64, bool) {
	i, ok := x.pos[d]
	if !ok {
		return 0, false
	}
	return x.heap[i].exp, true
}

// add indexes dot d of key with expiry exp, or updates its expiry.
func (x *ttlIndex) add(key string, d dotKey, exp int64) {
	if x.pos == nil {
		x.pos = make(map[dotKey]int)
	}
	if i, ok := x.pos[d]; ok {
		x.heap[i].exp = exp
		x.heap[i].key = key
		if !x.up(i) {
			x.down(i)
		}
		return
	}
	x.heap = append(x.heap, ttlItem{exp, key, d})
	x.pos[d] = len(x.heap) - 1
	x.up(len(x.heap) - 1)
}

// remove drops dot d from the index, if there.
func (x *ttlIndex) remove(d dotKey) {
	i, ok := x.pos[d]
	if !ok {
		return
	}
	delete(x.pos, d)
	last := len(x.heap) - 1
	if i != last {
		x.heap[i] = x.heap[last]
		x.pos[x.heap[i].dot] = i
	}
	x.heap[last] = ttlItem{}
	x.heap = x.heap[:last]
	if i != last && !x.up(i) {
		x.down(i)
	}
	if len(x.heap) == 0 {
		x.heap, x.pos = nil, nil // a map that stopped using TTLs pays nothing
	}
}

// min returns the item expiring first.
func (x *ttlIndex) min() (ttlItem, bool) {
	if len(x.heap) == 0 {
		return ttlItem{}, false
	}
	return x.heap[0], true
}

// due calls fn for every item with exp <= now (in no particular order),
// visiting only those and their direct children: O(number due).
func (x *ttlIndex) due(now int64, fn func(ttlItem)) {
	var walk func(i int)
	walk = func(i int) {
		if i >= len(x.heap) || x.heap[i].exp > now {
			return
		}
		fn(x.heap[i])
		walk(2*i + 1)
		walk(2*i + 2)
	}
	walk(0)
}

func (x *ttlIndex) less(i, j int) bool { return x.heap[i].exp < x.heap[j].exp }

func (x *ttlIndex) swap(i, j int) {
	x.heap[i], x.heap[j] = x.heap[j], x.heap[i]
	x.pos[x.heap[i].dot] = i
	x.pos[x.heap[j].dot] = j
}

// up moves item i towards the root; it reports whether it moved.
func (x *ttlIndex) up(i int) bool {
	moved := false
	for i > 0 {
		p := (i - 1) / 2
		if !x.less(i, p) {
			break
		}
		x.swap(i, p)
		i, moved = p, true
	}
	return moved
}

func (x *ttlIndex) down(i int) {
	n := len(x.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && x.less(r, l) {
			c = r
		}
		if !x.less(c, i) {
			return
		}
		x.swap(i, c)
		i = c
	}
}
