package swarm

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// meshMsg is the mesh part of a msg: at most one of its fields is set.
type meshMsg struct {
	pulled     bool // raw answers a pull
	bm         *wire.BufferMap
	alive      *wire.Alive
	mapRequest bool
}

// meshIn delivers a mesh message; it reports false for a plain chunk.
func (tn *testNet) meshIn(to *Node, m msg) bool {
	switch {
	case m.mesh.pulled:
		_ = to.HandlePulled(tn.now, m.from, m.raw)
	case m.mesh.bm != nil:
		_ = to.HandleMap(tn.now, m.from, *m.mesh.bm)
	case m.mesh.alive != nil:
		to.HandleAlive(tn.now, m.from, *m.mesh.alive)
	case m.mesh.mapRequest:
		_ = to.HandleMapRequest(m.from)
	default:
		return false
	}
	return true
}

// meshOut carries a node's pulls (answered by the partner from its
// window), map requests, maps and Alives.
func (tn *testNet) meshOut(id NodeID, r Ready) {
	link := func(from, to NodeID) (time.Duration, bool) {
		if tn.meshLink == nil {
			return 0, true
		}
		return tn.meshLink(from, to)
	}
	for _, p := range r.Pulls {
		d, ok := link(p.To, id)
		partner := tn.nodes[p.To]
		if !ok || partner == nil {
			continue
		}
		raw, held := partner.Lookup(p.ID)
		if held && tn.pullAnswer != nil {
			if raw = tn.pullAnswer(p.To, p.ID, raw); raw == nil {
				continue // never answered
			}
		}
		tn.send(msg{at: tn.now.Add(d), from: p.To, to: id, raw: raw, missing: !held, id: p.ID, mesh: meshMsg{pulled: held}})
	}
	for _, q := range r.MapRequests {
		if d, ok := link(id, q); ok {
			tn.send(msg{at: tn.now.Add(d), from: id, to: q, mesh: meshMsg{mapRequest: true}})
		}
	}
	for _, ms := range r.Maps {
		if d, ok := link(id, ms.To); ok {
			bm := ms.Map
			tn.send(msg{at: tn.now.Add(d), from: id, to: ms.To, mesh: meshMsg{bm: &bm}})
		}
	}
	for _, a := range r.Alives {
		if d, ok := link(id, a.To); ok {
			al := a.Alive
			tn.send(msg{at: tn.now.Add(d), from: id, to: a.To, mesh: meshMsg{alive: &al}})
		}
	}
	tn.dropped[id] = append(tn.dropped[id], r.DropPartners...)
}

// partner makes q a partner of c.
func (tn *testNet) partner(c, q NodeID) {
	tn.t.Helper()
	tn.nodes[c].SetPartners(tn.now, append(tn.nodes[c].Partners(), q))
	if err := tn.nodes[q].AddWatcher(tn.now, c); err != nil {
		tn.t.Fatal(err)
	}
	tn.pump()
}

// meshNet is origin → P → C and origin → Q; with partner set, Q is C's
// partner. run runs it for d; crash kills P (it sends nothing more, and C
// does not switch to another parent).
func meshNet(t *testing.T, partner bool, mutate ...func(*Config)) *testNet {
	tn := newTestNet(t, 4)
	cfg := testConfig(tn.st)
	cfg.ParentTimeout = 500 * time.Millisecond
	for _, m := range mutate {
		m(&cfg)
	}
	tn.viewer("P", "origin", cfg)
	tn.viewer("Q", "origin", cfg)
	tn.viewer("C", "P", cfg)
	tn.fetchDelay = 20 * time.Millisecond
	tn.link = func(from, to NodeID, id wire.ID) []time.Duration { return []time.Duration{5 * time.Millisecond} }
	tn.meshLink = func(from, to NodeID) (time.Duration, bool) { return 5 * time.Millisecond, true }
	if partner {
		tn.partner("C", "Q")
	}
	return tn
}

// crash removes a node: it sends and answers nothing more.
func (tn *testNet) crash(id NodeID) {
	delete(tn.nodes, id)
	tn.order = slices.DeleteFunc(tn.order, func(o NodeID) bool { return o == id })
}

