package chandelier

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestRandomRounds drives an Optimizer through seeded rounds of joins,
// leaves, upload and NAT changes and peer-made switches, and checks after
// every round (DESIGN.md, "Chandelier"): capacities hold, no peer is
// interior in two stripes, no edge joins NATs that cannot connect, no
// cycles, backups are usable, every peer gets every stripe when upload
// suffices (else the deficit is no larger than the upload shortfall plus
// a small margin), the Plan's diff reproduces the full state, and the
// same seed gives the same plans.
func TestRandomRounds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ratio float64
		isps  int
		seeds []uint64
	}{
		{"ample", 1.5, 4, []uint64{1, 2, 3, 5}},
		{"scarce", 0.7, 4, []uint64{4}},
		{"many-isps", 1.5, 40, []uint64{6}},
	} {
		for _, seed := range tc.seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", tc.name, seed), func(t *testing.T) {
				h1 := randomRounds(t, seed, tc.ratio, tc.isps)
				h2 := randomRounds(t, seed, tc.ratio, tc.isps)
				if h1 != h2 {
					t.Fatalf("seed %d: two runs differ (plan hash %x vs %x)", seed, h1, h2)
				}
			})
		}
	}
}

func randomRounds(t *testing.T, seed uint64, ratio float64, isps int) uint64 {
	t.Helper()
	const rounds, start = 40, 400
	cfg := testConfig(16)
	w := newWorld(seed, ratio, isps)
	o := newOpt(t, cfg)
	cfg = o.Config()
	rng := rand.New(rand.NewPCG(seed, 99))
	state := map[[2]string]Assignment{} // what the plans told so far
	key := func(a Assignment) [2]string { return [2]string{a.Peer, fmt.Sprint(a.Stripe)} }
	var hash uint64
	now := t0
	ch := Changes{Join: w.joinN(start, now)}
	for r := range rounds {
		plan := o.Round(now, ch)
		replay := fmt.Sprintf("go test ./chandelier -run 'TestRandomRounds' (seed %d, round %d)", seed, r)
		for _, id := range plan.Left {
			for s := range cfg.Stripes {
				delete(state, [2]string{id, fmt.Sprint(s)})
			}
		}
		for _, a := range plan.Changed {
			state[key(a)] = a
			hash = mix(hash, uint64(len(a.Parent))*31+uint64(len(a.Backups)))
			for _, c := range a.Peer + a.Parent {
				hash = mix(hash, uint64(c))
			}
		}
		all := o.Assignments()
		if len(all) != len(state) {
			have := map[[2]string]bool{}
			for _, a := range all {
				have[key(a)] = true
			}
			for k := range state {
				if !have[k] {
					t.Logf("told %v, not there; left %v; ch %+v", k, plan.Left, state[k])
					for _, a := range plan.Changed {
						if a.Peer == k[0] {
							t.Logf("changed %+v", a)
						}
					}
					break
				}
			}
			t.Fatalf("%s: plans describe %d assignments, the optimizer has %d", replay, len(state), len(all))
		}
		for _, a := range all {
			if got := state[key(a)]; !got.equal(a) {
				t.Fatalf("%s: plan diff lost a change: told %+v, have %+v", replay, got, a)
			}
		}
		peers := w.list()
		f := Measure(o.Config(), peers, all)
		checkInvariants(t, replay, f)
		if f.Deficit != plan.Deficit {
			t.Fatalf("%s: plan deficit %d, measured %d", replay, plan.Deficit, f.Deficit)
		}
		supply := cfg.OriginFeeds
		for _, p := range peers {
			supply += o.cfg.Feeds(p.Upload)
		}
		short := max(0, len(peers)*cfg.Stripes-supply)
		if ratio >= 1.2 && f.Deficit != 0 {
			for i := 1; i < len(o.nodes); i++ {
				x := &o.nodes[i]
				for s := range cfg.Stripes {
					if x.alive && o.depth[s][i] < 0 {
						free := map[NAT]int{}
						for j := 1; j < len(o.nodes); j++ {
							if y := &o.nodes[j]; y.alive && int(y.interior) == s && o.depth[s][j] > 0 && y.isp == x.isp {
								free[y.nat] += int(y.feeds) - len(y.kids)
							}
						}
						t.Logf("DBG %s s=%d nat=%v isp=%d int=%d feeds=%d kids=%d par=%d free-in-isp=%v", x.peer.ID, s, x.nat, x.isp, x.interior, x.feeds, len(x.kids), x.parent[s], free)
					}
				}
			}
			t.Fatalf("%s: %d (peer, stripe) pairs unfed with ample upload: %+v", replay, f.Deficit, f)
		}
		if f.Deficit > short+f.Pairs/20 {
			t.Fatalf("%s: deficit %d, upload shortfall only %d of %d pairs", replay, f.Deficit, short, f.Pairs)
		}
		if r == rounds-1 {
			t.Logf("seed %d after %d rounds: %d peers, deficit %d (shortfall %d), depth mean %.2f max %d",
				seed, rounds, f.Peers, f.Deficit, short, f.DepthMean, f.DepthMax)
		}

		// The next round's changes. Some rounds bring nothing new: the
		// round skips the stripes nothing changed in and must still
		// keep every invariant.
		now = now.Add(time.Second)
		if rng.IntN(5) == 0 {
			ch = Changes{}
			continue
		}
		ch = Changes{Leave: w.leaveN(rng.IntN(len(w.order)/20 + 1))}
		ch.Join = w.joinN(rng.IntN(start/20+1), now)
		for range rng.IntN(10) {
			id := w.order[rng.IntN(len(w.order))]
			p := w.peers[id]
			switch rng.IntN(3) {
			case 0:
				p.Upload = w.upload()
			case 1:
				p.Upload = 0
			default:
				p.NAT = w.nat()
			}
			w.peers[id] = p
			ch.Update = append(ch.Update, p)
		}
		// Some peers repair on their own: a parent "fails" for them.
		for range rng.IntN(10) {
			a := all[rng.IntN(len(all))]
			if _, live := w.peers[a.Peer]; !live || slices.Contains(ch.Leave, a.Peer) {
				continue
			}
			if next, ok := Repair(a.Backups, func(string) Status { return Status{} }, 0); ok {
				ch.Switched = append(ch.Switched, Switch{Peer: a.Peer, Stripe: a.Stripe, Parent: next})
			}
		}
	}
	return hash
}

