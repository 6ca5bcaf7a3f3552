package sim

import (
	"math"
	"slices"
	"testing"
	"time"
)

func overlayOnly(peers int, d time.Duration, seed uint64) Config {
	c := DefaultConfig()
	c.Scenario = "overlay-test"
	c.Peers = peers
	c.Duration = d
	c.Seed = seed
	c.Overlay = true
	c.Media = false
	c.FlashCrowd = 10 * time.Second
	c.LookupEvery = 2 * time.Second
	return c
}

// Issue 6, acceptance (small): with churn, lookups find the key's owner,
// in O(log N) hops, and the ring is consistent soon after churn stops.
func TestOverlayChurn(t *testing.T) {
	c := overlayOnly(300, 100*time.Second, 3)
	c.Churn = 0.1
	c.CrashShare = 0.5
	c.ChurnStopAt = 70 * time.Second
	r, s := run(t, c)
	o := r.Overlay
	if o == nil || o.LookupSuccess == nil || o.LookupHops == nil || o.Consistent == nil {
		t.Fatalf("overlay figures missing: %+v", o)
	}
	if s.ov.lookups < 1000 {
		t.Fatalf("only %d lookups counted", s.ov.lookups)
	}
	if *o.LookupSuccess < 0.99 {
		t.Errorf("lookup success %.4f, want >= 0.99 (%v)", *o.LookupSuccess, s.Notes())
	}
	if bound := math.Log2(300)/2 + 2; o.LookupHops.Mean > bound {
		t.Errorf("mean hops %.2f over log2(N)/2+2 = %.2f", o.LookupHops.Mean, bound)
	}
	if !*o.Consistent {
		t.Error("ring not consistent at the end")
	}
	if ms := s.ov.churnConsistent; ms < 0 || ms > 30_000 {
		t.Errorf("ring consistent %d ms after churn stopped, want within 30 s", ms)
	}
	if r.Continuity != nil || r.Savings != nil {
		t.Error("an overlay-only run reports media figures")
	}
}

// Issue 6, acceptance (small): two halves partitioned, then healed: each
// half forms its own ring during the cut, and one consistent ring is
// back within 30 s of healing, at a reported message cost.
func TestOverlayPartitionHeal(t *testing.T) {
	c := overlayOnly(200, 150*time.Second, 5)
	c.PartitionAt = 30 * time.Second
	c.HealAt = 90 * time.Second
	r, s := run(t, c)
	o := r.Overlay
	if !s.ov.partitionSidesOK {
		t.Error("the halves never formed consistent rings of their own during the partition")
	}
	if o.MergeMs == nil || o.MergeMessagesPerPeer == nil {
		t.Fatalf("no merge measured: %+v (%v)", o, s.Notes())
	}
	if *o.MergeMs > 30_000 {
		t.Errorf("merge took %.0f ms, want within 30 s", *o.MergeMs)
	}
	if *o.MergeMessagesPerPeer <= 0 {
		t.Errorf("merge messages per peer %v", *o.MergeMessagesPerPeer)
	}
	if !*o.Consistent {
		t.Error("ring not consistent at the end")
	}
	if *o.LookupSuccess < 0.99 {
		t.Errorf("lookup success %.4f outside the partition", *o.LookupSuccess)
	}
}

// The merge's cost parameter: without spreading (fanout -1) the rings
// still merge (stabilisation zips them), at fewer merge messages.
func TestOverlayMergeFanout(t *testing.T) {
	var msgs []float64
	for _, f := range []int{-1, 4} {
		c := overlayOnly(100, 120*time.Second, 9)
		c.PartitionAt = 20 * time.Second
		c.HealAt = 60 * time.Second
		c.MergeFanout = f
		r, s := run(t, c)
		if r.Overlay.MergeMs == nil {
			t.Fatalf("fanout %d: no merge (%v)", f, s.Notes())
		}
		msgs = append(msgs, float64(s.ovMergeSent()))
	}
	if !(msgs[0] < msgs[1]) {
		t.Errorf("merge probes and hints sent: fanout -1 %v, fanout 4 %v: want fewer without spreading", msgs[0], msgs[1])
	}
}

