package tracker

// This file is pure: no clock, no I/O, no goroutines, no randomness.
// Map iteration order never reaches an output: every walk is sorted.

import (
	"cmp"
	"slices"
	"time"
)

// rootKey is the origin's key in tree.nodes. It is never a valid node ID,
// so the origin can change its ID (a restart with a new TLS key) without
// re-keying its children.
const rootKey = "origin"

// node is one peer (or the origin) in a tree.
type node struct {
	id       string
	addr     string
	capacity int
	parent   string              // key of the parent; "" while detached (and for the origin)
	children map[string]struct{} // keys of the children
	joined   time.Time
	lastBeat time.Time
	stats    PeerStats
}

// tree is one channel's tree of peers under its origin. Peers are keyed by
// their ID. A peer is either attached (a chain of parents leads to the
// origin) or in a detached subtree whose root waits for a free slot;
// detached roots exist only while no attached node outside their subtree
// has a free slot. tree is not safe for concurrent use.
type tree struct {
	placer   Placer
	nodes    map[string]*node    // by key; rootKey is the origin
	detached map[string]struct{} // keys of detached subtree roots
}

func newTree(origin NodeInfo, capacity int, placer Placer) *tree {
	if placer == nil {
		placer = Shallowest{}
	}
	t := &tree{
		placer:   placer,
		nodes:    map[string]*node{},
		detached: map[string]struct{}{},
	}
	t.nodes[rootKey] = &node{id: origin.ID, addr: origin.Addr, capacity: capacity, children: map[string]struct{}{}}
	return t
}

func (t *tree) root() *node { return t.nodes[rootKey] }

// peers is the number of peers, attached or not.
func (t *tree) peers() int { return len(t.nodes) - 1 }

// info returns the NodeInfo of key; zero for "".
func (t *tree) info(key string) NodeInfo {
	if n, ok := t.nodes[key]; ok {
		return NodeInfo{ID: n.id, Addr: n.addr}
	}
	return NodeInfo{}
}

// setOrigin replaces the origin's address, ID and capacity (an origin
// restart). Children beyond a smaller capacity (the latest joined) are
// re-placed.
func (t *tree) setOrigin(origin NodeInfo, capacity int, now time.Time) {
	r := t.root()
	r.id, r.addr, r.capacity = origin.ID, origin.Addr, capacity
	if excess := len(r.children) - capacity; excess > 0 {
		kids := t.byJoin(r.children)
		for _, k := range kids[len(kids)-excess:] {
			t.detach(k)
		}
	}
	t.settle(now)
}

// join adds a peer (replacing an entry with the same ID) and places it.
// It returns the key of its parent.
func (t *tree) join(id, addr string, capacity int, now time.Time) (string, error) {
	if id == t.root().id {
		return "", ErrIDConflict
	}
	if _, ok := t.nodes[id]; ok {
		t.remove(id)
		t.settle(now)
	}
	t.nodes[id] = &node{
		id: id, addr: addr, capacity: capacity,
		children: map[string]struct{}{},
		joined:   now, lastBeat: now,
	}
	t.detached[id] = struct{}{}
	if !t.place(id, "", now) {
		delete(t.nodes, id)
		delete(t.detached, id)
		return "", ErrNoCapacity
	}
	t.settle(now) // a displacing joiner may bring free slots for waiting subtrees
	return t.nodes[id].parent, nil
}

// heartbeat records a heartbeat and returns the peer's parent key ("" if
// detached) and its children's keys, sorted.
func (t *tree) heartbeat(id string, stats PeerStats, now time.Time) (string, []string, error) {
	n, ok := t.nodes[id]
	if !ok || id == rootKey {
		return "", nil, ErrUnknownPeer
	}
	n.lastBeat = now
	n.stats = stats
	return n.parent, sortedKeys(n.children), nil
}

// leave removes a peer and re-places its children. It reports whether the
// peer existed.
func (t *tree) leave(id string, now time.Time) bool {
	if !t.remove(id) {
		return false
	}
	t.settle(now)
	return true
}

// expire removes every peer that has not heartbeated for longer than
// timeout and re-places their orphans. It returns the removed IDs, sorted.
func (t *tree) expire(now time.Time, timeout time.Duration) []string {
	var dead []string
	for k, n := range t.nodes {
		if k != rootKey && now.Sub(n.lastBeat) > timeout {
			dead = append(dead, k)
		}
	}
	if len(dead) == 0 {
		return nil
	}
	slices.Sort(dead)
	for _, k := range dead {
		t.remove(k)
	}
	t.settle(now)
	return dead
}

// parentLost handles peer id's report that it lost the node lost. If lost
// is a peer silent for longer than silence, it is removed. If id is still
// under lost, it moves to another parent (never lost, never its own
// subtree). It returns id's parent key (ErrNoCapacity if it has none)
// and whether lost was removed.
func (t *tree) parentLost(id, lost string, now time.Time, silence time.Duration) (parent string, removed bool, err error) {
	n, ok := t.nodes[id]
	if !ok || id == rootKey {
		return "", false, ErrUnknownPeer
	}
	if lost != t.root().id {
		if p, ok := t.nodes[lost]; ok && lost != rootKey && now.Sub(p.lastBeat) > silence {
			t.remove(lost)
			t.settle(now)
			removed = true
		}
		if n.parent == lost {
			t.detach(id)
			if !t.place(id, lost, now) {
				t.attach(id, lost) // nothing else is free: keep the old parent
				return "", removed, ErrNoCapacity
			}
			t.settle(now) // lost has a free slot now
		}
	}
	if n.parent == "" {
		return "", removed, ErrNoCapacity
	}
	return n.parent, removed, nil
}