// TestMeasureCatchesBrokenPlacements makes sure the checker the other
// tests trust can fail.
func TestMeasureCatchesBrokenPlacements(t *testing.T) {
	cfg := Config{Stripes: 2, StreamRate: 2, OriginFeeds: 2, Usable: 1}
	peers := []Peer{
		{ID: "a", Upload: 1, NAT: NATSymmetric, ISP: "x"}, // one feed
		{ID: "b", Upload: 0, NAT: NATSymmetric, ISP: "y"},
		{ID: "c", Upload: 0, NAT: NATOpen, ISP: "x"},
		{ID: "d", Upload: 3, NAT: NATOpen, ISP: "x"},
		{ID: "e", Upload: 3, NAT: NATOpen, ISP: "x"},
	}
	as := []Assignment{
		{Peer: "a", Stripe: 0, Parent: Origin},
		{Peer: "a", Stripe: 1, Parent: Origin},
		{Peer: "b", Stripe: 0, Parent: "a", Backups: []string{"b", "c", "e"}}, // symmetric↔symmetric, cross ISP; b is itself, c is below a
		{Peer: "b", Stripe: 1, Parent: "a"},                                   // a in two stripes, over capacity
		{Peer: "c", Stripe: 0, Parent: "a"},
		{Peer: "d", Stripe: 0, Parent: "e"}, // d and e loop
		{Peer: "e", Stripe: 0, Parent: "d"},
	}
	f := Measure(cfg, peers, as)
	want := Figures{OverCapacity: 1, MultiInterior: 1, Unreachable: 2, Cycles: 1, BadBackups: 2}
	if f.OverCapacity != want.OverCapacity || f.MultiInterior != want.MultiInterior ||
		f.Unreachable != want.Unreachable || f.Cycles != want.Cycles || f.BadBackups != want.BadBackups {
		t.Errorf("Measure = %+v, want the violations of %+v", f, want)
	}
	// Unfed: c1, d0, d1, e0, e1 (b1, c0 and b0 are fed through a).
	if f.Deficit != 5 {
		t.Errorf("deficit %d, want 5", f.Deficit)
	}
	if f.DepthMax != 2 || f.CrossISP != 2 || f.ISPLowerBound != 4 {
		t.Errorf("depth max %d, cross-ISP %d, bound %d; want 2, 2, 4", f.DepthMax, f.CrossISP, f.ISPLowerBound)
	}
}
