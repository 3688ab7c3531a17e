package ormap

// An in-memory B-tree of items ordered by key. It holds every live key of a
// Map with its visible entry inline, which keeps the per-key overhead low
// (56 bytes per item, nodes 50-100 % full) and gives ordered prefix scans.
// Inserts on the right or left edge (ascending or descending keys, as when
// a snapshot is loaded) split unevenly so that bulk loads leave nodes full.

const (
	btDegree = 16
	maxItems = 2*btDegree - 1 // 31 items: a node is 1752 bytes
	minItems = btDegree - 1
)

type item struct {
	key string
	e   entry
}

type node struct {
	n     int
	items [maxItems]item
	kids  *[maxItems + 1]*node // nil in leaves
}

type btree struct {
	root *node
	len  int
}

// find returns the index of the first item with key >= key, and whether it
// is equal.
func (n *node) find(key string) (int, bool) {
	lo, hi := 0, n.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.items[m].key < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < n.n && n.items[lo].key == key
}

// get returns the item for key, or nil. The pointer is valid until the next
// insert or delete.
func (t *btree) get(key string) *item {
	n := t.root
	for n != nil {
		i, ok := n.find(key)
		if ok {
			return &n.items[i]
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
		t.root.items[0] = it
		return
	}
	med, right, split := t.root.insert(it, true, true)
	if split {
		old := t.root
		t.root = &node{n: 1, kids: new([maxItems + 1]*node)}
		t.root.items[0] = med
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
	med, r, split := n.kids[i].insert(it, left && i == 0, right && i == n.n)
	if !split {
		return item{}, nil, false
	}
	return n.insertAt(i, med, r, left, right)
}

// insertAt puts it at index i and kid (if n is internal) at i+1.
func (n *node) insertAt(i int, it item, kid *node, left, right bool) (item, *node, bool) {
	if n.n < maxItems {
		copy(n.items[i+1:n.n+1], n.items[i:n.n])
		n.items[i] = it
		if n.kids != nil {
			copy(n.kids[i+2:n.n+2], n.kids[i+1:n.n+1])
			n.kids[i+1] = kid
		}
		n.n++
		return item{}, nil, false
	}
	var items [maxItems + 1]item
	copy(items[:i], n.items[:i])
	items[i] = it
	copy(items[i+1:], n.items[i:])
	var kids [maxItems + 2]*node
	if n.kids != nil {
		copy(kids[:i+1], n.kids[:i+1])
		kids[i+1] = kid
		copy(kids[i+2:], n.kids[i+1:])
	}
	mid := (maxItems + 1) / 2
	switch {
	case right && i == maxItems: // appending on the right edge: keep n full
		mid = maxItems - 1
	case left && i == 0: // prepending on the left edge
		mid = 1
	}
	r := &node{n: maxItems - mid}
	copy(r.items[:], items[mid+1:])
	n.n = mid
	copy(n.items[:], items[:mid])
	clear(n.items[mid:])
	if n.kids != nil {
		r.kids = new([maxItems + 1]*node)
		copy(r.kids[:], kids[mid+1:])
		copy(n.kids[:], kids[:mid+1])
		clear(n.kids[mid+1:])
	}
	return items[mid], r, true
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
			n.n--
			it := n.items[n.n]
			n.items[n.n] = item{}
			return it, true
		}
		i = n.n
	} else {
		i, found = n.find(key)
		if n.kids == nil {
			if !found {
				return item{}, false
			}
			it := n.items[i]
			n.removeAt(i, false)
			return it, true
		}
	}
	if n.kids[i].n <= minItems {
		n.grow(i)
		return n.remove(key, max)
	}
	if found {
		it := n.items[i]
		n.items[i], _ = n.kids[i].remove("", true) // the predecessor
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
	copy(n.items[i:], n.items[i+1:n.n])
	n.n--
	n.items[n.n] = item{}
}

// grow gives child i more than minItems items by stealing from a sibling or
// merging with one.
func (n *node) grow(i int) {
	child := n.kids[i]
	if i > 0 && n.kids[i-1].n > minItems { // steal from the left
		l := n.kids[i-1]
		copy(child.items[1:child.n+1], child.items[:child.n])
		child.items[0] = n.items[i-1]
		if child.kids != nil {
			copy(child.kids[1:child.n+2], child.kids[:child.n+1])
			child.kids[0] = l.kids[l.n]
			l.kids[l.n] = nil
		}
		child.n++
		n.items[i-1] = l.items[l.n-1]
		l.n--
		l.items[l.n] = item{}
		return
	}
	if i < n.n && n.kids[i+1].n > minItems { // steal from the right
		r := n.kids[i+1]
		child.items[child.n] = n.items[i]
		if child.kids != nil {
			child.kids[child.n+1] = r.kids[0]
			copy(r.kids[:r.n], r.kids[1:r.n+1])
			r.kids[r.n] = nil
		}
		child.n++
		n.items[i] = r.items[0]
		copy(r.items[:r.n-1], r.items[1:r.n])
		r.n--
		r.items[r.n] = item{}
		return
	}
	if i == n.n { // merge with the left sibling instead
		i--
		child = n.kids[i]
	}
	r := n.kids[i+1]
	child.items[child.n] = n.items[i]
	copy(child.items[child.n+1:], r.items[:r.n])
	if child.kids != nil {
		copy(child.kids[child.n+1:], r.kids[:r.n+1])
	}
	child.n += 1 + r.n
	n.removeAt(i, true)
}

// ascend calls fn for each item with key >= from, in order, until fn
// returns false. fn must not modify the tree.
func (t *btree) ascend(from string, fn func(*item) bool) {
	if t.root != nil {
		t.root.ascend(from, fn)
	}
}

func (n *node) ascend(from string, fn func(*item) bool) bool {
	i, _ := n.find(from)
	for ; i < n.n; i++ {
		if n.kids != nil && !n.kids[i].ascend(from, fn) {
			return false
		}
		if !fn(&n.items[i]) {
			return false
		}
	}
	if n.kids != nil {
		return n.kids[n.n].ascend(from, fn)
	}
	return true
}
