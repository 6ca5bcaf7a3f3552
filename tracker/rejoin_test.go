package tracker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// swarmOf builds a tracker with a fake clock, registers "live" with the
// given origin capacity and joins n peers (capacity 4, a mix of ISPs and
// NATs), then runs rounds until the trees settle.
func swarmOf(t *testing.T, n, originCap int) (*Tracker, *clock, RegisterRequest) {
	t.Helper()
	c := &clock{now: t0}
	tr, err := New(Config{HeartbeatInterval: time.Second, Now: c.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	reg := RegisterRequest{Channel: channelInfo("live", NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, 1), Capacity: originCap}
	if _, err := tr.Register(reg); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := tr.Join("live", rejoinReq(i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		c.Advance(time.Second)
		for i := 1; i <= n; i++ {
			if _, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)}); err != nil {
				t.Fatal(err)
			}
		}
		tr.Round()
	}
	return tr, c, reg
}

func rejoinReq(i int) JoinRequest {
	p := peer(i)
	nats := []string{"open", "fullcone", "portrestricted", "symmetric", "restricted"}
	return JoinRequest{
		ID: p.ID, Addr: p.Addr, Capacity: 6 - i%3, NAT: nats[i%len(nats)],
		ISP: fmt.Sprintf("isp%d", i%3), UploadBPS: int64(6_000_000 + 1_000_000*(i%4)),
	}
}

// placeOf is the Current a peer reports: its parent and depth per
// stripe, as the tree view shows them (what the peers hold).
func placeOf(v TreeView, id string) *CurrentPlace { return placesOf(v)[id] }

// placesOf is placeOf for every node of the view.
func placesOf(v TreeView) map[string]*CurrentPlace {
	addr := map[string]string{v.Origin.ID: v.Origin.Addr}
	for _, n := range v.Nodes {
		addr[n.ID] = n.Addr
	}
	out := make(map[string]*CurrentPlace, len(v.Nodes))
	for _, n := range v.Nodes {
		cp := &CurrentPlace{Version: PlaceVersion}
		for _, st := range n.Stripes {
			cs := CurrentStripe{Depth: st.Depth}
			if st.Parent != "" {
				cs.Parent = NodeInfo{ID: st.Parent, Addr: addr[st.Parent]}
			}
			cp.Stripes = append(cp.Stripes, cs)
		}
		out[n.ID] = cp
	}
	return out
}

// parents maps each node to its parent per stripe.
func parents(v TreeView) map[string][]string {
	out := map[string][]string{}
	for _, n := range v.Nodes {
		for _, st := range n.Stripes {
			out[n.ID] = append(out[n.ID], st.Parent)
		}
	}
	return out
}

// Issue 6: a restarted tracker rebuilds its whole state from the peers'
// rejoins: with every peer reporting its current parents, the trees after
// the seed round equal the trees the peers hold, edge for edge; while the
// window is open each rejoining peer is told the place it holds, even
// under a parent that has not rejoined yet.
func TestRestartRebuildsTreesFromRejoins(t *testing.T) {
	const n = 60
	old, _, reg := swarmOf(t, n, 2)
	before, err := old.Tree("live")
	if err != nil {
		t.Fatal(err)
	}
	want := parents(before)
	edges := 0
	for _, ps := range want {
		for _, p := range ps {
			if p != "" {
				edges++
			}
		}
	}
	if edges < n*4*9/10 {
		t.Fatalf("only %d of %d stripes placed before the restart", edges, n*4)
	}

	// The restart: a new, empty tracker; the origin registers again and
	// the peers rejoin in reverse order (children before their parents).
	c := &clock{now: t0.Add(time.Hour)}
	tr, err := New(Config{HeartbeatInterval: time.Second, Now: c.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Register(reg); err != nil {
		t.Fatal(err)
	}
	for i := n; i >= 1; i-- {
		req := rejoinReq(i)
		req.Current = placeOf(before, req.ID)
		resp, err := tr.Join("live", req)
		if err != nil {
			t.Fatal(err)
		}
		for s, a := range resp.Stripes {
			if a.Parent.ID != req.Current.Stripes[s].Parent.ID || a.Parent.Addr != req.Current.Stripes[s].Parent.Addr {
				t.Fatalf("peer %d stripe %d: told %+v while the window is open, holds %+v", i, s, a.Parent, req.Current.Stripes[s].Parent)
			}
		}
	}
	c.Advance(2 * time.Second)
	tr.Round()
	after, err := tr.Tree("live")
	if err != nil {
		t.Fatal(err)
	}
	got := parents(after)
	diff := 0
	for id, ps := range want {
		for s, p := range ps {
			if got[id][s] != p {
				diff++
				t.Errorf("%s stripe %d: parent %q after the restart, %q before", id[:6], s, got[id][s], p)
			}
		}
	}
	ps, _ := tr.Placement("live")
	t.Logf("%d edges, %d differ; placement %+v", edges, diff, ps)
	if ps.RejoinLinks != edges || ps.RejoinKept != edges {
		t.Errorf("rejoin counters: %d links reported, %d kept; want %d and %d", ps.RejoinLinks, ps.RejoinKept, edges, edges)
	}
	// The peers' answers agree with the view.
	for i := 1; i <= n; i++ {
		hb, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)})
		if err != nil {
			t.Fatal(err)
		}
		for s, a := range hb.Stripes {
			if p := got[nid(i)][s]; a.Parent.ID != p {
				t.Errorf("peer %d stripe %d: heartbeat names %q, view %q", i, s, a.Parent.ID, p)
			}
		}
	}
}

