package sim

import (
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/report"
)

// Issue 4's acceptance scenarios, scaled down for the suite (the full
// size runs are measured with swarmtv sim; see the closing note). Each
// runs Chandelier and the baseline placement on the same seed.

// acceptance returns the scaled-down steady setting: upload ratio 1.5,
// 4 ISPs, the default NAT mix.
func acceptance(peers int, d time.Duration, seed uint64, placer string) Config {
	c := small(peers, d, seed)
	c.UploadRatio = 1.5
	c.ISPs = 4
	c.Stripes = 4
	c.OriginCapacity = 4
	c.Placer = placer
	return c
}

func TestAcceptanceSteady(t *testing.T) {
	ch, _ := run(t, acceptance(150, 40*time.Second, 11, "chandelier"))
	bl, _ := run(t, acceptance(150, 40*time.Second, 11, "baseline"))
	t.Logf("chandelier: savings %.4f continuity %.4f cross-ISP %d (bound %d) depth %.2f lag p95 %.0f startup p95 %.0f",
		*ch.Savings, *ch.Continuity, *ch.CrossISPBytes, *ch.CrossISPLowerBoundBytes, ch.TreeDepth.Mean, ch.LagMs.P95, ch.StartupMs.P95)
	t.Logf("baseline:   savings %.4f continuity %.4f cross-ISP %d (bound %d) depth %.2f lag p95 %.0f startup p95 %.0f",
		*bl.Savings, *bl.Continuity, *bl.CrossISPBytes, *bl.CrossISPLowerBoundBytes, bl.TreeDepth.Mean, bl.LagMs.P95, bl.StartupMs.P95)
	// Measured: chandelier 0.992 continuity, 0.957 savings, depth 3.1,
	// cross-ISP 5.2 × the bound (4 ISPs × 4 stripes against the origin's
	// 16 feeds: small swarms leave ISPs without a forwarder per stripe);
	// the baseline 0.891, depth 12.3, cross-ISP 34 × the bound.
	// Session 5: 0.9963.
	if *ch.Continuity < 0.99 {
		t.Errorf("chandelier continuity %.4f, want >= 0.99", *ch.Continuity)
	}
	if *ch.Savings < 0.9 {
		t.Errorf("chandelier savings %.4f, want >= 0.9 (the origin seeds 4 of 150)", *ch.Savings)
	}
	// Lag and startup, far from issue 4's 1.5 s and 1 s at this scale
	// (200 ms slices, a 1 s playout delay, 40 s of which 3 s are the
	// joins): measured lag p95 3,061 ms (4,675 before catch-up and the
	// bounded backlog), startup p95 2,727 ms. The sim is deterministic:
	// these bounds catch regressions, not noise.
	if ch.LagMs == nil || ch.LagMs.P95 > 3500 {
		t.Errorf("chandelier lag %v ms, want p95 <= 3500", ch.LagMs)
	}
	if ch.StartupMs == nil || ch.StartupMs.P95 > 4000 {
		t.Errorf("chandelier startup %v ms, want p95 <= 4000", ch.StartupMs)
	}
	// At this scale the origin (16 feeds for 150 peers) covers what the
	// baseline's deep trees miss, so its continuity comes close: since
	// the origin's fetch budget serves the nearest deadlines first and
	// drops canceled fetches, seeds 11-14 measured chandelier
	// 0.9989/0.9964/0.9982/0.9991 against the baseline's
	// 0.9991/0.9952/0.9995/0.9391 (before: 0.9984/0.9951/0.9964/0.9982
	// against 0.9974/0.9950/0.9989/0.6923; the baseline was ahead on
	// seed 13 already). The baseline is worse where placement decides:
	// depth and lag (4,127 against 1,817 ms on seed 11).
	if *bl.Continuity > *ch.Continuity+0.0005 || bl.TreeDepth.Mean <= 2*ch.TreeDepth.Mean || bl.LagMs.P95 <= ch.LagMs.P95 {
		t.Errorf("the baseline (continuity %.4f, depth %.2f, lag p95 %.0f) is not worse than chandelier (%.4f, %.2f, %.0f)",
			*bl.Continuity, bl.TreeDepth.Mean, bl.LagMs.P95, *ch.Continuity, ch.TreeDepth.Mean, ch.LagMs.P95)
	}
	// Every cross-ISP byte has a cause.
	for _, r := range []struct {
		name string
		pl   *report.Placement
		mesh *report.Mesh
		all  int64
	}{{"chandelier", ch.Placement, ch.Mesh, *ch.CrossISPBytes}, {"baseline", bl.Placement, bl.Mesh, *bl.CrossISPBytes}} {
		if r.pl == nil || r.pl.Rounds == 0 || r.mesh == nil {
			t.Fatalf("%s: no placement or mesh figures: %+v %+v", r.name, r.pl, r.mesh)
		}
		sum := r.pl.CrossISPTreeBytes + r.pl.CrossISPBackupBytes + r.pl.CrossISPCatchupBytes + r.pl.CrossISPStaleBytes + r.mesh.CrossISPPullBytes
		if sum != r.all {
			t.Errorf("%s: cross-ISP bytes by cause sum to %d, not %d", r.name, sum, r.all)
		}
	}
	// ISP locality: well below the ISP-blind baseline.
	if float64(*ch.CrossISPBytes) > 0.3*float64(*bl.CrossISPBytes) {
		t.Errorf("chandelier cross-ISP %d bytes, not under 0.3 × the baseline's %d", *ch.CrossISPBytes, *bl.CrossISPBytes)
	}
}

