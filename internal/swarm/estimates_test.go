package swarm

import (
	"errors"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm/swarmtest"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// Issue 6: while the tracker is away a node takes no more stripe feeds
// than its capacity; with the tracker up it keeps MaxChildren's slack.
func TestAcceptLimitWhileTrackerAway(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	cfg := testConfig(st)
	cfg.MaxChildren, cfg.Capacity = 6, 3
	hello := func(mask uint16) wire.Hello { return wire.Hello{Channel: testChannel, Stripes: mask} }
	n := mustNew(t, cfg)
	for _, c := range []NodeID{"a", "b", "c", "d"} { // 4 feeds: the tracker's slack
		if err := n.AddChild(epoch, c, hello(0b0001)); err != nil {
			t.Fatalf("tracker up: child %s: %v", c, err)
		}
	}
	n.SetEstimates(epoch, Estimates{Peers: 300, UploadRatio: 2, Health: 1, TrackerAway: true})
	if got := n.Estimates(); !got.TrackerAway || got.Peers != 300 {
		t.Fatalf("Estimates() = %+v", got)
	}
	if err := n.AddChild(epoch, "e", hello(0b0001)); !errors.Is(err, ErrFull) {
		t.Fatalf("tracker away, over capacity: %v, want ErrFull", err)
	}
	// A renewed subscription that does not grow is kept; one that grows
	// past the capacity is refused and changes nothing.
	if err := n.AddChild(epoch, "a", hello(0b0010)); err != nil {
		t.Fatalf("renewal on another stripe: %v", err)
	}
	if err := n.AddChild(epoch, "a", hello(0b0011)); !errors.Is(err, ErrFull) {
		t.Fatalf("renewal growing past capacity: %v, want ErrFull", err)
	}
	if got := n.ChildStripes("a"); got != 0b0010 {
		t.Fatalf("refused renewal changed the subscription to %04b", got)
	}
	n.RemoveChild("b")
	n.RemoveChild("c")
	if err := n.AddChild(epoch, "e", hello(0b0001)); err != nil {
		t.Fatalf("tracker away, within capacity: %v", err)
	}
	if err := n.AddChild(epoch, "f", hello(0b0011)); !errors.Is(err, ErrFull) {
		t.Fatalf("a child of two feeds at 3 of 3: %v, want ErrFull", err)
	}
	// The tracker is back: its slack again.
	n.SetEstimates(epoch, Estimates{Peers: 300, UploadRatio: 2, Health: 1})
	if err := n.AddChild(epoch, "f", hello(0b0011)); err != nil {
		t.Fatalf("tracker back: %v", err)
	}
	// Capacity unknown (0): MaxChildren only.
	cfg.Capacity = 0
	u := mustNew(t, cfg)
	u.SetEstimates(epoch, Estimates{TrackerAway: true})
	for _, c := range []NodeID{"a", "b", "c", "d", "e", "f"} {
		if err := u.AddChild(epoch, c, hello(0b1111)); err != nil {
			t.Fatalf("unknown capacity: child %s: %v", c, err)
		}
	}
}

// Issue 6: while the swarm's health is poor (the gossip's mean
// continuity below PoorHealth) a viewer keeps half a PlayoutDelay more
// margin behind the arrivals, and gives it back once health is good.
func TestPlayoutMarginFollowsHealth(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	kf := firstKeyframe(t, st)
	const (
		transit = 50 * time.Millisecond
		delay   = 400 * time.Millisecond
	)
	n := directNode(t, st, func(c *Config) { c.PlayoutDelay, c.StartMargin = delay, 200*time.Millisecond })
	var played []Slice
	run := func(from, to uint64) {
		for seq := from; seq < to; seq++ {
			now := st.Capture(seq).Add(transit)
			for dl := n.NextDeadline(); !dl.IsZero() && dl.Before(now); dl = n.NextDeadline() {
				n.Tick(dl)
				played = append(played, n.Ready().Play...)
			}
			feed(t, n, st, now, "P", seq)
			played = append(played, n.Ready().Play...)
		}
	}
	lag := func() time.Duration {
		last := played[len(played)-1]
		return last.PlayAt.Sub(last.Capture)
	}
	near := func(got, want time.Duration) bool { return got > want-time.Millisecond && got < want+time.Millisecond }
	run(kf, kf+100)
	if !near(lag(), delay+transit) {
		t.Fatalf("healthy swarm: %v behind capture, want %v", lag(), delay+transit)
	}
	// Health unknown (0) or good changes nothing.
	n.SetEstimates(st.Capture(kf+100), Estimates{Health: 0.995})
	run(kf+100, kf+150)
	if !near(lag(), delay+transit) {
		t.Fatalf("health 0.995: %v behind capture, want %v", lag(), delay+transit)
	}
	n.SetEstimates(st.Capture(kf+150), Estimates{Health: 0.95})
	run(kf+150, kf+250)
	if want := delay + delay/2 + transit; !near(lag(), want) {
		t.Fatalf("poor health: %v behind capture, want %v", lag(), want)
	}
	n.SetEstimates(st.Capture(kf+250), Estimates{Health: 1})
	run(kf+250, kf+350)
	if !near(lag(), delay+transit) {
		t.Fatalf("health good again: %v behind capture, want back to %v", lag(), delay+transit)
	}
	checkPlayed(t, st, played)
	if s := n.Stats(); s.Stalls != 0 || s.LostSlices != 0 {
		t.Fatalf("stalls %d, lost %d", s.Stalls, s.LostSlices)
	}
	lo := time.Duration(float64(DefaultSliceDuration) * (1 - DefaultCatchUp))
	hi := time.Duration(float64(DefaultSliceDuration) * (1 + DefaultCatchUp))
	for i := 1; i < len(played); i++ {
		if gap := played[i].PlayAt.Sub(played[i-1].PlayAt); gap < lo-time.Millisecond || gap > hi+time.Millisecond {
			t.Fatalf("slices %d and %d played %v apart, want %v..%v", played[i-1].Seq, played[i].Seq, gap, lo, hi)
		}
	}
}
