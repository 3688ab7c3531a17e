package ormap

import (
	"errors"
	"fmt"
)

// verify checks every invariant of m; tests, fuzz targets and the simulator
// call it after each step. It costs a full pass over the map.
func (m *Map) verify() error {
	if len(m.reps) != len(m.ctx) || len(m.reps) != len(m.repIdx) || len(m.reps) == 0 {
		return errors.New("replica table sizes differ")
	}
	for i, r := range m.reps {
		if m.repIdx[r] != uint32(i) {
			return fmt.Errorf("replica %q: index %d, table says %d", r, i, m.repIdx[r])
		}
		if !m.ctx[i].valid() {
			return fmt.Errorf("replica %q: context %v not canonical", r, m.ctx[i])
		}
	}
	nIv := 0
	for _, iv := range m.ctx {
		nIv += len(iv)
	}
	if nIv != m.nIv {
		return fmt.Errorf("context has %d intervals, the count says %d", nIv, m.nIv)
	}
	if err := m.verifyPending(); err != nil {
		return err
	}
	if s := m.ctx[0]; len(s) > 1 || len(s) == 1 && s[0].Lo != 1 {
		return fmt.Errorf("own context %v not a prefix", s)
	}
	if m.tree.root != nil {
		if _, err := m.tree.root.verify(true); err != nil {
			return err
		}
	}
	seen := make(map[dotKey]string)
	count, multis, expiring, bytes := 0, 0, 0, 0
	var prev string
	var err error
	m.tree.ascend("", func(key string, cur *entry) bool {
		it := item{key, *cur}
		if count > 0 && it.key <= prev {
			err = fmt.Errorf("keys out of order: %q after %q", it.key, prev)
			return false
		}
		prev = it.key
		count++
		es := []entry{it.e}
		if it.e.rep&multiBit != 0 {
			multis++
			es = m.multi[it.key]
			if len(es) < 2 || es[0].rep|multiBit != it.e.rep&^ttlBit|es[0].rep&ttlBit || es[0].ctr != it.e.ctr {
				err = fmt.Errorf("key %q: sibling list inconsistent", it.key)
				return false
			}
		} else if _, ok := m.multi[it.key]; ok {
			err = fmt.Errorf("key %q: stray sibling list", it.key)
			return false
		}
		anyTTL := false
		bytes += len(it.key)
		for i, e := range es {
			bytes += len(e.val)
			if e.rep&multiBit != 0 && (i > 0 || len(es) > 1) {
				err = fmt.Errorf("key %q: flag on a sibling", it.key)
				return false
			}
			if e.rep&ttlBit != 0 {
				anyTTL = true
				expiring++
				x, ok := m.ttl.pos[e.dk()]
				if !ok || m.ttl.heap[x].key != it.key || m.ttl.heap[x].exp == 0 {
					err = fmt.Errorf("key %q: expiring entry %v not indexed", it.key, m.dot(e))
					return false
				}
			}
			r := e.ri()
			if int(r) >= len(m.reps) || !m.ctx[r].contains(e.ctr) {
				err = fmt.Errorf("key %q: dot %d:%d not in the context", it.key, r, e.ctr)
				return false
			}
			k := dotKey{r, e.ctr}
			if other, dup := seen[k]; dup {
				err = fmt.Errorf("dot %v live under %q and %q", m.dot(e), other, it.key)
				return false
			}
			seen[k] = it.key
			if i > 0 && !m.better(es[i-1], e) {
				err = fmt.Errorf("key %q: siblings out of order", it.key)
				return false
			}
		}
		if anyTTL != (it.e.rep&ttlBit != 0) {
			err = fmt.Errorf("key %q: expiry flag of the tree's copy wrong", it.key)
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	if count != m.tree.len || multis != len(m.multi) {
		return fmt.Errorf("counted %d keys, %d with siblings; recorded %d, %d", count, multis, m.tree.len, len(m.multi))
	}
	if bytes != m.bytes {
		return fmt.Errorf("live data is %d bytes, Bytes says %d", bytes, m.bytes)
	}
	return m.ttl.verify(expiring)
}

// verify checks the heap and its positions; n is the number of expiring
// entries the map holds.
func (x *ttlIndex) verify(n int) error {
	if len(x.heap) != n || len(x.pos) != n {
		return fmt.Errorf("expiry index holds %d items, %d positions; the map %d expiring entries", len(x.heap), len(x.pos), n)
	}
	for i, it := range x.heap {
		if x.pos[it.dot] != i {
			return fmt.Errorf("expiry index: item %d at position %d", i, x.pos[it.dot])
		}
		if i > 0 && it.exp < x.heap[(i-1)/2].exp {
			return fmt.Errorf("expiry index: heap order broken at %d", i)
		}
	}
	return nil
}

// verify checks the B-tree shape below n and returns its height.
func (n *node) verify(root bool) (int, error) {
	if n.n < 1 || n.n > maxItems || (!root && n.kids != nil && n.n < 1) {
		return 0, fmt.Errorf("node with %d items", n.n)
	}
	for i := n.n; i < maxItems; i++ {
		if n.item(i) != (item{}) {
			return 0, errors.New("stale item past the end of a node")
		}
	}
	for i := 1; i < n.n; i++ {
		if n.keys[i] <= n.keys[i-1] {
			return 0, errors.New("keys out of order in a node")
		}
	}
	if n.kids == nil {
		return 1, nil
	}
	h := -1
	for i := 0; i <= maxItems; i++ {
		k := n.kids[i]
		if (k != nil) != (i <= n.n) {
			return 0, errors.New("child pointers do not match the item count")
		}
		if k == nil {
			continue
		}
		kh, err := k.verify(false)
		if err != nil {
			return 0, err
		}
		if h >= 0 && kh != h {
			return 0, errors.New("leaves at different depths")
		}
		h = kh
		if i > 0 && k.keys[0] <= n.keys[i-1] || i < n.n && k.keys[k.n-1] >= n.keys[i] {
			return 0, errors.New("child keys outside their separators")
		}
	}
	return h + 1, nil
}

// verify checks the invariants of a delta.
func (d Delta) verify() error {
	for _, row := range d.ctx.rows {
		if row.r == "" || !row.iv.valid() || len(row.iv) == 0 {
			return fmt.Errorf("context row %q: %v", row.r, row.iv)
		}
	}
	for i := 1; i < len(d.ctx.rows); i++ {
		if d.ctx.rows[i].r <= d.ctx.rows[i-1].r {
			return errors.New("context rows out of order")
		}
	}
	if !d.deps.SubsetOf(d.ctx) {
		return errors.New("dependencies outside the context")
	}
	seen := make(map[Dot]bool)
	for i, g := range d.groups {
		if i > 0 && g.key <= d.groups[i-1].key {
			return errors.New("keys out of order")
		}
		if d.global && len(g.ents) == 0 {
			return fmt.Errorf("key %q: empty in a global delta", g.key)
		}
		for k, e := range g.ents {
			if !d.ctx.Contains(e.dot()) || seen[e.dot()] || e.ctr == 0 || e.exp != 0 && e.exp <= e.ts.Wall {
				return fmt.Errorf("key %q: dot %v uncovered or duplicate", g.key, e.dot())
			}
			seen[e.dot()] = true
			if k > 0 && !betterD(g.ents[k-1], e) {
				return fmt.Errorf("key %q: entries out of order", g.key)
			}
		}
	}
	return nil
}

// sameState reports how a and b differ (nil if they hold the same context
// and the same entries).
func sameState(a, b *Map) error {
	if ca, cb := a.Context(), b.Context(); !ca.Equal(cb) {
		return fmt.Errorf("contexts differ: %v vs %v", ca, cb)
	}
	if a.Len() != b.Len() {
		return fmt.Errorf("%d keys vs %d", a.Len(), b.Len())
	}
	var err error
	a.tree.ascend("", func(key string, _ *entry) bool {
		x, y := a.GetAll(key), b.GetAll(key)
		if len(x) != len(y) {
			err = fmt.Errorf("key %q: %d vs %d siblings", key, len(x), len(y))
			return false
		}
		for i := range x {
			if x[i].Dot != y[i].Dot || x[i].Time != y[i].Time || string(x[i].Value) != string(y[i].Value) || x[i].Expires != y[i].Expires {
				err = fmt.Errorf("key %q: sibling %d differs: %v vs %v", key, i, x[i], y[i])
				return false
			}
		}
		return true
	})
	return err
}

// verifyPending checks the accounting of the held deltas and their bounds.
func (m *Map) verifyPending() error {
	use := make(map[string]usage)
	bytes := 0
	for _, p := range m.pending {
		if p.size != p.d.Footprint() {
			return fmt.Errorf("held delta of %q: size %d, footprint %d", p.src, p.size, p.d.Footprint())
		}
		u := use[p.src]
		u.n++
		u.bytes += p.size
		use[p.src] = u
		bytes += p.size
	}
	if bytes != m.pendBytes || len(use) != len(m.pendUse) {
		return fmt.Errorf("pending: %d bytes in %d sources, counted %d in %d", bytes, len(use), m.pendBytes, len(m.pendUse))
	}
	for s, u := range use {
		if c := m.pendUse[s]; c == nil || *c != u {
			return fmt.Errorf("pending of %q: %+v, counted %+v", s, u, c)
		}
		if u.bytes > m.bounds.MaxSourceBytes {
			return fmt.Errorf("pending of %q: %d bytes, over the bound %d", s, u.bytes, m.bounds.MaxSourceBytes)
		}
	}
	if bytes > m.bounds.MaxPendingBytes || len(m.pending) > m.bounds.MaxPending {
		return fmt.Errorf("pending: %d deltas, %d bytes, over the bounds %+v", len(m.pending), bytes, m.bounds)
	}
	if len(m.reps) > m.bounds.MaxReplicas || m.nIv > m.bounds.MaxIntervals {
		return fmt.Errorf("%d replicas, %d intervals, over the bounds %+v", len(m.reps), m.nIv, m.bounds)
	}
	return nil
}