// Catch-up (swarm.Config.CatchUp) takes back the lag stalls and a start
// on an old group of pictures leave: the same run without it is further
// behind live, at no cost in continuity beyond noise.
func TestCatchUpCutsLag(t *testing.T) {
	c := acceptance(150, 40*time.Second, 11, "chandelier")
	// The start a playout delay after the first chunk: with a start at
	// once (StartMargin), catch-up also gives the start its margin.
	c.PlayoutDelay, c.StartMargin, c.KeyframeWait = time.Second, 0, 0
	// Whole keyframe slices, three times another: their chunks come late
	// and stall, leaving lag to take back (with the size cap there are
	// few stalls: lag p50/p95 1,544/1,819 ms against 1,544/1,885).
	c.SliceCap = 0
	with, _ := run(t, c)
	c.CatchUp = -1
	without, _ := run(t, c)
	t.Logf("lag p50/p95 %.0f/%.0f ms with catch-up, %.0f/%.0f without; continuity %.4f, %.4f",
		with.LagMs.P50, with.LagMs.P95, without.LagMs.P50, without.LagMs.P95, *with.Continuity, *without.Continuity)
	// Measured: 1,994/2,353 ms against 2,103/2,641 ms (40 s, 150 peers:
	// the join phase is a large share; longer runs gain more). Session 4:
	// 2,165/2,823 against 2,533/3,361, when more stalls left more lag to
	// take back.
	if with.LagMs.P50 > without.LagMs.P50 || with.LagMs.P95 > 0.9*without.LagMs.P95 {
		t.Errorf("lag p50/p95 %.0f/%.0f ms with catch-up, not under %.0f and 10 %% under %.0f without",
			with.LagMs.P50, with.LagMs.P95, without.LagMs.P50, without.LagMs.P95)
	}
	if *with.Continuity < *without.Continuity-0.005 {
		t.Errorf("continuity %.4f with catch-up, %.4f without", *with.Continuity, *without.Continuity)
	}
}

func TestAcceptanceChurn(t *testing.T) {
	c := acceptance(120, 60*time.Second, 12, "chandelier")
	c.Churn = 0.1
	r, s := run(t, c)
	t.Logf("churn: continuity %.4f savings %.4f repair %+v stalls %d over %d viewers", *r.Continuity, *r.Savings, *r.RepairMs, r.Stalls, s.m.viewers)
	// Measured 0.997, repair p95 710 ms (0.953 and 1,128 ms while the
	// origin alone covered chunks a live parent delivered late, and its
	// fetch budget refused much of what the subtrees of crashed parents
	// asked while they repaired: now partners whose maps show them are
	// asked first, and a crashed parent is found after ~600 ms).
	if *r.Continuity < 0.99 {
		t.Errorf("continuity %.4f under 10 %%/min churn, want >= 0.99", *r.Continuity)
	}
	if *r.Savings < 0.9 {
		t.Errorf("savings %.4f under churn, want >= 0.9", *r.Savings)
	}
	if r.RepairMs == nil || r.RepairMs.P95 > 1500 {
		t.Errorf("repair %v ms, want p95 <= 1500", r.RepairMs)
	}
}

// TestAcceptanceFlashCrowd pools three seeds: with 150 viewers a
// run's p99 is its second-slowest peer, which any change to the
// placement moves by seconds (seeds 13–21 on one build: p99 4.2–10 s,
// pooled p95 4.1–4.7 s). The pooled p95 is asserted, p99 logged; the
// 5 s target itself is measured at 10,000 peers (closing note).
func TestAcceptanceFlashCrowd(t *testing.T) {
	var startup []float64
	for _, seed := range []uint64{13, 14, 15} {
		c := acceptance(150, 40*time.Second, seed, "chandelier")
		c.FlashCrowd = 20 * time.Second
		r, s := run(t, c)
		t.Logf("flash crowd, seed %d: startup %+v savings %.4f continuity %.4f", seed, *r.StartupMs, *r.Savings, *r.Continuity)
		if s.m.neverPlayed != 0 {
			t.Errorf("seed %d: %d peers never played", seed, s.m.neverPlayed)
		}
		startup = append(startup, s.m.startup...)
	}
	p := report.Of(startup)
	t.Logf("flash crowd, 3 seeds pooled: startup p50 %.0f p95 %.0f p99 %.0f ms", p.P50, p.P95, p.P99)
	if p.P95 > 5000 {
		t.Errorf("pooled startup p95 %.0f ms, want peers playing within 5 s of joining", p.P95)
	}
}