// stripeFetches counts a node's origin fetches of stripe s.
func stripeFetches(ids []wire.ID, s uint8) int {
	n := 0
	for _, id := range ids {
		if id.Stripe == s && id.Seq > 0 {
			n++
		}
	}
	return n
}

// DESIGN.md "Push, then pull, then origin": when its parent dies, a node
// pulls what the tree no longer delivers from a partner that holds it;
// the origin is asked only when no partner can help.
func TestPullFromPartner(t *testing.T) {
	without := meshNet(t, false)
	without.run(2*time.Second, 10*time.Millisecond)
	without.crash("P")
	without.run(4*time.Second, 10*time.Millisecond)
	base := stripeFetches(without.fetches["C"], 1)

	tn := meshNet(t, true)
	tn.run(2*time.Second, 10*time.Millisecond)
	c := tn.nodes["C"]
	// While its parent delivers, C has nothing to pull and asks no map.
	if asked := c.Stats().MapRequests; asked != 0 {
		t.Fatalf("C asked for %d maps with a healthy parent", asked)
	}
	tn.crash("P")
	tn.run(4*time.Second, 10*time.Millisecond)
	st := c.Stats()
	checkPlayed(t, tn.st, tn.played["C"])
	if len(tn.played["C"]) < 40 || st.LostSlices != 0 || !slices.ContainsFunc(tn.lost["C"], func(l Lost) bool { return l.Parent == "P" }) {
		t.Fatalf("C played %d slices, lost %d", len(tn.played["C"]), st.LostSlices)
	}
	got := stripeFetches(tn.fetches["C"], 1)
	t.Logf("stripe 1 from the origin: %d without a partner, %d with; pulls %d, pulled %d, misses %d, maps asked by C %d, sent by Q %d",
		base, got, st.Pulls, st.Pulled, st.PullMisses, st.MapRequests, tn.nodes["Q"].Stats().MapsSent)
	if base < 40 {
		t.Fatalf("without a partner C fetched only %d chunks of stripe 1 after its parent died", base)
	}
	if st.Pulled < uint64(base)*3/4 || got > base/4 {
		t.Fatalf("with a partner: pulled %d, fetched %d of stripe 1 (%d without)", st.Pulled, got, base)
	}
	if st.PartnersDropped != 0 || len(tn.dropped["C"]) != 0 {
		t.Fatalf("an honest partner was dropped: %v", tn.dropped["C"])
	}
	// Q sent its map when C took it as a partner, then once per request
	// (C asks when a chunk to pull is not on its partners' maps; once Q's
	// map shows the stripes flowing, C predicts the rest from it): a few
	// maps, where one every 250 ms came to 24 in these 6 s.
	if ms := tn.nodes["Q"].Stats().MapsSent; ms != 1+st.MapRequests || ms > 6 {
		t.Fatalf("Q sent %d maps, C asked for %d", ms, st.MapRequests)
	}
}

// A partner that never answers is dropped after maxPartnerMisses pulls;
// the origin still covers the chunks.
func TestSilentPartnerDropped(t *testing.T) {
	tn := meshNet(t, true)
	silent := false // from 2 s on, Q answers no pull (its maps still come)
	tn.pullAnswer = func(from NodeID, id wire.ID, raw []byte) []byte {
		if silent {
			return nil
		}
		return raw
	}
	tn.run(2*time.Second, 10*time.Millisecond)
	silent = true
	tn.crash("P")
	tn.run(4*time.Second, 10*time.Millisecond)
	c := tn.nodes["C"]
	if !slices.Contains(tn.dropped["C"], NodeID("Q")) || slices.Contains(c.Partners(), "Q") {
		t.Fatalf("silent partner kept: dropped %v, partners %v", tn.dropped["C"], c.Partners())
	}
	if st := c.Stats(); st.PartnersDropped != 1 || st.LostSlices != 0 {
		t.Fatalf("partners dropped %d, slices lost %d", st.PartnersDropped, st.LostSlices)
	}
	checkPlayed(t, tn.st, tn.played["C"])
}

