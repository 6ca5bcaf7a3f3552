package sim

import (
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/report"
	"github.com/swarmtv/swarmtv/internal/swarm"
)

// The report's latency section breaks startup and lag into parts that
// add up: a viewer's four startup parts sum to its startup, a slice's
// arrival and margin to its lag, so the tail's mean parts add up to at
// least the p95.
func TestLatencyBreakdown(t *testing.T) {
	c := acceptance(100, 20*time.Second, 5, "chandelier")
	c.Warmup = 2 * time.Second
	r, _ := run(t, c)
	l := r.Latency
	if l == nil || l.StartupTail == nil || l.LagTail == nil || l.ArrivalMs == nil || l.MarginMs == nil || l.StartupKeyframeMs == nil {
		t.Fatalf("latency section incomplete: %+v", l)
	}
	st := l.StartupTail
	sum := st.Tracker + st.FirstChunk + st.Keyframe + st.Playout
	if sum < r.StartupMs.P95-1 || sum > r.StartupMs.P99+1 {
		t.Errorf("startup tail parts sum to %.0f ms, want within the p95..p99 %.0f..%.0f", sum, r.StartupMs.P95, r.StartupMs.P99)
	}
	if lag := l.LagTail.Arrival + l.LagTail.Margin; lag < r.LagMs.P95-1 {
		t.Errorf("lag tail parts sum to %.0f ms, under the p95 %.0f", lag, r.LagMs.P95)
	}
	// The by-time windows hold every startup, in join order: the flash
	// crowd's joins all fall in the first window.
	joins := 0
	for i, w := range l.ByTime {
		joins += w.Joins
		if w.ToS <= w.FromS || (i > 0 && w.FromS < l.ByTime[i-1].ToS) {
			t.Errorf("window %d: %.0f-%.0f s after %+v", i, w.FromS, w.ToS, l.ByTime[max(i-1, 0)])
		}
		if w.LagMs == nil || w.LagMs.P50 > w.LagMs.P95 {
			t.Errorf("window %.0f-%.0f s: lag %+v", w.FromS, w.ToS, w.LagMs)
		}
	}
	if len(l.ByTime) != 2 || joins != 100 || l.ByTime[0].Joins != 100 {
		t.Errorf("by time: %d windows, %d joins (%+v), want 2 windows of 20 s and all 100 joins in the first", len(l.ByTime), joins, l.ByTime)
	}
	// A keyframe slice is three times a slice's size in the simulated
	// stream: it arrives later than the others.
	if k := l.KeyframeArrivalMs; k == nil || k.P50 <= l.ArrivalMs.P50 {
		t.Errorf("keyframe slices' arrival %+v, all slices' %+v: want the keyframes later", k, l.ArrivalMs)
	}
	for name, p := range map[string]*report.Percentiles{"tracker": l.StartupTrackerMs, "first chunk": l.StartupFirstChunkMs, "keyframe": l.StartupKeyframeMs, "playout": l.StartupPlayoutMs, "arrival": l.ArrivalMs, "keyframe arrival": l.KeyframeArrivalMs} {
		// A start slice mostly plays as soon as it is complete: the
		// playout part may be 0 up to p95.
		if p == nil || (p.P95 <= 0 && name != "playout") || p.P50 > p.P95 || p.P95 > p.P99 {
			t.Errorf("%s percentiles %+v", name, p)
		}
	}
}

