package swarm

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm/swarmtest"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// A node that holds its start picture on some stripes only fetches the
// picture's missing chunks StartFetch after its first chunk arrived,
// not a whole ParentTimeout later — the keyframe slice's, and those of
// the slice that continues it when the origin's size cap cut the
// picture in two; the rest of the start group still waits ParentTimeout
// for the parents' pushes.
func TestStartFetch(t *testing.T) {
	for _, split := range []bool{false, true} {
		st := swarmtest.NewStream(testChannel, 4, epoch)
		st.SplitKeyframes = split
		last := uint64(0) // the picture's last slice
		if split {
			last = 1
		}
		const wait = 150 * time.Millisecond
		n := directNode(t, st, func(c *Config) { c.StartFetch = wait })
		var picture []wire.ID
		for seq := uint64(0); seq <= last+1; seq++ {
			feed(t, n, st, epoch.Add(time.Duration(seq)*10*time.Millisecond), "P", seq, 0, 1)
			if seq <= last {
				picture = append(picture, wire.ID{Seq: seq, Stripe: 2}, wire.ID{Seq: seq, Stripe: 3})
			}
		}
		n.Tick(epoch.Add(wait - time.Millisecond))
		if f := n.Ready().Fetches; len(f) != 0 {
			t.Fatalf("split %v: fetches before StartFetch: %v", split, f)
		}
		n.Tick(epoch.Add(wait))
		r := n.Ready()
		if f := r.Fetches; !slices.Equal(f, picture) {
			t.Fatalf("split %v: fetches at StartFetch %v, want the start picture's missing chunks %v", split, f, picture)
		}
		if !slices.Equal(r.FetchDue, make([]time.Time, len(picture))) {
			t.Fatalf("split %v: start fetches due %v, want none (not playing yet)", split, r.FetchDue)
		}
		n.Tick(epoch.Add(DefaultParentTimeout))
		if f := n.Ready().Fetches; !slices.Contains(f, wire.ID{Seq: last + 1, Stripe: 2}) || !slices.Contains(f, wire.ID{Seq: last + 1, Stripe: 3}) {
			t.Fatalf("split %v: fetches at ParentTimeout %v, want the slice after the picture's", split, f)
		}
	}
}

// StartFetch defaults to ParentTimeout: the start slice waits for the
// parents as long as before.
func TestStartFetchDefault(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := directNode(t, st, func(c *Config) { c.ParentTimeout = 900 * time.Millisecond })
	if got := n.Config().StartFetch; got != 900*time.Millisecond {
		t.Fatalf("StartFetch default %v, want ParentTimeout", got)
	}
	if _, err := New(Config{Channel: "tv", PublicKey: st.Public(), Stripes: 4, StartFetch: -time.Second}); err == nil {
		t.Fatal("negative StartFetch accepted")
	}
}

// A new child's backlog is marked Backlog (the driver sends it after
// live chunks); a renewed subscription's catch-up on the stripes it
// added is not: it is as urgent as the live chunks.
func TestBacklogMarkedForNewChildOnly(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := mustNew(t, testConfig(st))
	for seq := uint64(0); seq < 5; seq++ {
		feed(t, n, st, st.Capture(seq), "P", seq)
	}
	n.Ready()
	now := st.Capture(4)
	if err := n.AddChild(now, "C", wire.Hello{Channel: testChannel, Stripes: 0b0001}); err != nil {
		t.Fatal(err)
	}
	r := n.Ready()
	if len(r.Sends) != 5 {
		t.Fatalf("new child's backlog %d sends, want 5", len(r.Sends))
	}
	for _, s := range r.Sends {
		if !s.Backlog {
			t.Fatalf("new child's send %v not marked Backlog", s.ID)
		}
	}
	if err := n.AddChild(now, "C", wire.Hello{Channel: testChannel, Stripes: 0b0011, From: 2}); err != nil {
		t.Fatal(err)
	}
	r = n.Ready()
	if len(r.Sends) != 3 {
		t.Fatalf("renewal sent %d chunks, want slices 2..4 of stripe 1", len(r.Sends))
	}
	for _, s := range r.Sends {
		if s.Backlog || s.ID.Stripe != 1 {
			t.Fatalf("renewal send %+v, want stripe 1 unmarked", s)
		}
	}
}

