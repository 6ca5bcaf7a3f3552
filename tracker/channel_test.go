package tracker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// nid returns a valid node ID for a small number; the origin is nid(0).
func nid(i int) string { return fmt.Sprintf("%032x", i) }

// at returns t0 + i milliseconds.
func at(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }

func newTestTree(originCap int) *tree {
	return newTree(NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, originCap, nil)
}

// parentOf returns the parent's ID ("" if detached), failing on unknown.
func parentOf(t *testing.T, tr *tree, id string) string {
	t.Helper()
	n, ok := tr.nodes[id]
	if !ok {
		t.Fatalf("node %s not in tree", id)
	}
	return tr.info(n.parent).ID
}

func mustJoin(t *testing.T, tr *tree, i, capacity, ms int) {
	t.Helper()
	if _, err := tr.join(nid(i), fmt.Sprintf("127.0.0.1:%d", 10000+i), capacity, at(ms)); err != nil {
		t.Fatalf("join %d: %v", i, err)
	}
	checkTree(t, tr)
}

// put attaches peer i under parent p (0 = origin) directly, bypassing the
// placer, to build a given shape.
func put(t *testing.T, tr *tree, i, p, capacity, ms int) {
	t.Helper()
	id := nid(i)
	tr.nodes[id] = &node{id: id, addr: "127.0.0.1:1", capacity: capacity,
		children: map[string]struct{}{}, joined: at(ms), lastBeat: at(ms)}
	parent := id
	if p == 0 {
		parent = rootKey
	} else {
		parent = nid(p)
	}
	tr.attach(id, parent)
	checkTree(t, tr)
}

func TestPlacement(t *testing.T) {
	type join struct{ id, capacity int }
	tests := []struct {
		name      string
		originCap int
		joins     []join
		want      map[int]int // peer → parent (0 = origin, -1 = not joined: no capacity)
	}{
		{
			name: "fills the origin first", originCap: 3,
			joins: []join{{1, 4}, {2, 4}, {3, 4}, {4, 4}},
			want:  map[int]int{1: 0, 2: 0, 3: 0, 4: 1},
		},
		{
			name: "shallowest, earliest joined first", originCap: 2,
			joins: []join{{1, 2}, {2, 2}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}},
			// depth 2 under 1 then 2; then depth 3 under 3, 4, 5 (join order).
			want: map[int]int{1: 0, 2: 0, 3: 1, 4: 1, 5: 2, 6: 2, 7: 3},
		},
		{
			name: "capacity 0 is always a leaf", originCap: 1,
			joins: []join{{1, 2}, {2, 0}, {3, 0}, {4, 0}},
			want:  map[int]int{1: 0, 2: 1, 3: 1, 4: -1},
		},
		{
			name: "a forwarder takes the shallowest, latest leaf's place when all slots are taken", originCap: 1,
			joins: []join{{1, 2}, {2, 0}, {3, 0}, {4, 5}, {5, 1}},
			// 4 replaces 3 (depth 2, joined after 2); 5 then finds 4's free slot.
			want: map[int]int{1: 0, 2: 1, 3: 4, 4: 1, 5: 4},
		},
		{
			name: "a leaf-only origin child does not block the channel", originCap: 1,
			joins: []join{{1, 0}, {2, 3}, {3, 0}},
			want:  map[int]int{2: 0, 1: 2, 3: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestTree(tc.originCap)
			for ms, j := range tc.joins {
				_, err := tr.join(nid(j.id), "127.0.0.1:1", j.capacity, at(ms))
				if tc.want[j.id] == -1 {
					if !errors.Is(err, ErrNoCapacity) {
						t.Fatalf("join %d: err = %v, want ErrNoCapacity", j.id, err)
					}
					if _, ok := tr.nodes[nid(j.id)]; ok {
						t.Fatalf("refused peer %d stayed in the tree", j.id)
					}
					continue
				}
				if err != nil {
					t.Fatalf("join %d: %v", j.id, err)
				}
				checkTree(t, tr)
			}
			for id, p := range tc.want {
				if p == -1 {
					continue
				}
				if got := parentOf(t, tr, nid(id)); got != nid(p) {
					t.Errorf("parent of %d = %s, want %s", id, got, nid(p))
				}
			}
		})
	}
}