// The start levers — a start at once on the newest complete keyframe
// slice with a short margin converging to a shorter playout delay
// (swarm.ViewerStartMargin, ViewerPlayoutDelay), and only live chunks for
// a new child when the next keyframe is near (ViewerKeyframeWait) — cut
// lag well below the old settings' on the same seed and the same stream
// (on the air before the viewers arrive: the default warm-up), and
// neither startup nor continuity gets worse.
func TestStartLevers(t *testing.T) {
	c := DefaultConfig()
	c.Scenario = "test"
	c.Peers, c.Duration, c.Seed = 300, 30*time.Second, 11
	c.UploadRatio, c.ISPs, c.OriginCapacity, c.FlashCrowd = 1.5, 4, 8, 5*time.Second
	// The playout levers alone, as measured: without the partner mesh and
	// Alives (with them the old levers' lag p95 is 3,776 ms, not 5,225).
	c.Partners, c.AliveInterval = 0, 0
	// Without Alives a parent starved by its own upstream is silent: the
	// 2 s parent timeout the levers were measured with (the real peer's
	// 600 ms relies on Alives).
	c.ParentTimeout = 2 * time.Second
	// The start a child names (StartAge) came later, and costs lag in
	// this setting: with it 1,010/2,070 ms startup, 1,477/3,648 ms lag,
	// continuity 0.9928 (shallow parents send older groups, up to
	// StartAge, and with neither partners nor Alives the stalls they
	// cause last). TestStartupAndLagScaled measures it with the mesh.
	c.StartAge = 0
	after, _ := run(t, c)
	c.PlayoutDelay, c.KeyframeWait, c.StartMargin = time.Second, 0, 0
	before, _ := run(t, c)
	t.Logf("before: startup p50/p95 %.0f/%.0f lag p50/p95 %.0f/%.0f continuity %.4f savings %.4f",
		before.StartupMs.P50, before.StartupMs.P95, before.LagMs.P50, before.LagMs.P95, *before.Continuity, *before.Savings)
	t.Logf("after:  startup p50/p95 %.0f/%.0f lag p50/p95 %.0f/%.0f continuity %.4f savings %.4f",
		after.StartupMs.P50, after.StartupMs.P95, after.LagMs.P50, after.LagMs.P95, *after.Continuity, *after.Savings)
	// Measured: lag p50/p95 1,712/2,876 → 1,310/2,208 ms, startup p95
	// 2,321 → 2,077 ms, continuity 0.9910 → 0.9966 (session 4, before the
	// simulator's download links served transfers in arrival order: lag
	// p95 5,225 → 2,834 ms; part of the old levers' lag was that queue).
	if after.LagMs.P95 > 0.8*before.LagMs.P95 || after.LagMs.P50 > 0.8*before.LagMs.P50 {
		t.Errorf("lag p50/p95 %.0f/%.0f ms, not 20 %% under %.0f/%.0f", after.LagMs.P50, after.LagMs.P95, before.LagMs.P50, before.LagMs.P95)
	}
	// Startup p50 is better on every seed; p95 is a tie: seeds 11-16 with
	// the download links booked as transfers reach them, before/after
	// 1,903/1,913, 2,135/1,771, 2,461/2,155, 1,933/2,086, 2,213/2,065,
	// 2,594/2,303 ms (booked at send time seed 14 was 5 % worse too). So
	// p95 may be at most 5 % worse.
	if after.StartupMs.P95 > 1.05*before.StartupMs.P95 || after.StartupMs.P50 > before.StartupMs.P50 {
		t.Errorf("startup p50/p95 %.0f/%.0f ms, worse than %.0f/%.0f", after.StartupMs.P50, after.StartupMs.P95, before.StartupMs.P50, before.StartupMs.P95)
	}
	if *after.Continuity < *before.Continuity {
		t.Errorf("continuity %.4f, before %.4f", *after.Continuity, *before.Continuity)
	}
	// A viewer starts as soon as its start slice is complete and it
	// holds StartMargin of the stream beyond it, at most StartMargin
	// after the start slice and its continuations completed (measured
	// from the keyframe's own slice: p50 137 ms with the size cap; 0
	// without, when the big keyframe slice came last).
	if p := after.Latency.StartupPlayoutMs; p == nil || p.P50 > float64(swarm.ViewerStartMargin/time.Millisecond) {
		t.Errorf("start slice complete to played %+v ms, want p50 within the start margin", p)
	}
}