// With StartHeldRun a start slice plays at once only when the slices
// after it are held complete, without a gap, for StartMargin: newer
// slices alone do not count. With live chunks ahead of the backlog (a
// parent's LiveFirst), the live slices come before the rest of the
// start's group, and a start on them played the start slice, then
// waited for (or fetched) the slices after it.
func TestStartWaitsForTheGroup(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	kf := st.KeyframeEvery
	const margin = 200 * time.Millisecond
	n := directNode(t, st, func(c *Config) {
		c.PlayoutDelay, c.StartMargin, c.StartHeldRun = 500*time.Millisecond, margin, true
	})
	t0 := st.Capture(kf + 6).Add(50 * time.Millisecond)
	for _, seq := range []uint64{kf + 5, kf + 6} { // live first
		feed(t, n, st, t0, "P", seq)
	}
	feed(t, n, st, t0.Add(10*time.Millisecond), "P", kf) // the start slice
	if p := n.Ready().Play; len(p) != 0 {
		t.Fatalf("played %d slices with the group's rest missing", len(p))
	}
	n.Tick(t0.Add(60 * time.Millisecond))
	if p := n.Ready().Play; len(p) != 0 {
		t.Fatalf("played %d slices with the group's rest missing", len(p))
	}
	if dl := n.NextDeadline(); dl.IsZero() || dl.After(t0.Add(10*time.Millisecond+margin)) {
		t.Fatalf("next deadline %v, want by StartMargin after the start slice completed", dl.Sub(t0))
	}
	// The rest of the group comes: the start plays at once.
	group := t0.Add(100 * time.Millisecond)
	for seq := kf + 1; seq <= kf+4; seq++ {
		feed(t, n, st, group, "P", seq)
	}
	p := n.Ready().Play
	if len(p) == 0 || p[0].Seq != kf || !p[0].PlayAt.Equal(group) {
		t.Fatalf("played %+v, want slice %d at once when its group completed", p, kf)
	}
}

// Two parents that hold different parts of the stream (one is deeper: its
// newest slice is older) judge a child's start by themselves with
// KeyframeWait and disagree: one sends the group of the newest keyframe,
// the other only live chunks, and the child holds that keyframe on some
// stripes only. A child that names its start (Hello.Start) gets every
// stripe from the same keyframe: the first captured at or after it, or
// live chunks that bring it when a parent does not hold it yet.
func TestHelloStartOneKeyframe(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	kf := firstKeyframe(t, st) + st.KeyframeEvery // a keyframe with one before it
	parent := func(newest uint64) *Node {
		cfg := testConfig(st)
		cfg.KeyframeWait = 700 * time.Millisecond
		n := mustNew(t, cfg)
		for seq := kf - st.KeyframeEvery; seq <= newest; seq++ {
			feed(t, n, st, st.Capture(seq), "P", seq)
		}
		n.Ready()
		return n
	}
	first := func(n *Node, now time.Time, h wire.Hello) uint64 { // first seq sent; 0: none
		t.Helper()
		if err := n.AddChild(now, "C", h); err != nil {
			t.Fatal(err)
		}
		r := n.Ready()
		if len(r.Sends) == 0 {
			return 0
		}
		return r.Sends[0].ID.Seq
	}
	now := st.Capture(kf + 5)
	shallow, deep := parent(kf+4), parent(kf+1)
	hello := wire.Hello{Channel: testChannel, Stripes: 0b0001}
	if a, b := first(shallow, now, hello), first(deep, now, hello); a == b {
		t.Fatalf("without a start both parents sent from %d: the test does not show the disagreement", a)
	}
	for _, tt := range []struct {
		name        string
		start       time.Time
		shallow     uint64 // first seq sent (0: none, live only)
		deep        uint64
		deepNewest  uint64
		liveBringKF bool // the deep parent's next live chunk is the keyframe
	}{
		{"the held keyframe", st.Capture(kf).Add(-50 * time.Millisecond), kf, kf, kf + 1, false},
		{"a keyframe to come", st.Capture(kf).Add(50 * time.Millisecond), 0, 0, kf + 1, false},
		{"the deep parent does not hold it yet", st.Capture(kf).Add(-50 * time.Millisecond), kf, 0, kf - 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			shallow, deep := parent(kf+4), parent(tt.deepNewest)
			h := hello
			h.Start = tt.start.UnixNano()
			if got := first(shallow, now, h); got != tt.shallow {
				t.Errorf("shallow parent sent from %d, want %d", got, tt.shallow)
			}
			if got := first(deep, now, h); got != tt.deep {
				t.Errorf("deep parent sent from %d, want %d", got, tt.deep)
			}
			if tt.liveBringKF {
				feed(t, deep, st, st.Capture(kf), "P", kf)
				if r := deep.Ready(); len(r.Sends) != 1 || r.Sends[0].ID != (wire.ID{Seq: kf, Stripe: 0}) {
					t.Errorf("the keyframe arriving live: sends %v, want its stripe 0", r.Sends)
				}
			}
		})
	}
	// A start far in the past (a child's clock behind) counts from twice
	// MaxBacklog before the newest slice: not the whole window.
	old := parent(kf + 4)
	for seq := kf + 5; seq < kf+5*st.KeyframeEvery; seq++ {
		feed(t, old, st, st.Capture(seq), "P", seq)
	}
	old.Ready()
	newest := kf + 5*st.KeyframeEvery - 1
	h := hello
	h.Start = epoch.Add(-time.Hour).UnixNano()
	got := first(old, st.Capture(newest), h)
	if lim := st.Capture(newest).Add(-2 * DefaultMaxBacklog); st.Capture(got).Before(lim) || !st.Keyframe(got) {
		t.Errorf("a start an hour old: sent from %d (captured %v before the newest), want a keyframe within 2 s", got, st.Capture(newest).Sub(st.Capture(got)))
	}
}

