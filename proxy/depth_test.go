package proxy

import (
	"context"
	"log/slog"
	randv2 "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/overlay"
	"github.com/swarmtv/swarmtv/tracker"
)

// startOverlay runs a real overlay driver on loopback (stopped at the
// end of the test).
func startOverlay(t *testing.T, seed uint64) (*transport.Overlay, *overlay.Node, *transport.Identity, tracker.NodeInfo) {
	t.Helper()
	id, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	ep, err := transport.Listen("127.0.0.1:0", id, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	node, err := overlay.New(overlay.Config{Self: transport.OverlayPeer(ep.ID(), ep.Advertised("")), Rand: randv2.NewPCG(seed, 2)})
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	ov, err := transport.NewOverlay(transport.OverlayConfig{Node: node, Endpoint: ep, Channel: "tv", Accept: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ov.Run(context.Background()) }()
	t.Cleanup(func() { ov.Close(); <-done; ep.Close() })
	return ov, node, id, tracker.NodeInfo{ID: string(ep.ID()), Addr: ep.Addr().String()}
}

// Issue 6: a peer takes its depth from its parent (the depth the parent
// tells, plus one; 1 under the origin), over real overlay connections,
// not from an older tree view; while the tracker is away it never grows,
// and once the tracker answers again it follows the parent.
func TestDepthFromParent(t *testing.T) {
	pov, _, _, parent := startOverlay(t, 1)
	cov, _, cid, _ := startOverlay(t, 2)
	origin := tracker.NodeInfo{ID: strings.Repeat("0", 32), Addr: "127.0.0.1:1"}
	p := &Peer{id: cid, failed: map[string]time.Time{}}
	p.channel.Origin = origin
	p.stripes = []tracker.StripeAssignment{{Parent: origin}, {Parent: parent}}
	// The tracker's view, taken before a move: depth 7 in stripe 1.
	p.setRingView(tracker.TreeView{Nodes: []tracker.TreeNode{
		{ID: string(cid.ID()), Capacity: 2, Stripes: []tracker.TreeStripe{{Depth: 1}, {Depth: 7}}},
	}})
	until := func(want int, what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			p.depthFromParents(cov)
			p.mu.Lock()
			d0, d1 := p.ringDepthLocked(0), p.ringDepthLocked(1)
			p.mu.Unlock()
			if d0 == 1 && d1 == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: depths %d, %d; want 1 (under the origin), %d", what, d0, d1, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	pov.SetOffers([]overlay.Offer{{Stripe: 1, Depth: 3, Free: 1}})
	until(4, "the parent tells depth 3")
	// A tracker view arriving later does not undo the parent's word.
	p.setRingView(tracker.TreeView{Nodes: []tracker.TreeNode{
		{ID: string(cid.ID()), Capacity: 2, Stripes: []tracker.TreeStripe{{Depth: 1}, {Depth: 7}}},
	}})
	if d := p.ringDepthLocked(1); d != 4 {
		t.Fatalf("depth %d after a stale tree view, want 4 (the parent's)", d)
	}
	// The tracker goes away; the parent now tells a greater depth: the
	// peer's never grows meanwhile (the ring rule's invariant).
	p.mu.Lock()
	p.trackerAway = true
	p.mu.Unlock()
	pov.SetOffers([]overlay.Offer{{Stripe: 1, Depth: 8, Free: 1}})
	time.Sleep(300 * time.Millisecond)
	until(4, "tracker away, the parent tells depth 8")
	pov.SetOffers([]overlay.Offer{{Stripe: 1, Depth: 1, Free: 1}})
	until(2, "tracker away, the parent tells depth 1")
	// The tracker is back: the depth follows the parent again.
	p.mu.Lock()
	p.trackerAway = false
	p.mu.Unlock()
	pov.SetOffers([]overlay.Offer{{Stripe: 1, Depth: 5, Free: 1}})
	until(6, "tracker back, the parent tells depth 5")
	// The peer's rejoin reports these depths.
	cp := p.currentPlace()
	if cp == nil || cp.Stripes[0].Depth != 1 || cp.Stripes[1].Depth != 6 || cp.Stripes[1].Parent != parent {
		t.Fatalf("rejoin report %+v", cp)
	}
}