// Reported links that are no longer valid are dropped and those stripes
// placed afresh: a parent that never rejoined, a parent over its
// capacity, a cycle. An old peer (no Current) is placed afresh, and a
// report of a later version is ignored, not refused.
func TestRejoinDropsInvalidLinks(t *testing.T) {
	const n = 30
	old, _, reg := swarmOf(t, n, 2)
	before, _ := old.Tree("live")
	c := &clock{now: t0.Add(time.Hour)}
	tr, err := New(Config{HeartbeatInterval: time.Second, Now: c.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Register(reg); err != nil {
		t.Fatal(err)
	}
	gone := nid(n) // never rejoins
	// Two peers claim each other as stripe 0's parent.
	a, b := nid(1), nid(2)
	for i := 1; i < n; i++ {
		req := rejoinReq(i)
		req.Current = placeOf(before, req.ID)
		switch req.ID {
		case a:
			req.Current.Stripes[0] = CurrentStripe{Parent: peer(2), Depth: 3}
		case b:
			req.Current.Stripes[0] = CurrentStripe{Parent: peer(1), Depth: 3}
		case nid(3):
			req.Current = nil // an older peer
		case nid(4):
			req.Current.Version = PlaceVersion + 1 // a newer one
			req.Current.Stripes = nil
		}
		if _, err := tr.Join("live", req); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(2 * time.Second)
	tr.Round()
	after, _ := tr.Tree("live")
	got := parents(after)
	if got[a][0] == b && got[b][0] == a {
		t.Error("the reported cycle was kept")
	}
	for id, ps := range got {
		for s, p := range ps {
			if p == gone {
				t.Errorf("%s stripe %d kept the parent that never rejoined", id[:6], s)
			}
		}
	}
	if _, ok := got[nid(3)]; !ok {
		t.Error("the peer without Current was not placed")
	}
	if err := checkTrees(after); err != nil {
		t.Error(err)
	}
	ps, _ := tr.Placement("live")
	if ps.RejoinKept == 0 || ps.RejoinKept >= ps.RejoinLinks {
		t.Errorf("kept %d of %d reported links: want some kept and some dropped", ps.RejoinKept, ps.RejoinLinks)
	}
}

// checkTrees reports a cycle or a parent unknown to the view.
func checkTrees(v TreeView) error {
	par := parents(v)
	for id, ps := range par {
		for s := range ps {
			seen := map[string]bool{}
			for cur := id; cur != "" && cur != v.Origin.ID; cur = par[cur][s] {
				if seen[cur] {
					return fmt.Errorf("stripe %d: cycle through %s", s, cur[:6])
				}
				seen[cur] = true
				if _, ok := par[cur]; !ok {
					return fmt.Errorf("stripe %d: parent %s unknown", s, cur[:6])
				}
			}
		}
	}
	return nil
}

// Bad reports are refused with a clear error and change nothing.
func TestRejoinBadReports(t *testing.T) {
	e := newEnv(t, 2)
	good := func() JoinRequest {
		r := JoinRequest{ID: nid(1), Addr: peer(1).Addr, Capacity: 2,
			Current: &CurrentPlace{Version: PlaceVersion, Stripes: []CurrentStripe{{Parent: e.origin, Depth: 1}, {}, {}, {}}}}
		return r
	}
	for name, mut := range map[string]func(*JoinRequest){
		"self parent":   func(r *JoinRequest) { r.Current.Stripes[1].Parent = peer(1) },
		"bad parent id": func(r *JoinRequest) { r.Current.Stripes[1].Parent = NodeInfo{ID: "xyz", Addr: "1.2.3.4:5"} },
		"bad addr":      func(r *JoinRequest) { r.Current.Stripes[1].Parent = NodeInfo{ID: nid(7), Addr: "nowhere"} },
		"depth":         func(r *JoinRequest) { r.Current.Stripes[2].Depth = -1 },
		"version 0":     func(r *JoinRequest) { r.Current.Version = 0 },
		"too many":      func(r *JoinRequest) { r.Current.Stripes = make([]CurrentStripe, MaxStripes+1) },
	} {
		r := good()
		mut(&r)
		_, err := e.cl.Join(context.Background(), "live", r)
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: err %v, want a bad request", name, err)
		}
	}
	if v, _ := e.tr.Tree("live"); len(v.Nodes) != 0 {
		t.Fatalf("refused joins left %d nodes", len(v.Nodes))
	}
	if _, err := e.cl.Join(context.Background(), "live", good()); err != nil {
		t.Fatalf("a good report: %v", err)
	}
}

// After the rejoin window a rejoining peer's links are kept as switches
// when its parent is known (a tracker that expired the peer).
func TestLateRejoinKeepsLinks(t *testing.T) {
	tr, c, _ := swarmOf(t, 20, 2)
	v, _ := tr.Tree("live")
	// The deepest peer with a peer parent on some stripe.
	var id string
	for _, nd := range v.Nodes {
		if nd.Depth > 1 {
			id = nd.ID
		}
	}
	if id == "" {
		t.Fatal("no peer below another")
	}
	cur := placeOf(v, id)
	if err := tr.Leave("live", LeaveRequest{ID: id}); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	var req JoinRequest
	for i := 1; i <= 20; i++ {
		if nid(i) == id {
			req = rejoinReq(i)
		}
	}
	req.Current = cur
	resp, err := tr.Join("live", req)
	if err != nil {
		t.Fatal(err)
	}
	for s, a := range resp.Stripes {
		if a.Parent.ID != cur.Stripes[s].Parent.ID {
			t.Errorf("stripe %d: placed under %q, held %q", s, a.Parent.ID, cur.Stripes[s].Parent.ID)
		}
	}
}

// The baseline placer cannot seed: the held rejoins are then placed as
// joins with their links as switches, and every peer gets its place.
func TestRejoinBaselinePlacer(t *testing.T) {
	const n = 20
	old, _, reg := swarmOf(t, n, 2)
	before, _ := old.Tree("live")
	c := &clock{now: t0.Add(time.Hour)}
	tr, err := New(Config{HeartbeatInterval: time.Second, Now: c.Now, Logger: testLogger(t), Placer: PlacerBaseline, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Register(reg); err != nil {
		t.Fatal(err)
	}
	places := placesOf(before)
	for i := 1; i <= n; i++ {
		req := rejoinReq(i)
		req.Current = places[req.ID]
		if _, err := tr.Join("live", req); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(2 * time.Second)
	tr.Round()
	tr.Round()
	after, _ := tr.Tree("live")
	if len(after.Nodes) != n {
		t.Fatalf("%d peers after the seed round, want %d", len(after.Nodes), n)
	}
	if err := checkTrees(after); err != nil {
		t.Error(err)
	}
	kept := 0
	want := parents(before)
	for id, ps := range parents(after) {
		for s, p := range ps {
			if p != "" && p == want[id][s] {
				kept++
			}
		}
	}
	if kept == 0 {
		t.Error("the baseline placer kept none of the reported links")
	}
	t.Logf("baseline: %d links kept as switches", kept)
}

// Config.RejoinWindow (swarmtv tracker --rejoin-window) sets how long a
// restarted tracker holds rejoins before its seed round: with 5 s, a
// round 2 s after the restart still holds them and one at 5 s seeds
// them; too long a window is refused.
func TestRejoinWindowConfig(t *testing.T) {
	const n = 20
	old, _, reg := swarmOf(t, n, 2)
	before, err := old.Tree("live")
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: t0.Add(time.Hour)}
	tr, err := New(Config{HeartbeatInterval: time.Second, RejoinWindow: 5 * time.Second, Now: c.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Register(reg); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		req := rejoinReq(i)
		req.Current = placeOf(before, req.ID)
		if _, err := tr.Join("live", req); err != nil {
			t.Fatal(err)
		}
	}
	beat := func(secs int) {
		for range secs {
			c.Advance(time.Second)
			for i := 1; i <= n; i++ {
				if _, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)}); err != nil {
					t.Fatal(err)
				}
			}
			tr.Round()
		}
	}
	beat(2)
	if ps, _ := tr.Placement("live"); ps.RejoinLinks != 0 {
		t.Errorf("2 s into a 5 s window: %d links seeded, want the rejoins still held", ps.RejoinLinks)
	}
	beat(3)
	if ps, _ := tr.Placement("live"); ps.RejoinLinks == 0 || ps.RejoinKept != ps.RejoinLinks {
		t.Errorf("at the end of the window: %d links reported, %d kept; want all seeded and kept", ps.RejoinLinks, ps.RejoinKept)
	}
	if _, err := New(Config{RejoinWindow: 2 * time.Minute}); err == nil {
		t.Error("a 2 min rejoin window was accepted")
	}
}