// With live chunks ahead of a new child's backlog (--live-first,
// backlog.go, swarm.Send.Backlog), in a flash crowd with churn, lag,
// startup and continuity are no worse than with backlog in line (the
// default). Before parents dropped pushes that waited too long and
// partners refused pulls beside queued pushes, live first cut lag p95
// 4,304 -> 3,623 ms and startup p95 3,405 -> 2,719 ms here; now backlog
// in line does as well (lag p95 2,310 against 2,385 ms, startup p95
// 2,353 against 2,348 ms, continuity 0.9948 against 0.9935, queues
// unbounded; about the same with the default QueueLimit). Since pulls
// and fetches wait for a stripe that still flows (swarm PushedMargin)
// backlog in line starts sooner, live first less so: on seeds 1-6
// startup p95 1,516/1,577, 1,808/2,208, 2,116/2,341, 1,599/1,959,
// 2,150/2,226, 1,963/2,191 ms (in line/live first; up to 23 % later),
// while live first's lag p95 was at most 3 % higher and its continuity
// higher on every seed. So live first's startup p95 may be 25 % later.
func TestLiveAheadOfBacklog(t *testing.T) {
	c := DefaultConfig()
	c.Scenario = "test"
	c.Peers, c.Duration, c.Seed = 200, 20*time.Second, 3
	c.UploadRatio, c.ISPs, c.OriginCapacity, c.FlashCrowd = 1.5, 4, 8, 5*time.Second
	c.Churn = 0.1
	c.QueueLimit = 0 // both unbounded: live first's backlog queue has no limit (backlog.go)
	before, _ := run(t, c)
	c.LiveFirst = true
	after, _ := run(t, c)
	for _, x := range []struct {
		name string
		r    *report.Report
	}{{"fifo", before}, {"live first", after}} {
		t.Logf("%-10s startup p50/p95 %.0f/%.0f lag p50/p95 %.0f/%.0f continuity %.4f savings %.4f",
			x.name, x.r.StartupMs.P50, x.r.StartupMs.P95, x.r.LagMs.P50, x.r.LagMs.P95, *x.r.Continuity, *x.r.Savings)
	}
	if after.LagMs.P95 > 1.1*before.LagMs.P95 || after.StartupMs.P95 > 1.25*before.StartupMs.P95 {
		t.Errorf("live first: lag p95 %.0f, startup p95 %.0f ms; backlog in line: %.0f, %.0f",
			after.LagMs.P95, after.StartupMs.P95, before.LagMs.P95, before.StartupMs.P95)
	}
	if *after.Continuity < *before.Continuity-0.003 {
		t.Errorf("continuity %.4f, backlog in line %.4f", *after.Continuity, *before.Continuity)
	}
}

