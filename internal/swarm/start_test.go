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