// A partner answering a pull with a chunk that fails verification is cut
// off and dropped; chunks from partners are never trusted unchecked.
func TestBadPartnerCutOff(t *testing.T) {
	tn := meshNet(t, true)
	tn.pullAnswer = func(from NodeID, id wire.ID, raw []byte) []byte {
		bad := slices.Clone(raw)
		bad[len(bad)-1] ^= 1 // the signature no longer verifies
		return bad
	}
	tn.run(2*time.Second, 10*time.Millisecond)
	tn.crash("P")
	tn.run(2*time.Second, 10*time.Millisecond)
	c := tn.nodes["C"]
	if !slices.Contains(tn.cutoff["C"], NodeID("Q")) || !slices.Contains(tn.dropped["C"], NodeID("Q")) {
		t.Fatalf("bad partner: cut off %v, dropped %v", tn.cutoff["C"], tn.dropped["C"])
	}
	if st := c.Stats(); st.BadChunks == 0 || st.LostSlices != 0 {
		t.Fatalf("bad chunks %d, lost slices %d", st.BadChunks, st.LostSlices)
	}
	checkPlayed(t, tn.st, tn.played["C"])
	if len(tn.played["C"]) < 30 {
		t.Fatalf("C played %d slices", len(tn.played["C"]))
	}
}