func TestAcceptanceScarceUpload(t *testing.T) {
	c := acceptance(120, 40*time.Second, 14, "chandelier")
	c.UploadRatio = 0.9
	c.OriginUploadMul = 16 // the origin can cover what the peers cannot
	r, s := run(t, c)
	// The bound: the peers' usable upload (the stripe feeds they offer,
	// upload less headroom) over the stream rate, at most 1 - 1/N.
	// Pulls from partners use the headroom beyond the feeds, so savings
	// may pass the bound, though never the peers' whole upload.
	feeds, n, upload := 0, 0, 0.0
	for _, p := range s.peers[1:] {
		feeds += p.capacity
		upload += p.ratio
		n++
	}
	bound := min(1-1/float64(n), float64(feeds)/float64(n*c.Stripes))
	ceiling := min(1-1/float64(n), upload/float64(n))
	t.Logf("scarce upload: savings %.4f (bound %.4f, whole upload %.4f) continuity %.4f", *r.Savings, bound, ceiling, *r.Continuity)
	// Measured 0.9999.
	if *r.Continuity < 0.995 {
		t.Errorf("continuity %.4f with scarce upload, want >= 0.995 (the origin covers the gap)", *r.Continuity)
	}
	if *r.Savings < bound-0.1 || *r.Savings > ceiling {
		t.Errorf("savings %.4f, want within 10 points below the bound %.4f at least, and at most the peers' upload %.4f", *r.Savings, bound, ceiling)
	}
}

// The baseline draws from a seeded source: same seed, same run.
func TestBaselineDeterministic(t *testing.T) {
	c := acceptance(30, 10*time.Second, 15, "baseline")
	a, _ := run(t, c)
	b, _ := run(t, c)
	if *a.TraceHash != *b.TraceHash || reportJSON(t, a) != reportJSON(t, b) {
		t.Fatal("baseline: same seed, different runs")
	}
}

// Issue 4, relayed placements: in a swarm almost all behind symmetric
// and port-restricted NATs (a symmetric NAT cannot punch with either),
// Chandelier gives a peer that no direct parent could reach for
// RelayAfter a parent through the relay, as a last resort; the sim
// connects it relayed (report nat.relayed) and it plays. Without a relay
// nothing is placed relayed and the origin's fallback carries them.
func TestRelayedPlacements(t *testing.T) {
	var got [2]*report.Report
	for k, relay := range []bool{false, true} {
		c := acceptance(60, 40*time.Second, 16, "chandelier")
		c.NATMix, _ = ParseNATMix("open=0.1,portrestricted=0.45,symmetric=0.45")
		c.Relay = relay
		r, _ := run(t, c)
		got[k] = r
		t.Logf("relay %v: relayed placements %d, connections %+v, savings %.4f, continuity %.4f, edges changed per round %.1f",
			relay, r.Placement.RelayedPlacements, *r.NAT, *r.Savings, *r.Continuity, *r.Placement.EdgesChangedPerRound)
	}
	off, on := got[0], got[1]
	if off.Placement.RelayedPlacements != 0 || off.NAT.Relayed != 0 {
		t.Errorf("no relay, yet %d relayed placements and %d relayed connections", off.Placement.RelayedPlacements, off.NAT.Relayed)
	}
	if on.Placement.RelayedPlacements == 0 || on.NAT.Relayed == 0 {
		t.Errorf("with a relay: %d relayed placements, %d relayed connections; want both > 0", on.Placement.RelayedPlacements, on.NAT.Relayed)
	}
	if *on.Savings <= *off.Savings {
		t.Errorf("relayed placements did not take load off the origin: savings %.4f with, %.4f without", *on.Savings, *off.Savings)
	}
	// Measured: with the relay savings 0.882, continuity 0.989; without,
	// 0.705 and 0.573 (the origin's fetch budget cannot carry half the
	// swarm).
	if *on.Continuity < 0.97 || *on.Continuity <= *off.Continuity {
		t.Errorf("continuity %.4f with relayed placements (%.4f without), want >= 0.97", *on.Continuity, *off.Continuity)
	}
}