// HelloStart is StartAge before the node's first hello, the same for the
// hellos up to StartAge after it while the node has not started, renewed
// for a later one, and 0 once playout runs or without StartAge.
func TestHelloStart(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	const age = 600 * time.Millisecond
	n := directNode(t, st, func(c *Config) { c.StartAge = age })
	t0 := epoch.Add(time.Second)
	want := t0.Add(-age).UnixNano()
	if got := n.HelloStart(t0); got != want {
		t.Fatalf("first hello's start %d, want %d", got, want)
	}
	if got := n.HelloStart(t0.Add(age)); got != want {
		t.Fatalf("a later hello's start %d, want the first's %d", got, want)
	}
	later := t0.Add(age + time.Millisecond)
	if got := n.HelloStart(later); got != later.Add(-age).UnixNano() {
		t.Fatalf("a stale start was kept: %d", got)
	}
	kf := firstKeyframe(t, st)
	for seq := kf; seq < kf+4; seq++ {
		feed(t, n, st, later, "P", seq)
	}
	n.Tick(later.Add(time.Second))
	if len(n.Ready().Play) == 0 {
		t.Fatal("the node did not start")
	}
	if got := n.HelloStart(later.Add(time.Second)); got != 0 {
		t.Fatalf("start %d once playing, want 0", got)
	}
	m := directNode(t, st, nil)
	if got := m.HelloStart(t0); got != 0 {
		t.Fatalf("start %d without StartAge, want 0", got)
	}
	m.SetStartAge(time.Second) // the tracker's answer
	if got := m.HelloStart(t0); got != t0.Add(-time.Second).UnixNano() {
		t.Fatalf("start %d after SetStartAge, want a second before the hello", got)
	}
	if _, err := New(Config{Channel: "tv", PublicKey: st.Public(), Stripes: 4, StartAge: -time.Second}); err == nil {
		t.Fatal("negative StartAge accepted")
	}
}

// A keyframe slice the origin's size cap closed (duration 0) is one
// start with the slice that continues it: the node does not start while
// the continuation is incomplete, even with newer slices held, and
// starts at the keyframe once it completes. The continuation is due
// with the keyframe, and the slice after it at its own capture.
func TestStartWaitsForContinuation(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	st.SplitKeyframes = true
	n := directNode(t, st, func(c *Config) { c.StartMargin = ViewerStartMargin })
	now := st.Capture(10)
	feed(t, n, st, now, "P", 10)
	feed(t, n, st, now, "P", 11, 0, 1, 2)
	for seq := uint64(12); seq < 16; seq++ {
		feed(t, n, st, now, "P", seq)
	}
	n.Tick(now)
	if _, ok := n.Due(10); ok {
		t.Fatal("started on a keyframe whose continuation is incomplete")
	}
	feed(t, n, st, now.Add(5*time.Millisecond), "P", 11, 3)
	n.Tick(now.Add(5 * time.Millisecond))
	due10, ok := n.Due(10)
	if !ok {
		t.Fatal("did not start once the keyframe's continuation completed")
	}
	if due11, _ := n.Due(11); !due11.Equal(due10) {
		t.Fatalf("continuation due %v after its keyframe", due11.Sub(due10))
	}
	if due12, _ := n.Due(12); due12.Sub(due10) != st.Capture(12).Sub(st.Capture(10)) {
		t.Fatalf("slice after the continuation due %v after the keyframe, want %v", due12.Sub(due10), st.Capture(12).Sub(st.Capture(10)))
	}
	if got := n.Ready().Play; len(got) == 0 || got[0].Seq != 10 || !got[0].Keyframe {
		t.Fatalf("played %v, want the keyframe slice 10 first", seqsOf(got))
	}
}