func TestBufferMapAndWatchers(t *testing.T) {
	tn := newTestNet(t, 4)
	cfg := testConfig(tn.st)
	cfg.MaxWatchers = 2
	q := tn.viewer("Q", "origin", cfg)
	tn.run(5*time.Second, 10*time.Millisecond)
	bm := q.bufferMap()
	last, ok := bm.Last()
	if !ok || len(bm.Held) != mapSlices || last != q.newestSeq {
		t.Fatalf("map: first %d, %d slices, newest %d", bm.First, len(bm.Held), q.newestSeq)
	}
	for seq := bm.First; seq <= last; seq++ {
		for s := range 4 {
			if bm.Has(seq, s) != q.holds(wire.ID{Seq: seq, Stripe: uint8(s)}) {
				t.Fatalf("map of %d/%d disagrees with the window", seq, s)
			}
		}
	}
	for _, w := range []NodeID{"w1", "w2"} {
		if err := q.AddWatcher(tn.now, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.AddWatcher(tn.now, "w3"); !errors.Is(err, ErrFull) {
		t.Fatalf("third watcher over MaxWatchers 2: %v", err)
	}
	r := q.Ready()
	if len(r.Maps) != 2 {
		t.Fatalf("new watchers got %d maps at once, want 2", len(r.Maps))
	}
	q.RemoveWatcher("w1")
	if !slices.Equal(q.Watchers(), []NodeID{"w2"}) {
		t.Fatalf("watchers %v", q.Watchers())
	}
	// Later maps go out on request only, to a watcher.
	tn.run(time.Second, 10*time.Millisecond)
	if r := q.Ready(); len(r.Maps) != 0 {
		t.Fatalf("%d maps unasked", len(r.Maps))
	}
	if err := q.HandleMapRequest("w1"); !errors.Is(err, ErrNotWatcher) {
		t.Fatalf("map request from a removed watcher: %v", err)
	}
	if err := q.HandleMapRequest("w2"); err != nil {
		t.Fatal(err)
	}
	if r := q.Ready(); len(r.Maps) != 1 || r.Maps[0].To != "w2" || r.Maps[0].Map.First != q.bufferMap().First {
		t.Fatalf("map request answered with %+v", r.Maps)
	}
	// A map that does not fit the channel drops its partner.
	c := tn.viewer("C", "origin", testConfig(tn.st))
	c.SetPartners(tn.now, []NodeID{"Q", "Q", "C2", ""})
	if !slices.Equal(c.Partners(), []NodeID{"Q", "C2"}) {
		t.Fatalf("partners %v", c.Partners())
	}
	if err := c.HandleMap(tn.now, "Q", wire.BufferMap{Stripes: 3}); !errors.Is(err, ErrBadMap) {
		t.Fatalf("map of 3 stripes: %v", err)
	}
	if err := c.HandleMap(tn.now, "X", wire.BufferMap{Stripes: 4}); !errors.Is(err, ErrNotPartner) {
		t.Fatalf("map from a stranger: %v", err)
	}
	if r := c.Ready(); !slices.Equal(r.DropPartners, []NodeID{"Q"}) || !slices.Equal(c.Partners(), []NodeID{"C2"}) {
		t.Fatalf("bad map: dropped %v, partners %v", r.DropPartners, c.Partners())
	}
}

// starveNet is origin → P → C with short timeouts; while starve is set
// nothing reaches P (pushes or fetch answers).
func starveNet(t *testing.T, alive time.Duration) (tn *testNet, starve *bool) {
	tn = newTestNet(t, 4)
	cfg := testConfig(tn.st)
	cfg.ParentTimeout = 300 * time.Millisecond
	cfg.AliveInterval = alive
	tn.viewer("P", "origin", cfg)
	tn.viewer("C", "P", cfg)
	starve = new(bool)
	tn.link = func(from, to NodeID, id wire.ID) []time.Duration {
		if *starve && to == "P" {
			return nil
		}
		return []time.Duration{5 * time.Millisecond}
	}
	tn.fetchLink = func(to NodeID, id wire.ID) []time.Duration {
		if *starve && to == "P" {
			return nil
		}
		return []time.Duration{20 * time.Millisecond}
	}
	return tn, starve
}

// ROADMAP #4: with a short ParentTimeout, a parent starved by its own
// upstream went quiet and its children left it. Its Alives keep them;
// a dead parent is still lost within ParentTimeout.
func TestAliveKeepsStarvedParent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alive time.Duration
		lost  bool
	}{{"alive", 100 * time.Millisecond, false}, {"no alive", -1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			tn, starve := starveNet(t, tc.alive)
			tn.run(3*time.Second, 10*time.Millisecond)
			*starve = true
			tn.run(500*time.Millisecond, 10*time.Millisecond)
			*starve = false
			tn.run(time.Second, 10*time.Millisecond)
			lost := slices.ContainsFunc(tn.lost["C"], func(l Lost) bool { return l.Parent == "P" })
			if lost != tc.lost {
				t.Fatalf("C lost its starved parent: %v, want %v (alives sent %d)", lost, tc.lost, tn.nodes["P"].Stats().AlivesSent)
			}
			if tc.alive > 0 && tn.nodes["C"].Stats().AlivesIn == 0 {
				t.Fatal("no Alive reached C")
			}
		})
	}
	// A parent stuck for longer than starveLimit is left although its
	// Alives go on: else two nodes that took each other as parents (a
	// cycle, both starved) would keep each other forever.
	t.Run("stuck", func(t *testing.T) {
		tn, starve := starveNet(t, 100*time.Millisecond)
		tn.run(3*time.Second, 10*time.Millisecond)
		*starve = true
		tn.run(2*time.Second, 10*time.Millisecond)
		if !slices.ContainsFunc(tn.lost["C"], func(l Lost) bool { return l.Parent == "P" }) {
			t.Fatalf("C kept a parent stuck for 2 s (alives in %d)", tn.nodes["C"].Stats().AlivesIn)
		}
	})
	t.Run("dead", func(t *testing.T) {
		tn, _ := starveNet(t, 100*time.Millisecond)
		tn.run(3*time.Second, 10*time.Millisecond)
		delete(tn.nodes, "P") // crashed: sends nothing more
		tn.order = slices.DeleteFunc(tn.order, func(id NodeID) bool { return id == "P" })
		tn.run(time.Second, 10*time.Millisecond)
		i := slices.IndexFunc(tn.lost["C"], func(l Lost) bool { return l.Parent == "P" })
		if i < 0 {
			t.Fatal("C never lost its dead parent within a second")
		}
	})
}

// slowStripeNet is meshNet whose parent P, from 2 s on, delivers its
// chunks of stripe 1 to C only after delay: a congested parent, alive
// (its other stripes come on time) but late on one stripe.
func slowStripeNet(t *testing.T, partner bool, delay time.Duration, mutate ...func(*Config)) *testNet {
	tn := meshNet(t, partner, mutate...)
	tn.link = func(from, to NodeID, id wire.ID) []time.Duration {
		if from == "P" && to == "C" && id.Stripe == 1 && !tn.now.Before(epoch.Add(2*time.Second)) {
			return []time.Duration{delay}
		}
		return []time.Duration{5 * time.Millisecond}
	}
	return tn
}