func TestJoinOriginIDConflict(t *testing.T) {
	tr := newTestTree(1)
	if _, err := tr.join(nid(0), "127.0.0.1:1", 1, t0); !errors.Is(err, ErrIDConflict) {
		t.Fatalf("join with the origin's ID: err = %v, want ErrIDConflict", err)
	}
}

func TestRejoinReplacesEntry(t *testing.T) {
	tr := newTestTree(2)
	mustJoin(t, tr, 1, 1, 0)
	mustJoin(t, tr, 2, 1, 1)
	mustJoin(t, tr, 3, 1, 2) // under 1
	if got := parentOf(t, tr, nid(3)); got != nid(1) {
		t.Fatalf("3 under %s, want 1", got)
	}
	// 1 restarts with capacity 0: its child 3 moves (to 2, the only free
	// slot), and 1 becomes a leaf under the freshest free slot: 3.
	if _, err := tr.join(nid(1), "127.0.0.1:2222", 0, at(3)); err != nil {
		t.Fatal(err)
	}
	checkTree(t, tr)
	if tr.peers() != 3 {
		t.Fatalf("peers = %d, want 3", tr.peers())
	}
	n := tr.nodes[nid(1)]
	if n.addr != "127.0.0.1:2222" || n.capacity != 0 || !n.joined.Equal(at(3)) {
		t.Fatalf("re-joined entry not replaced: %+v", n)
	}
	if got := parentOf(t, tr, nid(3)); got != nid(0) {
		t.Fatalf("orphan 3 under %s, want the origin's freed slot", got)
	}
	if got := parentOf(t, tr, nid(1)); got != nid(2) {
		t.Fatalf("re-joined 1 under %s, want 2", got)
	}
}

func TestRemovalReplacesSubtree(t *testing.T) {
	// origin(1) ─ 1(cap 2) ─┬─ 2(cap 1) ─ 4(cap 1) ─ 6(cap 0)
	//                       └─ 3(cap 1) ─ 5(cap 0)
	tr := newTestTree(1)
	put(t, tr, 1, 0, 2, 0)
	put(t, tr, 2, 1, 1, 1)
	put(t, tr, 3, 1, 1, 2)
	put(t, tr, 4, 2, 1, 3)
	put(t, tr, 5, 3, 0, 4)
	put(t, tr, 6, 4, 0, 5)
	// 1 leaves: 2 (earliest) takes the origin's slot with its subtree;
	// 3 goes under the shallowest free slot outside its own subtree, but
	// 2 is full (4), 4 is full (6), 6 has capacity 0, and 3 is full (5) so
	// it cannot take leaf 6's place. So 3 waits detached.
	if !tr.leave(nid(1), at(10)) {
		t.Fatal("leave: peer not found")
	}
	checkTree(t, tr)
	want := map[int]int{2: 0, 4: 2, 6: 4, 5: 3}
	for id, p := range want {
		if got := parentOf(t, tr, nid(id)); got != nid(p) {
			t.Errorf("after: parent of %d = %s, want %d", id, got, p)
		}
	}
	if got := parentOf(t, tr, nid(3)); got != "" {
		t.Fatalf("3 under %s, want detached (no free slot outside its subtree)", got)
	}
	v := tr.view()
	if last := v[len(v)-1]; last.ID != nid(5) || last.Depth != 0 {
		t.Fatalf("view: detached nodes should sort last with depth 0, got %+v", last)
	}
	// 6 leaves: 4 has a free slot and 3 (with 5) attaches there.
	tr.leave(nid(6), at(11))
	checkTree(t, tr)
	if got := parentOf(t, tr, nid(3)); got != nid(4) {
		t.Fatalf("3 under %s after a slot freed, want 4", got)
	}
	if got := parentOf(t, tr, nid(5)); got != nid(3) {
		t.Fatalf("5 under %s, want still under 3", got)
	}
}