// Issue 4's start and lag, scaled down: the acceptance scenario
// (scenarios/chandelier-steady-10k.yaml: a 4 Mbit/s stream in 100 ms
// slices and 1 s groups of pictures, 4 stripes, mean upload 1.5 × the
// stream over 4 ISPs, a flash crowd) with 300 viewers joining in 5 s,
// steady and with churn, on the viewers' settings. The bounds hold the
// measured figures with about a tenth to spare: the simulator is
// deterministic, so they catch regressions; issue 4's targets (startup
// p95 1 s, lag p95 1.5 s at 10,000 viewers) are not met. A start the
// child names for every stripe (StartAge; the tracker names a shorter
// one during the flash crowd) starts viewers much sooner than parents
// that each choose by what they hold (StartAge 0), for about the same
// lag and continuity, and the joins into the settled swarm sooner
// still. Live chunks ahead of the backlog
// (--live-first, with the start on a held run) play closer to live
// (with churn about as close) with fewer stalls; the real peer keeps it
// off (see
// transport.DriverConfig.LiveFirst). The joins after the crowd (the
// steady block from 10 s) start within 1.1 s.
func TestStartupAndLagScaled(t *testing.T) {
	for _, x := range []struct {
		name               string
		churn              float64
		startupP95, lagP95 float64 // bounds, ms
		continuity         float64 // at least
		liveFirstLag       float64 // live first's lag p95 below this times in line's
	}{
		// Measured in line: startup p95 1,490 ms, lag p95 1,608 ms,
		// continuity 0.9987 (parents choosing: 1,981, 1,530, 0.9992);
		// live first 1,854, 1,449, 0.9998. Before the size cap
		// (whole keyframe slices): 1,521, 1,814, 0.9974.
		{"steady", 0, 1700, 1800, 0.998, 1},
		// In line 1,483, 1,727, 0.9987 (parents choosing: 1,978, 1,673,
		// 0.9991); live first 1,839, 1,653, 0.9998. Before the size
		// cap: 1,518, 1,911, 0.9974. Since the viewers were dealt into
		// 16 parts (the order of equal times changed): in line 1,454,
		// 1,767, 0.9994; live first 1,591, 1,777, 0.9998. With churn
		// live first's lag is the same within the noise of seeds.
		{"churn", 0.1, 1700, 1900, 0.998, 1.02},
	} {
		t.Run(x.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Scenario = "test"
			c.Peers, c.Duration, c.Seed = 300, 30*time.Second, 1
			c.UploadRatio, c.ISPs, c.OriginCapacity, c.FlashCrowd = 1.5, 4, 8, 5*time.Second
			c.Churn = x.churn
			c.MeasureFrom = 10 * time.Second // the steady block: after the crowd
			r, _ := run(t, c)
			c.StartAge = 0
			pc, _ := run(t, c)
			c.StartAge, c.LiveFirst = DefaultConfig().StartAge, true
			lf, _ := run(t, c)
			for _, y := range []struct {
				name string
				r    *report.Report
			}{{"in line", r}, {"parents choose", pc}, {"live first", lf}} {
				t.Logf("%-14s startup p50/p95 %.0f/%.0f lag p50/p95 %.0f/%.0f continuity %.4f savings %.4f",
					y.name, y.r.StartupMs.P50, y.r.StartupMs.P95, y.r.LagMs.P50, y.r.LagMs.P95, *y.r.Continuity, *y.r.Savings)
			}
			if r.StartupMs.P95 > x.startupP95 || r.LagMs.P95 > x.lagP95 {
				t.Errorf("startup p95 %.0f ms, lag p95 %.0f ms; want at most %.0f and %.0f", r.StartupMs.P95, r.LagMs.P95, x.startupP95, x.lagP95)
			}
			if *r.Continuity < x.continuity {
				t.Errorf("continuity %.4f, want at least %.3f", *r.Continuity, x.continuity)
			}
			// Lag: the size cap cut parents choosing more (steady 1,852
			// -> 1,530 ms) than one start (1,814 -> 1,608): 5.1 % apart.
			if r.StartupMs.P95 > 0.85*pc.StartupMs.P95 || r.StartupMs.P50 > pc.StartupMs.P50 || r.LagMs.P95 > 1.08*pc.LagMs.P95 || *r.Continuity < *pc.Continuity-0.001 {
				t.Errorf("one start for every stripe: startup p50/p95 %.0f/%.0f ms, lag p95 %.0f ms, continuity %.4f; parents choosing %.0f/%.0f, %.0f, %.4f (want startup p95 15 %% lower, p50 not higher, lag at most 8 %% higher, continuity at most 0.001 lower)",
					r.StartupMs.P50, r.StartupMs.P95, r.LagMs.P95, *r.Continuity, pc.StartupMs.P50, pc.StartupMs.P95, pc.LagMs.P95, *pc.Continuity)
			}
			// Joins into the settled swarm (after the flash crowd; the
			// tracker then names the longer start age) start on the
			// newest group of pictures their parents hold. Measured
			// (churn, the windows 10-20 and 20-30 s, 8 and 9 joins):
			// startup p50 398/643 ms against 873/776 with parents
			// choosing; a window of a few joins is noisy, so each window
			// is held to not higher, and their mean to 20 % lower.
			var settled, chose float64
			for i, w := range r.Latency.ByTime {
				if w.FromS < 10 || w.Joins < 5 {
					continue
				}
				pw := pc.Latency.ByTime[i]
				t.Logf("joins at %.0f-%.0f s: %d, startup p50 %.0f ms; parents choosing %d, %.0f ms", w.FromS, w.ToS, w.Joins, w.StartupMs.P50, pw.Joins, pw.StartupMs.P50)
				if w.StartupMs.P50 > pw.StartupMs.P50 {
					t.Errorf("joins at %.0f-%.0f s: startup p50 %.0f ms, parents choosing %.0f", w.FromS, w.ToS, w.StartupMs.P50, pw.StartupMs.P50)
				}
				settled += w.StartupMs.P50
				chose += pw.StartupMs.P50
			}
			if x.churn > 0 && (chose == 0 || settled > 0.8*chose) {
				t.Errorf("joins after the flash crowd: startup p50s sum to %.0f ms, parents choosing %.0f (want 20 %% lower)", settled, chose)
			}
			// The steady block, as the acceptance scenario has it:
			// measured (churn) 17 joins from 10 s, startup p95 982 ms
			// (the whole run's 1,527), continuity 1.0000.
			if st := r.Steady; x.churn > 0 && (st == nil || st.Joins < 10 || st.StartupMs.P95 > 1100 || *st.Continuity < x.continuity) {
				t.Errorf("steady block %+v: want 10 joins or more, startup p95 at most 1,100 ms, continuity at least %.3f", st, x.continuity)
			}
			if lf.StartupMs.P95 > 2300 || lf.LagMs.P95 >= x.liveFirstLag*r.LagMs.P95 || *lf.Continuity < *r.Continuity {
				t.Errorf("live first: startup p95 %.0f ms, lag p95 %.0f ms, continuity %.4f; in line %.0f, %.0f, %.4f (want startup at most 2,300, lag below %.2f times in line's, continuity not lower)",
					lf.StartupMs.P95, lf.LagMs.P95, *lf.Continuity, r.StartupMs.P95, r.LagMs.P95, *r.Continuity, x.liveFirstLag)
			}
		})
	}
}