// remove deletes a peer; its children become detached roots. The caller
// settles afterwards.
func (t *tree) remove(key string) bool {
	n, ok := t.nodes[key]
	if !ok || key == rootKey {
		return false
	}
	for c := range n.children {
		t.nodes[c].parent = ""
		t.detached[c] = struct{}{}
	}
	if n.parent != "" {
		delete(t.nodes[n.parent].children, key)
	}
	delete(t.detached, key)
	delete(t.nodes, key)
	return true
}

func (t *tree) detach(key string) {
	n := t.nodes[key]
	if n.parent != "" {
		delete(t.nodes[n.parent].children, key)
		n.parent = ""
	}
	t.detached[key] = struct{}{}
}

func (t *tree) attach(key, parent string) {
	t.nodes[key].parent = parent
	t.nodes[parent].children[key] = struct{}{}
	delete(t.detached, key)
}

// place attaches the detached root key under the node the placer picks
// among the attached nodes with a free slot, except avoid. Detached
// subtrees (key's own included) are never candidates, so no cycle can
// form. When no node has a free slot, key takes a leaf's place instead
// (see displaceLeaf). It reports whether key was attached.
func (t *tree) place(key, avoid string, now time.Time) bool {
	cands, keys := t.candidates(avoid)
	if len(cands) == 0 {
		return t.displaceLeaf(key, avoid)
	}
	n := t.nodes[key]
	i := t.placer.Place(n.id, n.capacity, cands, now)
	if i < 0 || i >= len(cands) {
		return false
	}
	t.attach(key, keys[i])
	return true
}

// displaceLeaf is the fallback when every attached slot is taken: if key
// can forward (a free child slot of its own), it takes the place of the
// shallowest attached leaf-only peer (capacity 0; ties: the latest joined,
// then the smaller ID) whose parent is not avoid, and that peer becomes
// key's child. Without it, leaf-only peers that joined first would block
// the channel for good. It reports whether key was attached.
func (t *tree) displaceLeaf(key, avoid string) bool {
	n := t.nodes[key]
	if len(n.children) >= n.capacity {
		return false
	}
	var (
		leaf      string
		leafDepth int
	)
	t.walk(func(k string, c *node, depth int) {
		if k == rootKey || c.capacity != 0 || c.parent == avoid {
			return
		}
		if leaf == "" || depth < leafDepth ||
			depth == leafDepth && (c.joined.After(t.nodes[leaf].joined) ||
				c.joined.Equal(t.nodes[leaf].joined) && k < leaf) {
			leaf, leafDepth = k, depth
		}
	})
	if leaf == "" {
		return false
	}
	parent := t.nodes[leaf].parent
	t.detach(leaf)
	t.attach(key, parent)
	t.attach(leaf, key)
	return true
}

// settle attaches waiting detached roots, earliest joined first, until no
// more fit.
func (t *tree) settle(now time.Time) {
	for len(t.detached) > 0 {
		placed := false
		for _, k := range t.byJoin(t.detached) {
			if t.place(k, "", now) {
				placed = true
			}
		}
		if !placed {
			return
		}
	}
}

// candidates walks the attached nodes breadth-first (children sorted by
// key) and returns those with a free slot, except avoid, with their keys.
func (t *tree) candidates(avoid string) ([]Candidate, []string) {
	var cands []Candidate
	var keys []string
	t.walk(func(k string, n *node, depth int) {
		if k != avoid && len(n.children) < n.capacity {
			cands = append(cands, Candidate{
				ID: n.id, Origin: k == rootKey, Depth: depth,
				Capacity: n.capacity, Children: len(n.children), Joined: n.joined,
			})
			keys = append(keys, k)
		}
	})
	return cands, keys
}

// walk visits the attached nodes breadth-first from the origin (depth 0),
// children in key order.
func (t *tree) walk(visit func(key string, n *node, depth int)) {
	type item struct {
		key   string
		depth int
	}
	queue := []item{{rootKey, 0}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		n := t.nodes[it.key]
		visit(it.key, n, it.depth)
		for _, c := range sortedKeys(n.children) {
			queue = append(queue, item{c, it.depth + 1})
		}
	}
}

// view returns every peer: attached ones by depth then ID, then detached
// ones (depth 0) by ID.
func (t *tree) view() []TreeNode {
	depth := map[string]int{}
	t.walk(func(k string, _ *node, d int) { depth[k] = d })
	out := make([]TreeNode, 0, t.peers())
	for k, n := range t.nodes {
		if k == rootKey {
			continue
		}
		kids := make([]string, 0, len(n.children))
		for _, c := range sortedKeys(n.children) {
			kids = append(kids, t.nodes[c].id)
		}
		out = append(out, TreeNode{
			ID:                  n.id,
			Addr:                n.addr,
			Parent:              t.info(n.parent).ID,
			Depth:               depth[k],
			Capacity:            n.capacity,
			Children:            kids,
			JoinedUnixMS:        n.joined.UnixMilli(),
			LastHeartbeatUnixMS: n.lastBeat.UnixMilli(),
			Stats:               n.stats,
		})
	}
	slices.SortFunc(out, func(a, b TreeNode) int {
		// Depth 0 (detached) sorts last.
		if (a.Depth == 0) != (b.Depth == 0) {
			if a.Depth == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Depth, b.Depth), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// byJoin returns the keys of set ordered by join time, then key.
func (t *tree) byJoin(set map[string]struct{}) []string {
	keys := sortedKeys(set)
	slices.SortStableFunc(keys, func(a, b string) int {
		return t.nodes[a].joined.Compare(t.nodes[b].joined)
	})
	return keys
}

func sortedKeys(set map[string]struct{}) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