func TestOrphanTakesLeafPlace(t *testing.T) {
	// origin(1) ─ 1(cap 2) ─┬─ 2(cap 0)
	//                       └─ 3(cap 2) ─ 4(cap 0)
	tr := newTestTree(1)
	put(t, tr, 1, 0, 2, 0)
	put(t, tr, 2, 1, 0, 1)
	put(t, tr, 3, 1, 2, 2)
	put(t, tr, 4, 3, 0, 3)
	// 1 leaves: 2 (earlier) takes the origin's slot; no slot is left, so
	// 3, which can still forward, takes leaf 2's place and adopts it.
	tr.leave(nid(1), at(10))
	checkTree(t, tr)
	for id, p := range map[int]int{3: 0, 2: 3, 4: 3} {
		if got := parentOf(t, tr, nid(id)); got != nid(p) {
			t.Errorf("parent of %d = %s, want %d", id, got, p)
		}
	}
}

func TestExpiry(t *testing.T) {
	tr := newTestTree(1)
	mustJoin(t, tr, 1, 1, 0)
	mustJoin(t, tr, 2, 1, 0)
	mustJoin(t, tr, 3, 1, 0)
	// 1 stays silent; 2 and 3 heartbeat.
	for ms := 1000; ms <= 4000; ms += 1000 {
		tr.heartbeat(nid(2), PeerStats{}, at(ms))
		tr.heartbeat(nid(3), PeerStats{}, at(ms))
		if dead := tr.expire(at(ms), 3*time.Second); len(dead) > 0 {
			if ms != 4000 || !slices.Equal(dead, []string{nid(1)}) {
				t.Fatalf("at %d ms expired %v, want [1] at 4000 ms", ms, dead)
			}
		}
		checkTree(t, tr)
	}
	if _, ok := tr.nodes[nid(1)]; ok {
		t.Fatal("silent peer 1 not expired")
	}
	if got := parentOf(t, tr, nid(2)); got != nid(0) {
		t.Fatalf("2 under %s, want origin", got)
	}
	if got := parentOf(t, tr, nid(3)); got != nid(2) {
		t.Fatalf("3 under %s, want 2 (its subtree stays)", got)
	}
}