// Same seed, same overlay trace; the overlay changes nothing when off.
func TestOverlayDeterministic(t *testing.T) {
	c := overlayOnly(60, 40*time.Second, 11)
	c.Churn = 0.2
	c.PartitionAt = 10 * time.Second
	c.HealAt = 20 * time.Second
	r1, _ := run(t, c)
	r2, _ := run(t, c)
	if *r1.TraceHash != *r2.TraceHash || reportJSON(t, r1) != reportJSON(t, r2) {
		t.Fatal("same seed, different runs")
	}
	c.Seed++
	r3, _ := run(t, c)
	if *r3.TraceHash == *r1.TraceHash {
		t.Fatal("another seed, same trace")
	}
}

// The overlay alongside the stream: a tracker outage does not stop
// playback, the ring stays whole, and the stream still plays on the side
// of a partition that keeps the origin.
func TestOverlayWithMedia(t *testing.T) {
	c := small(40, 60*time.Second, 13)
	c.Overlay = true
	c.KillTrackerAt = 15 * time.Second
	c.RestartTrackerAt = 30 * time.Second
	r, s := run(t, c)
	if r.Overlay == nil || !*r.Overlay.Consistent {
		t.Fatalf("overlay not consistent: %+v (%v)", r.Overlay, s.Notes())
	}
	if *r.Continuity < 0.99 {
		t.Errorf("continuity %.4f through a tracker outage", *r.Continuity)
	}
	if !slices.ContainsFunc(s.Notes(), func(n string) bool { return len(n) > 0 }) {
		t.Error("no overlay notes")
	}
}

// Issue 6, acceptance (small): during a partition the side that keeps the
// origin plays on (continuity >= 0.99); the rings merge after healing.
// The cut-off side, where every member starves alike, does not switch
// from one starved parent to another (chandelier.Pointless: at 300 peers
// 2,202 ring-rule switches before, 6 after).
func TestOverlayPartitionWithMedia(t *testing.T) {
	c := small(60, 90*time.Second, 17)
	c.Overlay = true
	c.PartitionAt = 30 * time.Second
	c.HealAt = 60 * time.Second
	r, s := run(t, c)
	sides := s.sideContinuity()
	if sides[0] == nil || *sides[0] < 0.99 {
		t.Errorf("continuity on the origin's side %v, want >= 0.99 (%v)", ptr(sides[0]), s.Notes())
	}
	if sides[1] == nil || *sides[1] >= *sides[0] {
		t.Errorf("the side cut off from the origin played as well as the other (%v vs %v): was it cut?", ptr(sides[1]), ptr(sides[0]))
	}
	if r.Overlay.MergeMs == nil || *r.Overlay.MergeMs > 30_000 || !*r.Overlay.Consistent {
		t.Errorf("rings did not merge: %+v", r.Overlay)
	}
	t.Logf("%d ring-rule switches, %d candidates passed over as pointless", s.m.ringRepairs, s.m.pointless)
	// Measured: 21 switches (16 with whole keyframe slices, before
	// the size cap; 2,202 at 300 peers before Pointless).
	if s.m.pointless == 0 || s.m.ringRepairs > 30 {
		t.Errorf("%d ring-rule switches, %d candidates passed over as pointless: the cut-off side switched between starved parents", s.m.ringRepairs, s.m.pointless)
	}
}

