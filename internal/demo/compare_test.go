package demo

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/report"
	"github.com/swarmtv/swarmtv/internal/sim"
)

// depths is the depth of every peer in every stripe tree of a parents
// table (StripeParents' numbering: 0 the origin, -1 none): 1 under the
// origin, one more per peer above; 0 when the chain does not reach the
// origin. depths[i][s] for peer i (from 1).
func depths(parents [][]int) [][]int {
	out := make([][]int, len(parents))
	for i, ps := range parents {
		if ps == nil {
			continue
		}
		out[i] = make([]int, len(ps))
		for s := range ps {
			cur, d := ps[s], 1
			for cur > 0 && d <= len(parents) {
				if cur >= len(parents) || parents[cur] == nil || s >= len(parents[cur]) {
					cur = -1
					break
				}
				cur, d = parents[cur][s], d+1
			}
			if cur == 0 {
				out[i][s] = d
			}
		}
	}
	return out
}

// histogram counts peer-stripe places by depth (index: depth; 0:
// detached).
func histogram(ds [][]int) []int {
	var h []int
	for _, row := range ds {
		for _, d := range row {
			for len(h) <= d {
				h = append(h, 0)
			}
			h[d]++
		}
	}
	return h
}

// shapeOfThree checks 3 peers' parents tables for the demo's shape with
// K = 3: in every stripe one peer is fed by the origin and feeds the
// other two, and no peer forwards two stripes. It returns what is wrong
// ("" if nothing).
func shapeOfThree(ps [][]int) string {
	if len(ps) != 4 {
		return fmt.Sprintf("%d peers, want 3", len(ps)-1)
	}
	forwarder := map[int]int{} // peer → the stripe it forwards
	for s := range 3 {
		fwd := -1
		for i := 1; i <= 3; i++ {
			if len(ps[i]) != 3 {
				return fmt.Sprintf("peer %d has %d stripes, want 3", i, len(ps[i]))
			}
			if ps[i][s] == 0 {
				if fwd != -1 {
					return fmt.Sprintf("stripe %d has two peers under the origin", s)
				}
				fwd = i
			}
		}
		if fwd == -1 {
			return fmt.Sprintf("stripe %d has no peer under the origin", s)
		}
		if prev, dup := forwarder[fwd]; dup {
			return fmt.Sprintf("peer %d forwards stripes %d and %d", fwd, prev, s)
		}
		forwarder[fwd] = s
		for i := 1; i <= 3; i++ {
			if i != fwd && ps[i][s] != fwd {
				return fmt.Sprintf("peer %d gets stripe %d from %d, not from its forwarder %d", i, s, ps[i][s], fwd)
			}
		}
	}
	return ""
}