func TestParentLost(t *testing.T) {
	// origin(1) ─ 1(cap 2) ─┬─ 2(cap 2) ─ 4(cap 2)      (4 has free slots)
	//                       └─ 3(cap 1) ─ 5(cap 1) ─ 6(cap 1)   (6 free)
	build := func(t *testing.T) *tree {
		tr := newTestTree(1)
		put(t, tr, 1, 0, 2, 0)
		put(t, tr, 2, 1, 2, 1)
		put(t, tr, 3, 1, 1, 2)
		put(t, tr, 4, 2, 2, 3)
		put(t, tr, 5, 3, 1, 4)
		put(t, tr, 6, 5, 1, 5)
		return tr
	}
	t.Run("never a descendant, never the lost parent", func(t *testing.T) {
		tr := build(t)
		// 2 loses 1 while 1 is alive: 2's own child 4 (depth 3) has free
		// slots but is its descendant; 6 (depth 4) is the only choice.
		p, removed, err := tr.parentLost(nid(2), nid(1), at(100), time.Second)
		if err != nil || removed {
			t.Fatal(err, removed)
		}
		checkTree(t, tr)
		if tr.info(p).ID != nid(6) {
			t.Fatalf("new parent %s, want 6", tr.info(p).ID)
		}
		if _, ok := tr.nodes[nid(1)]; !ok {
			t.Fatal("the lost parent heartbeated recently and must stay")
		}
	})
	t.Run("no other slot keeps the old parent", func(t *testing.T) {
		tr := build(t)
		tr.nodes[nid(6)].capacity = 0 // the only free slot outside 2's subtree
		tr.nodes[nid(2)].capacity = 1 // and 2 is full, so it cannot take 6's place
		p, _, err := tr.parentLost(nid(2), nid(1), at(100), time.Second)
		if !errors.Is(err, ErrNoCapacity) {
			t.Fatalf("err = %v (parent %q), want ErrNoCapacity", err, p)
		}
		checkTree(t, tr)
		if got := parentOf(t, tr, nid(2)); got != nid(1) {
			t.Fatalf("2 under %s, want still under 1", got)
		}
	})
	t.Run("silent lost parent is removed", func(t *testing.T) {
		tr := build(t)
		for _, i := range []int{2, 3, 4, 5, 6} {
			tr.heartbeat(nid(i), PeerStats{}, at(1500))
		}
		p, removed, err := tr.parentLost(nid(3), nid(1), at(1500), time.Second)
		if err != nil || !removed {
			t.Fatal(err, removed)
		}
		checkTree(t, tr)
		if _, ok := tr.nodes[nid(1)]; ok {
			t.Fatal("lost parent silent for 1.5 intervals not removed")
		}
		// 2 joined before 3, so 2 takes the origin's slot; 3 goes to the
		// shallowest free slot outside its subtree: 2's second slot.
		if got := parentOf(t, tr, nid(2)); got != nid(0) {
			t.Fatalf("2 under %s, want origin", got)
		}
		if tr.info(p).ID != nid(2) || parentOf(t, tr, nid(3)) != nid(2) {
			t.Fatalf("3 under %s (response %s), want 2", parentOf(t, tr, nid(3)), tr.info(p).ID)
		}
		if got := parentOf(t, tr, nid(6)); got != nid(5) {
			t.Fatalf("6 under %s, want still under 5", got)
		}
	})
	t.Run("losing the origin returns the origin", func(t *testing.T) {
		tr := build(t)
		p, _, err := tr.parentLost(nid(1), nid(0), at(5000), time.Second)
		if err != nil || p != rootKey {
			t.Fatalf("parentLost(origin) = %q, %v; want the origin", p, err)
		}
	})
	t.Run("stale report returns the current parent", func(t *testing.T) {
		tr := build(t)
		p, _, err := tr.parentLost(nid(4), nid(1), at(100), time.Second)
		if err != nil || tr.info(p).ID != nid(2) {
			t.Fatalf("parentLost = %q, %v; want 2", tr.info(p).ID, err)
		}
	})
	t.Run("unknown peer", func(t *testing.T) {
		tr := build(t)
		if _, _, err := tr.parentLost(nid(99), nid(1), at(100), time.Second); !errors.Is(err, ErrUnknownPeer) {
			t.Fatalf("err = %v, want ErrUnknownPeer", err)
		}
	})
}

func TestOriginRestartShrinksCapacity(t *testing.T) {
	tr := newTestTree(3)
	mustJoin(t, tr, 1, 2, 0)
	mustJoin(t, tr, 2, 2, 1)
	mustJoin(t, tr, 3, 2, 2)
	tr.setOrigin(NodeInfo{ID: nid(100), Addr: "127.0.0.1:9001"}, 1, at(3))
	checkTree(t, tr)
	if got := parentOf(t, tr, nid(1)); got != nid(100) {
		t.Fatalf("1 under %s, want the new origin ID", got)
	}
	for _, i := range []int{2, 3} {
		if got := parentOf(t, tr, nid(i)); got != nid(1) {
			t.Fatalf("%d under %s, want 1", i, got)
		}
	}
}

// adversary is a Placer that picks the deepest candidate and records
// every candidate it was offered, so tests can check none was illegal.
type adversary struct {
	offered func(id string, cands []Candidate)
}

func (a adversary) Place(id string, _ int, cands []Candidate, _ time.Time) int {
	a.offered(id, cands)
	return len(cands) - 1
}

