package chandelier

import (
	"testing"
	"time"
)

// linksOf are the links every peer reports after a tracker restart: its
// parent per stripe, with its depth.
func linksOf(as []Assignment, depth map[string][]int) []Link {
	var out []Link
	for _, a := range as {
		if a.Parent != "" {
			out = append(out, Link{Peer: a.Peer, Stripe: a.Stripe, Parent: a.Parent, Depth: depth[a.Peer][a.Stripe]})
		}
	}
	return out
}

// depthsOf computes each peer's depth per stripe from assignments.
func depthsOf(as []Assignment, k int) map[string][]int {
	par := map[string][]string{}
	for _, a := range as {
		if par[a.Peer] == nil {
			par[a.Peer] = make([]string, k)
		}
		par[a.Peer][a.Stripe] = a.Parent
	}
	out := map[string][]int{}
	for id := range par { // each entry computed alone: order does not matter
		d := make([]int, k)
		for s := range k {
			n, cur := 0, id
			for cur != "" && cur != Origin && n <= len(par) {
				cur, n = par[cur][s], n+1
			}
			if cur == Origin {
				d[s] = n
			}
		}
		out[id] = d
	}
	return out
}

// Seeding an empty optimizer with the links of a built placement keeps
// every one of them: the trees come back edge for edge, the invariants
// hold, and the next round moves nothing.
func TestSeedKeepsBuiltTrees(t *testing.T) {
	for _, n := range []int{50, 2000} {
		w := newWorld(uint64(n), 1.5, 4)
		peers := w.joinN(n, t0)
		cfg := testConfig(16)
		a := newOpt(t, cfg)
		a.Round(t0, Changes{Join: peers})
		a.Round(t0.Add(time.Second), Changes{})
		before := a.Assignments()
		links := linksOf(before, depthsOf(before, a.cfg.Stripes))

		b := newOpt(t, cfg)
		plan, st := b.Seed(t0.Add(time.Hour), peers, links, Changes{})
		if st.Links != len(links) || st.Kept != len(links) || st.Dropped != 0 {
			t.Errorf("n=%d: %+v, want all %d links kept", n, st, len(links))
		}
		after := b.Assignments()
		diff := 0
		for k := range after {
			if after[k].Parent != before[k].Parent {
				diff++
			}
		}
		if diff != 0 {
			t.Errorf("n=%d: %d of %d parents differ after seeding", n, diff, len(after))
		}
		checkInvariants(t, "seeded", Measure(b.Config(), peers, after))
		if plan.Peers != n || plan.Deficit != 0 {
			t.Errorf("n=%d: plan %d peers, deficit %d", n, plan.Peers, plan.Deficit)
		}
		if p2 := b.Round(t0.Add(time.Hour+time.Second), Changes{}); p2.Moved != 0 {
			t.Errorf("n=%d: the round after the seed moved %d edges", n, p2.Moved)
		}
	}
}

// Invalid links are refused and those stripes placed afresh: an unknown
// parent, a cycle, a parent over its capacity, a pair the NATs forbid, a
// stripe out of range; the result keeps every invariant.
func TestSeedRefusesInvalidLinks(t *testing.T) {
	w := newWorld(7, 1.5, 4)
	peers := w.joinN(200, t0)
	a := newOpt(t, testConfig(8))
	a.Round(t0, Changes{Join: peers})
	links := linksOf(a.Assignments(), depthsOf(a.Assignments(), 4))
	var sym []string
	for _, p := range peers {
		if p.NAT == NATSymmetric {
			sym = append(sym, p.ID)
		}
	}
	bad := []Link{
		{Peer: peers[0].ID, Stripe: 0, Parent: "nobody"},
		{Peer: peers[1].ID, Stripe: 9, Parent: Origin},
		// Two peers feeding each other.
		{Peer: peers[2].ID, Stripe: 1, Parent: peers[3].ID},
		{Peer: peers[3].ID, Stripe: 1, Parent: peers[2].ID},
		// A symmetric parent of a symmetric child: no direct path.
		{Peer: sym[0], Stripe: 2, Parent: sym[1]},
	}
	// Every peer claims the origin for stripe 3: far over its share.
	for _, p := range peers {
		bad = append(bad, Link{Peer: p.ID, Stripe: 3, Parent: Origin, Depth: 1})
	}
	var keep []Link
	for _, l := range links {
		if l.Stripe != 3 && l.Peer != peers[0].ID && l.Peer != peers[2].ID && l.Peer != peers[3].ID && l.Peer != sym[0] {
			keep = append(keep, l)
		}
	}
	b := newOpt(t, testConfig(8))
	_, st := b.Seed(t0, peers, append(bad, keep...), Changes{})
	if st.Dropped < len(peers)-2 || st.Kept == 0 {
		t.Errorf("%+v: want the invalid links dropped and the valid kept", st)
	}
	as := b.Assignments()
	checkInvariants(t, "seeded with invalid links", Measure(b.Config(), peers, as))
	origin := 0
	for _, x := range as {
		if x.Stripe == 3 && x.Parent == Origin {
			origin++
		}
	}
	if origin > 2 {
		t.Errorf("%d origin children in stripe 3, its share is 2", origin)
	}
}

// Benchmarks of a restarted tracker's rebuild from the links its peers
// report (issue 6), against the full build from scratch (the "full"
// case of BenchmarkRound*: 6.7 s at 100,000 peers).
func BenchmarkSeed10k(b *testing.B)  { benchSeed(b, 10_000) }
func BenchmarkSeed100k(b *testing.B) { benchSeed(b, 100_000) }

func benchSeed(b *testing.B, n int) {
	w := newWorld(1, 1.5, 4)
	peers := w.joinN(n, t0)
	a := newOpt(b, testConfig(16))
	a.Round(t0, Changes{Join: peers})
	as := a.Assignments()
	links := linksOf(as, depthsOf(as, a.cfg.Stripes))
	b.ReportAllocs()
	kept := 0
	for b.Loop() {
		o := newOpt(b, testConfig(16))
		_, st := o.Seed(t0, peers, links, Changes{})
		kept = st.Kept
	}
	b.ReportMetric(float64(kept)/float64(len(links)), "kept")
}
