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