// TestRandomized joins, leaves, expires and reports lost parents for
// hundreds of peers with a seeded source and checks the tree's invariants
// after every step.
func TestRandomized(t *testing.T) {
	for _, mode := range []struct {
		name   string
		minCap int // 0 allows leaf-only peers, and so waiting subtrees
		placer Placer
	}{
		{"shallowest, leaves allowed", 0, Shallowest{}},
		{"shallowest, all forward", 1, Shallowest{}},
		{"adversarial placer", 0, nil},
	} {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", mode.name, seed), func(t *testing.T) {
				t.Parallel()
				randomRun(t, seed, mode.minCap, mode.placer)
			})
		}
	}
}

func randomRun(t *testing.T, seed uint64, minCap int, placer Placer) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var tr *tree
	if placer == nil {
		placer = adversary{offered: func(id string, cands []Candidate) {
			for _, c := range cands {
				if c.ID == id || c.Children >= c.Capacity {
					t.Fatalf("seed %d: offered illegal candidate %+v to %s", seed, c, id)
				}
				if !c.Origin && isDescendant(tr, tr.nodes[c.ID], id) {
					t.Fatalf("seed %d: offered descendant %s to %s", seed, c.ID, id)
				}
			}
		}}
	}
	tr = newTree(NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, 1+rng.IntN(4), placer)
	const interval = time.Second
	now := t0
	live := func() []string {
		ids := sortedKeys(func() map[string]struct{} {
			m := map[string]struct{}{}
			for k := range tr.nodes {
				if k != rootKey {
					m[k] = struct{}{}
				}
			}
			return m
		}())
		return ids
	}
	joins, refused, waited := 0, 0, 0
	for step := 0; step < 1000; step++ {
		now = now.Add(time.Duration(rng.IntN(200)) * time.Millisecond)
		ids := live()
		op := rng.IntN(100)
		switch {
		case op < 45 || len(ids) == 0: // join, sometimes re-join
			id := nid(1 + rng.IntN(400))
			capacity := minCap + rng.IntN(5-minCap)
			cands, _ := tr.candidates(id)
			_, exists := tr.nodes[id]
			_, err := tr.join(id, "127.0.0.1:1", capacity, now)
			joins++
			switch {
			case errors.Is(err, ErrNoCapacity):
				refused++
				if minCap > 0 {
					t.Fatalf("seed %d step %d: join refused although every peer forwards", seed, step)
				}
				if len(cands) > 0 && !exists {
					t.Fatalf("seed %d step %d: join refused with %d free candidates", seed, step, len(cands))
				}
				if capacity > 0 && !exists {
					tr.walk(func(k string, n *node, _ int) {
						if k != rootKey && n.capacity == 0 {
							t.Fatalf("seed %d step %d: forwarding peer refused while leaf %s holds a slot", seed, step, k)
						}
					})
				}
			case err != nil:
				t.Fatalf("seed %d step %d: join: %v", seed, step, err)
			}
		case op < 60:
			tr.leave(ids[rng.IntN(len(ids))], now)
		case op < 80: // most peers heartbeat
			for _, id := range ids {
				if rng.IntN(10) < 8 {
					tr.heartbeat(id, PeerStats{}, now)
				}
			}
		case op < 90:
			tr.expire(now, 3*interval)
		case op < 98:
			id := ids[rng.IntN(len(ids))]
			lost := tr.info(tr.nodes[id].parent).ID
			if lost == "" || rng.IntN(5) == 0 {
				lost = nid(rng.IntN(400)) // stale or wrong report
			}
			if lost == id {
				continue
			}
			if _, _, err := tr.parentLost(id, lost, now, interval); err != nil && !errors.Is(err, ErrNoCapacity) {
				t.Fatalf("seed %d step %d: parentLost: %v", seed, step, err)
			}
		default: // origin restart with a new capacity
			tr.setOrigin(NodeInfo{ID: nid(0), Addr: "127.0.0.1:9001"}, 1+rng.IntN(4), now)
		}
		checkTree(t, tr)
		if len(tr.detached) > 0 {
			waited++
			if minCap > 0 {
				t.Fatalf("seed %d step %d: detached subtrees although every peer forwards", seed, step)
			}
		}
	}
	if joins < 350 {
		t.Fatalf("only %d joins", joins)
	}
	t.Logf("seed %d: %d joins, %d refused, %d steps with waiting subtrees, %d peers at the end", seed, joins, refused, waited, tr.peers())
}