// A continuation not held yet is predicted at its keyframe's capture
// (the keyframe lasts 0), not a slice later: it is asked for and due
// with the keyframe.
func TestPredictContinuation(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	st.SplitKeyframes = true
	n := directNode(t, st, nil)
	for seq := uint64(7); seq <= 10; seq++ {
		feed(t, n, st, st.Capture(seq), "P", seq)
	}
	c11, ok := n.captureOf(11)
	if !ok || !c11.Time().Equal(st.Capture(10)) {
		t.Fatalf("continuation 11 predicted at %v, want its keyframe's capture %v", c11.Time(), st.Capture(10))
	}
	if c12, _ := n.captureOf(12); !c12.Time().Equal(st.Capture(11).Add(st.SliceDuration)) {
		t.Fatalf("slice 12 predicted at %v, want %v", c12.Time(), st.Capture(11).Add(st.SliceDuration))
	}
	// Held above: no prediction later than the held slice's capture.
	feed(t, n, st, st.Capture(12), "P", 12)
	if c11, _ := n.captureOf(11); c11.Time().After(st.Capture(12)) {
		t.Fatalf("continuation predicted at %v, after slice 12's capture %v", c11.Time(), st.Capture(12))
	}
}

// startPullNode returns a node that holds the split start picture (slices
// kf and kf+1) on stripes 0-2 from parent P, while stripe 3's parent Q
// pushes (after) slice after; partner R's map shows the whole picture.
func startPullNode(t *testing.T, after uint64, mutate ...func(*Config)) (n *Node, st *swarmtest.Stream, t0 time.Time) {
	t.Helper()
	st = swarmtest.NewStream(testChannel, 4, epoch)
	st.SplitKeyframes = true
	kf := st.KeyframeEvery
	t0 = st.Capture(kf).Add(300 * time.Millisecond)
	set := t0.Add(-50 * time.Millisecond)
	cfg := testConfig(st)
	for _, f := range mutate {
		f(&cfg)
	}
	n = mustNew(t, cfg)
	n.SetParent(set, -1, "P")
	n.SetParent(set, 3, "Q")
	n.ParentUp(set, "P")
	n.ParentUp(set, "Q")
	n.SetPartners(set, []NodeID{"R"})
	held := make([]uint16, 4)
	for i := range held {
		held[i] = 0b1111
	}
	if err := n.HandleMap(t0, "R", wire.BufferMap{First: kf, Stripes: 4, Held: held}); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{kf, kf + 1} {
		feed(t, n, st, t0, "P", seq, 0, 1, 2)
	}
	if after > 0 {
		feed(t, n, st, t0, "Q", after, 3)
	}
	return n, st, t0
}

// Before playout starts, a chunk of the start picture its stripe's
// parent went past (a parent the tracker moved the stripe to starts it
// after the picture) is pulled at once from a partner whose map shows
// it; the origin is asked for the picture's rest only pullPatience
// later (for the keyframe slice itself, at StartFetch as before).
func TestStartPullsPassedPicture(t *testing.T) {
	n, st, t0 := startPullNode(t, swarmtest.NewStream(testChannel, 4, epoch).KeyframeEvery+2)
	kf := st.KeyframeEvery
	r := n.Ready()
	want := []Pull{{To: "R", ID: wire.ID{Seq: kf, Stripe: 3}}, {To: "R", ID: wire.ID{Seq: kf + 1, Stripe: 3}}}
	if !slices.Equal(r.Pulls, want) {
		t.Fatalf("pulls %v, want %v", r.Pulls, want)
	}
	if len(r.Fetches) != 0 {
		t.Fatalf("fetched %v while the partner was asked", r.Fetches)
	}
	n.Tick(t0.Add(pullPatience))
	if f := n.Ready().Fetches; !slices.Contains(f, wire.ID{Seq: kf + 1, Stripe: 3}) {
		t.Fatalf("fetches pullPatience after the pull: %v", f)
	}
}