// The origin's size cap (Config.SliceCap, origin.ChunkerConfig.SliceCap)
// cuts the keyframe's slice (three times another) in two: its chunks
// cross each hop in halves that follow each other instead of one big
// chunk received whole before it is forwarded, so the keyframe arrives
// sooner and playout, which keeps its delay behind the slowest recent
// arrival, runs closer to live. The scenario at 300 viewers.
func TestSliceCapCutsLag(t *testing.T) {
	c := DefaultConfig()
	c.Scenario = "test"
	c.Peers, c.Duration, c.Seed = 300, 30*time.Second, 7
	c.UploadRatio, c.ISPs, c.OriginCapacity, c.FlashCrowd = 1.5, 4, 8, 5*time.Second
	capped, _ := run(t, c)
	c.SliceCap = 0
	whole, _ := run(t, c)
	for _, y := range []struct {
		name string
		r    *report.Report
	}{{"capped", capped}, {"whole", whole}} {
		t.Logf("%-7s startup p50/p95 %.0f/%.0f lag p50/p95 %.0f/%.0f keyframe arrival p50 %.0f continuity %.4f stalls %d",
			y.name, y.r.StartupMs.P50, y.r.StartupMs.P95, y.r.LagMs.P50, y.r.LagMs.P95, y.r.Latency.KeyframeArrivalMs.P50, *y.r.Continuity, y.r.Stalls)
	}
	// Measured: lag p50/p95 1,057/1,591 ms against 1,203/1,782,
	// keyframe arrival p50 498 against 695 ms, continuity 0.9994
	// against 0.9988, startup p95 1,546 against 1,742 ms. Lag p50 is
	// 12-15 % lower on each of seeds 1-10; p95, set by a few slow
	// viewers, 2-33 % (mean of the ten 1,852 against 2,164 ms). Seed 2
	// starts worse, p95 2,095 against 1,919 ms: in its flash crowd
	// parents' full queues drop the second half of some start
	// keyframes; at 2,000 viewers startup p95 is better on seeds 1 and
	// 2, 1,453/1,385 -> 1,395/1,317 ms.
	if capped.LagMs.P95 > 0.96*whole.LagMs.P95 || capped.LagMs.P50 > 0.92*whole.LagMs.P50 {
		t.Errorf("lag p50/p95 %.0f/%.0f ms with the cap, not 8/4 %% under %.0f/%.0f without", capped.LagMs.P50, capped.LagMs.P95, whole.LagMs.P50, whole.LagMs.P95)
	}
	if capped.Latency.KeyframeArrivalMs.P50 > 0.9*whole.Latency.KeyframeArrivalMs.P50 {
		t.Errorf("keyframe arrival p50 %.0f ms with the cap, not 10 %% under %.0f without", capped.Latency.KeyframeArrivalMs.P50, whole.Latency.KeyframeArrivalMs.P50)
	}
	if *capped.Continuity < *whole.Continuity-0.0005 || capped.StartupMs.P95 > 1.05*whole.StartupMs.P95 {
		t.Errorf("continuity %.4f, startup p95 %.0f ms with the cap; without %.4f, %.0f", *capped.Continuity, capped.StartupMs.P95, *whole.Continuity, whole.StartupMs.P95)
	}
}