// isDescendant reports whether n is id or lies below it.
func isDescendant(tr *tree, n *node, id string) bool {
	for hops := 0; n != nil && hops <= len(tr.nodes); hops++ {
		if n.id == id {
			return true
		}
		if n.parent == "" {
			return false
		}
		n = tr.nodes[n.parent]
	}
	return false
}

// checkTree fails t unless tr's invariants hold: parent and child links
// agree, no cycles, every peer either reaches the origin or sits in a
// detached subtree, detached subtrees exist only while no attached node
// has a free slot, and no node is above its capacity.
func checkTree(t *testing.T, tr *tree) {
	t.Helper()
	root := tr.root()
	if root.parent != "" {
		t.Fatalf("origin has a parent %q", root.parent)
	}
	for k, n := range tr.nodes {
		if len(n.children) > n.capacity {
			t.Fatalf("%s has %d children, capacity %d", n.id, len(n.children), n.capacity)
		}
		for c := range n.children {
			cn, ok := tr.nodes[c]
			if !ok || cn.parent != k {
				t.Fatalf("%s lists child %s whose parent is not it", n.id, c)
			}
		}
		if k == rootKey {
			continue
		}
		if n.id != k {
			t.Fatalf("node keyed %s has ID %s", k, n.id)
		}
		_, det := tr.detached[k]
		if (n.parent == "") != det {
			t.Fatalf("%s: parent %q but detached=%v", k, n.parent, det)
		}
		if n.parent != "" {
			p, ok := tr.nodes[n.parent]
			if !ok {
				t.Fatalf("%s has unknown parent %s", k, n.parent)
			}
			if _, ok := p.children[k]; !ok {
				t.Fatalf("%s's parent %s does not list it", k, n.parent)
			}
		}
		// Follow parents: must end at the origin or a detached root.
		cur, hops := n, 0
		for cur.parent != "" {
			cur = tr.nodes[cur.parent]
			if hops++; hops > len(tr.nodes) {
				t.Fatalf("cycle through %s", k)
			}
		}
		if cur != root {
			if _, ok := tr.detached[keyOf(tr, cur)]; !ok {
				t.Fatalf("%s hangs under %s, which is neither the origin nor detached", k, cur.id)
			}
		}
	}
	for k := range tr.detached {
		if _, ok := tr.nodes[k]; !ok {
			t.Fatalf("detached set holds removed %s", k)
		}
	}
	attached := 0
	tr.walk(func(string, *node, int) { attached++ })
	if len(tr.detached) == 0 && attached != len(tr.nodes) {
		t.Fatalf("%d of %d nodes reachable from the origin, none detached", attached, len(tr.nodes))
	}
	if len(tr.detached) > 0 {
		if cands, _ := tr.candidates(""); len(cands) > 0 {
			t.Fatalf("%d subtrees wait although %s has a free slot", len(tr.detached), cands[0].ID)
		}
	}
	// The view agrees: depth 0 exactly for nodes not reachable.
	unreached := 0
	for _, v := range tr.view() {
		if v.Depth == 0 {
			unreached++
		}
		if v.Children == nil {
			t.Fatalf("view: nil children for %s", v.ID)
		}
	}
	if unreached != len(tr.nodes)-attached {
		t.Fatalf("view: %d nodes at depth 0, want %d", unreached, len(tr.nodes)-attached)
	}
}

func keyOf(tr *tree, n *node) string {
	if n == tr.root() {
		return rootKey
	}
	return n.id
}