// DESIGN.md "Push, then pull, then origin": a chunk a live parent has not
// delivered by the origin's margin is pulled from a partner whose map
// shows it, and the origin is asked only if that pull fails — the
// origin's fetch budget is the swarm's scarcest resource. Before, only a
// stripe without a parent pulled, and the origin was asked for every
// chunk a slow parent delivered late.
func TestPullLateChunkFromPartner(t *testing.T) {
	const delay = 900 * time.Millisecond // past the margin, before the slice is due
	without := slowStripeNet(t, false, delay)
	without.run(6*time.Second, 10*time.Millisecond)
	base := stripeFetches(without.fetches["C"], 1)

	tn := slowStripeNet(t, true, delay)
	tn.run(6*time.Second, 10*time.Millisecond)
	c := tn.nodes["C"]
	st := c.Stats()
	checkPlayed(t, tn.st, tn.played["C"])
	got := stripeFetches(tn.fetches["C"], 1)
	t.Logf("stripe 1 from the origin: %d without a partner, %d with; pulls %d, pulled %d, misses %d", base, got, st.Pulls, st.Pulled, st.PullMisses)
	if slices.ContainsFunc(tn.lost["C"], func(l Lost) bool { return l.Parent == "P" }) {
		t.Fatal("C left its slow but live parent")
	}
	if st.LostSlices != 0 || st.Stalls != 0 {
		t.Fatalf("C lost %d slices, stalled %d times", st.LostSlices, st.Stalls)
	}
	if base < 30 {
		t.Fatalf("without a partner C fetched only %d late chunks of stripe 1", base)
	}
	if st.Pulled < uint64(base)*3/4 || got > base/4 {
		t.Fatalf("with a partner: pulled %d, fetched %d of stripe 1 (%d without)", st.Pulled, got, base)
	}
	// Only late chunks are pulled: about one per slice of stripe 1 after
	// 2 s, none of the stripes P delivers on time.
	if st.Pulls > uint64(base)+10 {
		t.Fatalf("%d pulls for %d late chunks", st.Pulls, base)
	}
}

// A live parent's stripe that flows late — each chunk after the
// origin's FetchMargin but before PushedMargin, one per slice — is
// neither pulled nor fetched: its chunks are on their way (see
// pushing). With PushedMargin at FetchMargin each is pulled.
func TestNoPullWhileStripeFlows(t *testing.T) {
	const delay = 650 * time.Millisecond // due in 1 s: pulled at 500 ms, or at 700 ms while it flows
	off := slowStripeNet(t, true, delay, func(c *Config) { c.PushedMargin = -1 })
	off.run(6*time.Second, 10*time.Millisecond)
	tn := slowStripeNet(t, true, delay)
	tn.run(6*time.Second, 10*time.Millisecond)
	checkPlayed(t, tn.st, tn.played["C"])
	st, was := tn.nodes["C"].Stats(), off.nodes["C"].Stats()
	t.Logf("stripe 1: pulls %d, fetches %d; with PushedMargin at FetchMargin pulls %d, fetches %d",
		st.Pulls, stripeFetches(tn.fetches["C"], 1), was.Pulls, stripeFetches(off.fetches["C"], 1))
	if st.LostSlices != 0 || st.Stalls != 0 {
		t.Fatalf("C lost %d slices, stalled %d times", st.LostSlices, st.Stalls)
	}
	if was.Pulls < 30 {
		t.Fatalf("with PushedMargin at FetchMargin C pulled only %d late chunks", was.Pulls)
	}
	if st.Pulls > 2 || stripeFetches(tn.fetches["C"], 1) > 2 {
		t.Fatalf("C pulled %d and fetched %d chunks of a stripe that flowed in time", st.Pulls, stripeFetches(tn.fetches["C"], 1))
	}
}