// Issue 6 (scaled down): a tracker outage with churn. Parents lost while
// the tracker is away are replaced by the ring rule (chandelier.RingParent:
// a ring member of smaller depth with room), and a parent that cannot
// reach the tracker takes no more stripes than its upload carries, so the
// trees stay loop-free and fed: continuity holds through the outage and
// the tracker's restart (0.78 here before the rule and the cap; 0.925
// with the rule and the cap but candidates only from the ring tables;
// 0.984 with the members found by partner discovery, offers of room).
func TestOverlayOutageChurn(t *testing.T) {
	c := DefaultConfig()
	c.Scenario = "outage-churn"
	c.Peers = 150
	c.Duration = 70 * time.Second
	c.Seed = 2
	c.FlashCrowd = 5 * time.Second
	c.Churn = 0.2
	c.KillTrackerAt = 15 * time.Second
	c.RestartTrackerAt = 55 * time.Second
	c.Overlay = true
	r, s := run(t, c)
	if s.m.ringRepairs == 0 {
		t.Error("no stripe was switched to a ring member during the outage")
	}
	if s.ov.offerRepairs == 0 {
		t.Error("no stripe was switched to a member found by partner discovery (offers)")
	}
	if *r.Continuity < 0.95 {
		t.Errorf("continuity %.4f through a tracker outage with churn, want >= 0.95 (%v)", *r.Continuity, s.Notes())
	}
	t.Logf("continuity %.4f, %d ring-rule switches (%d to offers), %d transient cycles", *r.Continuity, s.m.ringRepairs, s.ov.offerRepairs, s.TransientCycles())
}

// Issue 6: the ring's gossip estimates (push-sum) of its size, the mean
// upload and the mean stream health converge, at every member, to within
// a margin of the truth over the members, with churn and the stream on.
func TestOverlayGossipEstimates(t *testing.T) {
	c := DefaultConfig()
	c.Scenario = "gossip-estimates"
	c.Peers = 200
	c.Duration = 50 * time.Second
	c.Seed = 3
	c.FlashCrowd = 5 * time.Second
	c.Churn = 0.05
	c.Overlay = true
	_, s := run(t, c)
	e := s.ovEstimates()
	t.Logf("%+v", e)
	if e.Members < c.Peers*9/10 || e.Final < e.Members*8/10 {
		t.Fatalf("%d members of %d viewers, %d of them with final figures", e.Members, c.Peers, e.Final)
	}
	if e.PeersP90 > 0.25 || e.UploadP90 > 0.10 || e.HealthP90 > 0.03 {
		t.Errorf("gossip estimates off at the 90th percentile of the members: ring size %.1f %%, mean upload %.1f %% (want <= 25 %%, 10 %%), health %.3f (want <= 0.03)", 100*e.PeersP90, 100*e.UploadP90, e.HealthP90)
	}
}

// Issue 6: a parent over its capacity when the tracker goes (the
// tracker's accept slack, backup switches) lets go of children until it
// is within it: no round rebalances it during the outage, and its queues
// would put its subtree ever further behind live (at 300 peers, seed 1,
// one parent two feeds over put a tenth of the viewers 10 s behind live
// by the restart; continuity in the minute after it 0.78, 0.99 with
// shedding). Here (100 peers, seed 4; seed 6 until the viewers were
// dealt into 16 parts, and seed 4 until the hellos carried the child's
// stripes) a parent is over when the tracker dies: over seeds 1-16 it
// is on seeds 4 and 8.
func TestOutageShedsOverload(t *testing.T) {
	c := DefaultConfig()
	c.Scenario = "outage-shed"
	c.Peers = 100
	c.Duration = 25 * time.Second
	c.Seed = 4
	c.Churn = 0.1
	c.KillTrackerAt = 12 * time.Second
	c.Overlay = true
	_, s := run(t, c)
	if s.m.shed == 0 {
		t.Error("no parent let go of a child during the outage")
	}
	for _, i := range s.aliveAll() {
		p := s.peers[i]
		if f := s.ovFeeds(p, p); f > p.capacity {
			t.Errorf("peer %d feeds %d stripes, capacity %d, 13 s into the outage", i, f, p.capacity)
		}
	}
	t.Logf("%d children let go", s.m.shed)
}
