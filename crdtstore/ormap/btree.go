package ormap

// An in-memory B-tree of keys, each with its visible entry inline. It holds
// every live key of a Map, keeps the per-key overhead low (56 bytes per
// key; leaves about 85 % full after random inserts, nearly 100 % after
// sorted ones) and gives ordered prefix scans. Keys and entries
// live in separate arrays of a node so that a search touches only the keys.
// Inserts on the right or left edge (ascending or descending keys, as when
// a snapshot is loaded) split unevenly so that bulk loads leave nodes full.

const (
	btDegree = 31
	maxItems = 2*btDegree - 1 // 61: a node is 3,432 bytes, a malloc size class
	minItems = btDegree - 1
)

// item is a key with its entry, as passed around; nodes store them split.
type item struct {
	key string
	e   entry
}

type node struct {
	n    int
	keys [maxItems]string
	ents [maxItems]entry
	kids *[maxItems + 1]*node // nil in leaves
}

type btree struct {
	root *node
	len  int
}

func (n *node) item(i int) item { return item{n.keys[i], n.ents[i]} }

func (n *node) setItem(i int, it item) { n.keys[i], n.ents[i] = it.key, it.e }

// find returns the index of the first key >= key, and whether it is equal.
func (n *node) find(key string) (int, bool) {
	lo, hi := 0, n.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.keys[m] < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < n.n && n.keys[lo] == key
}

// get returns the entry of key, or nil. The pointer is valid until the next
// insert or delete.
func (t *btree) get(key string) *entry {
	n := t.root
	for n != nil {
		i, ok := n.find(key)
		if ok {
			return &n.ents[i]
		}
		if n.kids == nil {
			return nil
		}
		n = n.kids[i]
	}
	return nil
}

// insert adds it; the key must not be present.
func (t *btree) insert(it item) {
	t.len++
	if t.root == nil {
		t.root = &node{n: 1}
		t.root.setItem(0, it)
		return
	}
	med, right, split := t.root.insert(it, true, true)
	if split {
		old := t.root
		t.root = &node{n: 1, kids: new([maxItems + 1]*node)}
		t.root.setItem(0, med)
		t.root.kids[0], t.root.kids[1] = old, right
	}
}

// insert adds it below n. If n overflows it splits: the median item and the
// new right sibling are returned for the parent. left and right tell whether
// n is on the tree's left or right edge.
func (n *node) insert(it item, left, right bool) (item, *node, bool) {
	i, _ := n.find(it.key)
	if n.kids == nil {
		return n.insertAt(i, it, nil, left, right)
	}
	if c := n.kids[i]; c.kids == nil && c.n == maxItems {
		// A full leaf: pass one item through the separator to a sibling
		// leaf with room rather than split (keeps leaves ~85 % full).
		if i > 0 && n.kids[i-1].n < maxItems {
			l := n.kids[i-1]
			l.setItem(l.n, n.item(i-1))
			l.n++
			n.setItem(i-1, c.item(0))
			c.removeAt(0, false)
			if it.key < n.keys[i-1] {
				i--
			}
		} else if i < n.n && n.kids[i+1].n < maxItems {
			r := n.kids[i+1]
			copy(r.keys[1:r.n+1], r.keys[:r.n])
			copy(r.ents[1:r.n+1], r.ents[:r.n])
			r.setItem(0, n.item(i))
			r.n++
			n.setItem(i, c.item(c.n-1))
			c.removeAt(c.n-1, false)
			if it.key > n.keys[i] {
				i++
			}
		}
	}
	med, r, split := n.kids[i].insert(it, left && i == 0, right && i == n.n)
	if !split {
		return item{}, nil, false
	}
	return n.insertAt(i, med, r, left, right)
}

// insertAt puts it at index i and kid (if n is internal) at i+1.
func (n *node) insertAt(i int, it item, kid *node, left, right bool) (item, *node, bool) {
	if n.n < maxItems {
		copy(n.keys[i+1:n.n+1], n.keys[i:n.n])
		copy(n.ents[i+1:n.n+1], n.ents[i:n.n])
		n.setItem(i, it)
		if n.kids != nil {
			copy(n.kids[i+2:n.n+2], n.kids[i+1:n.n+1])
			n.kids[i+1] = kid
		}
		n.n++
		return item{}, nil, false
	}
	// Overflow: split the maxItems+1 items around a median.
	mid := (maxItems + 1) / 2
	switch {
	case right && i == maxItems: // appending on the right edge: keep n full
		mid = maxItems - 1
	case left && i == 0: // prepending on the left edge
		mid = 1
	}
	var all [maxItems + 1]item
	for k := range i {
		all[k] = n.item(k)
	}
	all[i] = it
	for k := i; k < maxItems; k++ {
		all[k+1] = n.item(k)
	}
	var kids [maxItems + 2]*node
	if n.kids != nil {
		copy(kids[:i+1], n.kids[:i+1])
		kids[i+1] = kid
		copy(kids[i+2:], n.kids[i+1:])
	}
	r := &node{n: maxItems - mid}
	for k := range r.n {
		r.setItem(k, all[mid+1+k])
	}
	n.n = mid
	for k := range maxItems {
		if k < mid {
			n.setItem(k, all[k])
		} else {
			n.setItem(k, item{})
		}
	}
	if n.kids != nil {
		r.kids = new([maxItems + 1]*node)
		copy(r.kids[:], kids[mid+1:])
		copy(n.kids[:], kids[:mid+1])
		clear(n.kids[mid+1:])
	}
	return all[mid], r, true
}