// ROADMAP #4, parent liveness judged by what the child receives: with a
// long ParentTimeout (the simulator's 2 s), a crashed parent — no chunk,
// no Alive — is lost after silenceLimit (four Alive intervals), while a
// starved one that keeps sending Alives is kept for its own repair.
func TestSilentParentLostEarly(t *testing.T) {
	const alive = 100 * time.Millisecond
	setup := func() (*testNet, *bool) {
		tn, starve := starveNet(t, alive)
		for _, n := range tn.nodes {
			n.cfg.ParentTimeout = 2 * time.Second
		}
		tn.run(3*time.Second, 10*time.Millisecond)
		return tn, starve
	}
	t.Run("dead", func(t *testing.T) {
		tn, _ := setup()
		tn.crash("P")
		crashed := tn.now
		for tn.now.Sub(crashed) < 2*time.Second && !slices.ContainsFunc(tn.lost["C"], func(l Lost) bool { return l.Parent == "P" }) {
			tn.run(10*time.Millisecond, 10*time.Millisecond)
		}
		took := tn.now.Sub(crashed)
		t.Logf("dead parent lost after %v (ParentTimeout 2s, Alives every %v)", took, alive)
		// P fed every stripe: C hears someone else (the origin's
		// fetched chunks, at the margin) only a while after P fell
		// silent, then loses it at once — well before ParentTimeout.
		if took > time.Second {
			t.Fatalf("C found its crashed parent lost only after %v", took)
		}
	})
	t.Run("starved", func(t *testing.T) {
		tn, starve := setup()
		*starve = true
		tn.run(time.Second, 10*time.Millisecond)
		*starve = false
		tn.run(time.Second, 10*time.Millisecond)
		if slices.ContainsFunc(tn.lost["C"], func(l Lost) bool { return l.Parent == "P" }) {
			t.Fatalf("C left a parent starved for 1 s that sent Alives (alives in %d)", tn.nodes["C"].Stats().AlivesIn)
		}
	})
}

// The count of partners with a map (which lets the pull scan skip
// nodes no partner told anything yet) follows maps, partners kept and
// dropped by SetPartners, and partners gone.
func TestMappedPartnersCounted(t *testing.T) {
	tn := newTestNet(t, 4)
	c := tn.viewer("C", "origin", testConfig(tn.st))
	check := func(want int) {
		t.Helper()
		got := 0
		for _, p := range c.mesh.partners {
			if !p.mapAt.IsZero() {
				got++
			}
		}
		if got != want || c.mesh.mapped != want {
			t.Fatalf("partners with a map: %d, counted %d, want %d", got, c.mesh.mapped, want)
		}
	}
	bm := wire.BufferMap{Stripes: 4, First: 1, Held: []uint16{0xf}}
	c.SetPartners(tn.now, []NodeID{"A", "B", "D"})
	check(0)
	for _, id := range []NodeID{"A", "B", "A"} {
		if err := c.HandleMap(tn.now, id, bm); err != nil {
			t.Fatal(err)
		}
	}
	check(2)
	c.SetPartners(tn.now, []NodeID{"B", "D", "E"}) // A's map goes with it, B's stays
	check(1)
	c.PartnerGone(tn.now, "D")
	check(1)
	c.NodeGone(tn.now, "B")
	check(0)
	if err := c.HandleMap(tn.now, "E", wire.BufferMap{Stripes: 3}); !errors.Is(err, ErrBadMap) {
		t.Fatalf("map of 3 stripes: %v", err)
	}
	check(0)
}

// Maps come when asked for, so a partner's first map lost on the way (a
// partition) is asked for again once firstMapWait has passed: a node
// with no partner's map would never pull, nor ask.
func TestFirstMapLostAskedAgain(t *testing.T) {
	tn := meshNet(t, false)
	cut := true // Q's frames to C are lost
	tn.meshLink = func(from, to NodeID) (time.Duration, bool) {
		return 5 * time.Millisecond, !cut || from != "Q"
	}
	tn.partner("C", "Q")
	tn.run(500*time.Millisecond, 10*time.Millisecond)
	c := tn.nodes["C"]
	if c.mesh.mapped != 0 || c.Stats().MapRequests != 0 {
		t.Fatalf("with Q's first map lost: %d partners mapped, %d maps asked within 500 ms", c.mesh.mapped, c.Stats().MapRequests)
	}
	cut = false
	tn.run(time.Second, 10*time.Millisecond)
	if c.mesh.mapped != 1 || c.Stats().MapRequests == 0 {
		t.Fatalf("Q's map never asked for again: %d partners mapped, %d maps asked", c.mesh.mapped, c.Stats().MapRequests)
	}
}