// Issue 4, the flash crowd's bound: the report counts the viewers not
// playing 5 s after they joined, whether they started later or never.
func TestLateStarts(t *testing.T) {
	r, s := run(t, small(40, 15*time.Second, 1))
	l := r.Latency
	if l == nil || l.LateStarts != 0 || l.StartupMaxMs < r.StartupMs.P99 || l.StartupMaxMs > float64(LateStart/time.Millisecond) {
		t.Fatalf("a healthy swarm: latency %+v, startup %+v", l, r.StartupMs)
	}
	// One origin slot and peers that can forward almost nothing: most
	// viewers wait the whole run.
	c := small(40, 15*time.Second, 1)
	c.OriginCapacity = 1
	c.UploadRatio = 0.05
	r, s = run(t, c)
	slow := 0
	for _, v := range s.m.startup {
		if v > 5000 {
			slow++
		}
	}
	t.Logf("starved: %d started after 5 s, %d never started, max %.0f ms", slow, s.m.neverPlayed, r.Latency.StartupMaxMs)
	if s.m.neverPlayed == 0 || r.Latency.LateStarts != slow+s.m.neverPlayed {
		t.Fatalf("a starved swarm: %d late starts, want %d started after 5 s + %d never started (all joined over 5 s before the end)",
			r.Latency.LateStarts, slow, s.m.neverPlayed)
	}
}