func fmtPct(p *report.Percentiles) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.0f/%.0f", p.P50, p.P95)
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// Issue 3, acceptance (the short version): the demo's setup in the
// simulator (scenarios/demo-3.yaml: the clip's rate, K = 3, the demo's
// capacities, loopback-like network, peers joining one after another)
// and the real demo agree — stripe trees of the same shape (each stripe
// fed by the origin to one peer, which feeds the two others), the same
// depths, and savings within a margin that holds on a loaded 2-core
// machine. Both report tables are logged
// side by side.
func TestDemoMatchesSim(t *testing.T) {
	var real [][]int
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dr, err := Run(ctx, Config{
		Peers:         3,
		Duration:      10 * time.Second,
		RTSPPort:      freePort(t),
		DashboardAddr: "127.0.0.1:0",
		StatusEvery:   -1,
		afterRun:      func(d *Demo) { real = d.StripeParents() },
	})
	if err != nil {
		t.Fatalf("demo: %v", err)
	}

	cfg, err := sim.LoadScenario("../../scenarios/demo-3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Duration = time.Duration(dr.DurationS * float64(time.Second)).Round(time.Millisecond)
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := s.Run()
	if err != nil {
		t.Fatalf("sim: %v", err)
	}
	simulated := s.StripeParents()

	t.Logf("%-22s %12s %12s", "3 peers", "demo", "sim")
	t.Logf("%-22s %12.1f %12.1f", "duration s", dr.DurationS, sr.DurationS)
	t.Logf("%-22s %12.4f %12.4f", "savings", deref(dr.Savings), deref(sr.Savings))
	t.Logf("%-22s %12.4f %12.4f", "continuity", deref(dr.Continuity), deref(sr.Continuity))
	t.Logf("%-22s %12s %12s", "startup p50/p95 ms", fmtPct(dr.StartupMs), fmtPct(sr.StartupMs))
	t.Logf("%-22s %12s %12s", "lag p50/p95 ms", fmtPct(dr.LagMs), fmtPct(sr.LagMs))
	t.Logf("%-22s %12d %12d", "origin egress bytes", dr.OriginEgressBytes, sr.OriginEgressBytes)
	t.Logf("%-22s %12d %12d", "p2p bytes", dr.P2PBytes, sr.P2PBytes)
	t.Logf("stripe parents (peer: parent per stripe; 0 the origin): demo %v, sim %v", real[1:], simulated[1:])

	if len(real) != 4 || len(simulated) != 4 {
		t.Fatalf("parents tables: demo %v, sim %v; want 3 peers each", real, simulated)
	}
	// Who feeds whom: the shape the demo's capacities give — each stripe
	// goes from the origin to one peer, which feeds the two others, and
	// each peer forwards one stripe. (Usually the very same tables, peer
	// i forwarding stripe i−1; a loaded machine can make the demo's
	// tracker hand the stripes to other peers, so only the shape is
	// asserted.)
	for name, ps := range map[string][][]int{"demo": real, "sim": simulated} {
		if msg := shapeOfThree(ps); msg != "" {
			t.Errorf("%s: %s: %v", name, msg, ps[1:])
		}
	}
	for name, ps := range map[string][][]int{"demo": real, "sim": simulated} {
		h := histogram(depths(ps))
		if !slices.Equal(h, []int{0, 3, 6}) {
			t.Errorf("%s: depth histogram %v (detached, depth 1, depth 2), want [0 3 6]", name, h)
		}
	}
	if dr.TreeDepth == nil || sr.TreeDepth == nil {
		t.Fatalf("tree depth missing: demo %v, sim %v", dr.TreeDepth, sr.TreeDepth)
	}
	if dr.TreeDepth.Max != sr.TreeDepth.Max {
		t.Errorf("max tree depth: demo %d, sim %d", dr.TreeDepth.Max, sr.TreeDepth.Max)
	}
	// The sim's mean is over samples through the run (the first peer is
	// alone at depth 1 for a moment), the demo's over the final trees.
	if d := math.Abs(dr.TreeDepth.Mean - sr.TreeDepth.Mean); d > 0.15 {
		t.Errorf("mean tree depth: demo %.3f, sim %.3f", dr.TreeDepth.Mean, sr.TreeDepth.Mean)
	}
	// Savings: 1 − origin ÷ players; the bound is 1 − 1/3 in steady
	// state. The join phase and the startup backlogs cost both alike
	// (about 0.55 and 0.57 here). A loaded machine costs the demo alone:
	// chunks its peers get late are fetched from the origin (0.46
	// against 0.57 once, in the whole -race suite on 2 shared cores).
	ds, ss := deref(dr.Savings), deref(sr.Savings)
	if math.IsNaN(ds) || math.IsNaN(ss) || ds < ss-0.15 || ds > ss+0.05 {
		t.Errorf("savings: demo %.4f, sim %.4f (want the demo within -0.15..+0.05 of the sim)", ds, ss)
	}
	for name, c := range map[string]*float64{"demo": dr.Continuity, "sim": sr.Continuity} {
		if c == nil || *c < 0.98 {
			t.Errorf("%s continuity %v", name, c)
		}
	}
}