// A chunk of the start picture whose parent still pushes the stripe in
// order is not pulled at once (it is most likely on its way), only
// DefaultStartPull after the picture's first chunk arrived.
func TestStartPullWaitsForPushingParent(t *testing.T) {
	n, st, t0 := startPullNode(t, 0)
	kf := st.KeyframeEvery
	if p := n.Ready().Pulls; len(p) != 0 {
		t.Fatalf("pulled %v at once from a parent that may still push it", p)
	}
	n.Tick(t0.Add(DefaultStartPull - time.Millisecond))
	if p := n.Ready().Pulls; len(p) != 0 {
		t.Fatalf("pulled %v before DefaultStartPull", p)
	}
	n.Tick(t0.Add(DefaultStartPull))
	if p := n.Ready().Pulls; !slices.Contains(p, Pull{To: "R", ID: wire.ID{Seq: kf, Stripe: 3}}) {
		t.Fatalf("pulls at DefaultStartPull %v, want the picture's missing chunks", p)
	}
}

// A start on a picture completed by asking (a pull, as here, or a fetch)
// waits for the slices after it held complete, as with StartHeldRun:
// newer slices on the other stripes do not count, for the stripe's
// parent went past the picture and the slices after it come by asking
// too. Without that, most stalls at 2,000 viewers came right after such
// starts.
func TestStartOnAskedPictureWaitsForRun(t *testing.T) {
	const margin = 250 * time.Millisecond
	kf := swarmtest.NewStream(testChannel, 4, epoch).KeyframeEvery
	n, st, t0 := startPullNode(t, kf+3, func(c *Config) { c.StartMargin, c.PlayoutDelay = margin, 500*time.Millisecond })
	for _, seq := range []uint64{kf + 2, kf + 3} {
		feed(t, n, st, t0, "P", seq, 0, 1, 2)
	}
	r := n.Ready()
	for _, id := range []wire.ID{{Seq: kf, Stripe: 3}, {Seq: kf + 1, Stripe: 3}, {Seq: kf + 2, Stripe: 3}} {
		if !slices.Contains(r.Pulls, Pull{To: "R", ID: id}) {
			t.Fatalf("pulls %v, want %v (the picture, and the run no parent will push)", r.Pulls, id)
		}
	}
	at := t0.Add(20 * time.Millisecond)
	for _, seq := range []uint64{kf, kf + 1} {
		_, raws := st.Slice(seq)
		if err := n.HandlePulled(at, "R", raws[3]); err != nil {
			t.Fatal(err)
		}
	}
	if p := n.Ready().Play; len(p) != 0 {
		t.Fatalf("played %d slices at once with slice %d incomplete", len(p), kf+2)
	}
	if dl := n.NextDeadline(); dl.IsZero() || dl.After(at.Add(margin)) {
		t.Fatalf("next deadline %v after the picture completed, want within StartMargin", dl.Sub(at))
	}
	// The run completes: the start plays at once.
	_, raws := st.Slice(kf + 2)
	if err := n.HandlePulled(at.Add(10*time.Millisecond), "R", raws[3]); err != nil {
		t.Fatal(err)
	}
	if p := n.Ready().Play; len(p) == 0 || p[0].Seq != kf {
		t.Fatalf("played %v once the run completed, want the start picture", seqsOf(p))
	}
}

// A start on a picture its parents pushed whole plays at once when newer
// slices are held, complete or not (StartMargin without StartHeldRun).
func TestStartOnPushedPictureAtOnce(t *testing.T) {
	const margin = 250 * time.Millisecond
	kf := swarmtest.NewStream(testChannel, 4, epoch).KeyframeEvery
	n, st, t0 := startPullNode(t, 0, func(c *Config) { c.StartMargin, c.PlayoutDelay = margin, 500*time.Millisecond })
	for _, seq := range []uint64{kf + 2, kf + 3} {
		feed(t, n, st, t0, "P", seq, 0, 1, 2)
	}
	n.Ready()
	at := t0.Add(20 * time.Millisecond)
	for _, seq := range []uint64{kf, kf + 1} {
		feed(t, n, st, at, "Q", seq, 3)
	}
	if p := n.Ready().Play; len(p) == 0 || p[0].Seq != kf {
		t.Fatalf("played %v, want the start picture at once", seqsOf(p))
	}
}
