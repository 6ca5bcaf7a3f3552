package swarm

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm/swarmtest"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// A node that holds its start keyframe slice on some stripes only fetches
// that slice's missing chunks StartFetch after its first chunk arrived,
// not a whole ParentTimeout later; the rest of the start group still
// waits ParentTimeout for the parents' pushes.
func TestStartFetch(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	const wait = 150 * time.Millisecond
	n := directNode(t, st, func(c *Config) { c.StartFetch = wait })
	feed(t, n, st, epoch, "P", 0, 0, 1)
	feed(t, n, st, epoch.Add(10*time.Millisecond), "P", 1, 0, 1)
	n.Tick(epoch.Add(wait - time.Millisecond))
	if f := n.Ready().Fetches; len(f) != 0 {
		t.Fatalf("fetches before StartFetch: %v", f)
	}
	n.Tick(epoch.Add(wait))
	if f := n.Ready().Fetches; !slices.Equal(f, []wire.ID{{Seq: 0, Stripe: 2}, {Seq: 0, Stripe: 3}}) {
		t.Fatalf("fetches at StartFetch %v, want the start slice's missing chunks only", f)
	}
	n.Tick(epoch.Add(DefaultParentTimeout))
	if f := n.Ready().Fetches; !slices.Contains(f, wire.ID{Seq: 1, Stripe: 2}) || !slices.Contains(f, wire.ID{Seq: 1, Stripe: 3}) {
		t.Fatalf("fetches at ParentTimeout %v, want the next slice's", f)
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