// delete removes key and reports whether it was present.
func (t *btree) delete(key string) bool {
	if t.root == nil {
		return false
	}
	_, ok := t.root.remove(key, false)
	if t.root.n == 0 {
		if t.root.kids == nil {
			t.root = nil
		} else {
			t.root = t.root.kids[0]
		}
	}
	if ok {
		t.len--
	}
	return ok
}

// remove deletes key (or, if max, the greatest item) from the subtree at n.
// Before descending into a child it makes sure the child has more than
// minItems items, so the removal never underflows it.
func (n *node) remove(key string, max bool) (item, bool) {
	var i int
	var found bool
	if max {
		if n.kids == nil {
			it := n.item(n.n - 1)
			n.removeAt(n.n-1, false)
			return it, true
		}
		i = n.n
	} else {
		i, found = n.find(key)
		if n.kids == nil {
			if !found {
				return item{}, false
			}
			it := n.item(i)
			n.removeAt(i, false)
			return it, true
		}
	}
	if n.kids[i].n <= minItems {
		n.grow(i)
		return n.remove(key, max)
	}
	if found {
		it := n.item(i)
		pred, _ := n.kids[i].remove("", true)
		n.setItem(i, pred)
		return it, true
	}
	return n.kids[i].remove(key, max)
}

// removeAt removes item i and, if kid, kid i+1 (not its contents).
func (n *node) removeAt(i int, kid bool) {
	if kid {
		copy(n.kids[i+1:], n.kids[i+2:n.n+1])
		n.kids[n.n] = nil
	}
	copy(n.keys[i:], n.keys[i+1:n.n])
	copy(n.ents[i:], n.ents[i+1:n.n])
	n.n--
	n.setItem(n.n, item{})
}

// grow gives child i more than minItems items by stealing from a sibling or
// merging with one.
func (n *node) grow(i int) {
	child := n.kids[i]
	if i > 0 && n.kids[i-1].n > minItems { // steal from the left
		l := n.kids[i-1]
		copy(child.keys[1:child.n+1], child.keys[:child.n])
		copy(child.ents[1:child.n+1], child.ents[:child.n])
		child.setItem(0, n.item(i-1))
		if child.kids != nil {
			copy(child.kids[1:child.n+2], child.kids[:child.n+1])
			child.kids[0] = l.kids[l.n]
			l.kids[l.n] = nil
		}
		child.n++
		n.setItem(i-1, l.item(l.n-1))
		l.n--
		l.setItem(l.n, item{})
		return
	}
	if i < n.n && n.kids[i+1].n > minItems { // steal from the right
		r := n.kids[i+1]
		child.setItem(child.n, n.item(i))
		if child.kids != nil {
			child.kids[child.n+1] = r.kids[0]
			copy(r.kids[:r.n], r.kids[1:r.n+1])
			r.kids[r.n] = nil
		}
		child.n++
		n.setItem(i, r.item(0))
		copy(r.keys[:r.n-1], r.keys[1:r.n])
		copy(r.ents[:r.n-1], r.ents[1:r.n])
		r.n--
		r.setItem(r.n, item{})
		return
	}
	if i == n.n { // merge with the left sibling instead
		i--
		child = n.kids[i]
	}
	r := n.kids[i+1]
	child.setItem(child.n, n.item(i))
	copy(child.keys[child.n+1:], r.keys[:r.n])
	copy(child.ents[child.n+1:], r.ents[:r.n])
	if child.kids != nil {
		copy(child.kids[child.n+1:], r.kids[:r.n+1])
	}
	child.n += 1 + r.n
	n.removeAt(i, true)
}

// ascend calls fn for each key >= from, in order, with its entry, until fn
// returns false. fn must not modify the tree (it may change the entry).
func (t *btree) ascend(from string, fn func(string, *entry) bool) {
	if t.root != nil {
		t.root.ascend(from, fn)
	}
}

func (n *node) ascend(from string, fn func(string, *entry) bool) bool {
	i, _ := n.find(from)
	for ; i < n.n; i++ {
		if n.kids != nil && !n.kids[i].ascend(from, fn) {
			return false
		}
		if !fn(n.keys[i], &n.ents[i]) {
			return false
		}
	}
	if n.kids != nil {
		return n.kids[n.n].ascend(from, fn)
	}
	return true
}