// A new viewer pulls the missing chunks of its start picture from its
// partners (swarm.Config.StartPull) rather than waiting for a parent
// that went past it, or a slow one, and then for the origin, whose fetch
// budget refuses most start fetches in a flash crowd: the tail of the
// startups shortens, continuity holds. Measured (300 viewers joining in
// 5 s, 30 s; with pulls/without): seeds 1-3 startup p95 1,454/1,438,
// 1,839/2,310, 2,216/2,526 ms (before the queue's tie-break by part,
// seeds 4-6: 1,605/1,865, 1,933/1,945, 1,943/2,189), continuity
// 0.99950/0.99945, 0.99829/0.99865, 0.99843/0.99881, lag p95
// 1,471/1,437, 2,136/1,937, 2,076/1,956 ms. The test runs seeds 2 and
// 3 (seed 1 is a tie; the runs are slow under -race). At 2,000 and
// 10,000 viewers see the commit that brought swarm.Config.StartPull.
func TestStartPullsPicture(t *testing.T) {
	var with, without float64
	for seed := uint64(2); seed <= 3; seed++ {
		c := DefaultConfig()
		c.Scenario = "test"
		c.Peers, c.Duration, c.Seed = 300, 30*time.Second, seed
		c.UploadRatio, c.ISPs, c.OriginCapacity, c.FlashCrowd = 1.5, 4, 8, 5*time.Second
		r, _ := run(t, c)
		c.StartPull = -1
		off, _ := run(t, c)
		t.Logf("seed %d: startup p50/p95 %.0f/%.0f ms, lag p95 %.0f ms, continuity %.5f; without start pulls %.0f/%.0f, %.0f, %.5f",
			seed, r.StartupMs.P50, r.StartupMs.P95, r.LagMs.P95, *r.Continuity, off.StartupMs.P50, off.StartupMs.P95, off.LagMs.P95, *off.Continuity)
		if r.StartupMs.P95 > 1.03*off.StartupMs.P95 {
			t.Errorf("seed %d: startup p95 %.0f ms with start pulls, %.0f without (want at most 3 %% more)", seed, r.StartupMs.P95, off.StartupMs.P95)
		}
		if *r.Continuity < *off.Continuity-0.001 || r.LagMs.P95 > 1.2*off.LagMs.P95 {
			t.Errorf("seed %d: continuity %.5f, lag p95 %.0f ms with start pulls; without %.5f, %.0f", seed, *r.Continuity, r.LagMs.P95, *off.Continuity, off.LagMs.P95)
		}
		with += r.StartupMs.P95
		without += off.StartupMs.P95
	}
	if with > 0.92*without {
		t.Errorf("startup p95 summed over seeds 2 and 3: %.0f ms with start pulls, %.0f without (want 8 %% less)", with, without)
	}
}

// TestLagHistogramsGrow counts lags across the histograms' growth (they
// start short and grow: a run keeps a set per part) and merges two
// parts' sets: the percentiles and the tail's parts are those of all
// the samples, the longest lags in the last bucket.
func TestLagHistogramsGrow(t *testing.T) {
	var a, b qoe
	for _, ms := range []int64{5, 900, 4000} {
		a.lagged(ms)
	}
	for _, ms := range []int64{20, 70_000, 11 * 60_000} {
		b.lagged(ms)
	}
	a.add(&b)
	p := histPercentiles(a.lag, a.lagN)
	if a.lagN != 6 || p == nil || p.P50 != 900 || p.P95 != lagBuckets-1 || len(a.lag) > lagBuckets {
		t.Fatalf("lag: %d samples, percentiles %+v, %d buckets; want 6, p50 900, p95 %d, at most %d buckets", a.lagN, p, len(a.lag), lagBuckets-1, lagBuckets)
	}

	var l, o latency
	l.init()
	o.init()
	zero := time.Unix(0, 0)
	slice := func(l *latency, lag, arrival int64) {
		l.slice(0, lag, &swarm.Slice{Capture: zero, Done: zero.Add(time.Duration(arrival) * time.Millisecond)}, false)
	}
	slice(&l, 100, 40)
	slice(&o, 30_000, 29_000) // beyond the first growth
	slice(&o, 5_000, 1_000)
	l.merge(&o)
	lag := &report.Percentiles{P95: 5_000}
	r := l.report(nil, lag)
	if got := r.ArrivalMs; got == nil || got.P50 != 1_000 || got.P99 != 29_000 {
		t.Errorf("arrival percentiles %+v, want p50 1000, p99 29000", got)
	}
	// The tail: lags from p95 on, 5,000 and 30,000 ms.
	if r.LagTail == nil || r.LagTail.Arrival != 15_000 || r.LagTail.Margin != 2_500 {
		t.Errorf("tail %+v, want arrival 15000, margin 2500", r.LagTail)
	}
}
