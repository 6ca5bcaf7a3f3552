package proxy

import (
	"context"
	"log/slog"
	randv2 "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/overlay"
	"github.com/swarmtv/swarmtv/tracker"
)

// startOverlay runs a real overlay driver on loopback (stopped at the
// end of the test).
func startOverlay(t *testing.T, seed uint64, onEvent ...func(overlay.Event)) (*transport.Overlay, *overlay.Node, *transport.Identity, tracker.NodeInfo) {
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
	cfg := transport.OverlayConfig{Node: node, Endpoint: ep, Channel: "tv", Accept: true, Logger: slog.New(slog.DiscardHandler)}
	if len(onEvent) > 0 {
		cfg.OnEvent = onEvent[0]
	}
	ov, err := transport.NewOverlay(cfg)
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
			p.depthFromParents(cov, true)
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

// Issue 6: a change of depth travels down a tree at once, not one level
// per ringEvery: a parent whose depth changed tells its children (overlay
// TellID), and a peer told by its parent takes its depth at once (Told)
// and passes a change on. Grandparent g, parent p, child c over real
// overlay connections; nothing runs the ring loops' 5 s rounds.
func TestDepthChangeTravelsAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// react runs a peer's Told handling as its ring loop does.
	react := func(pp **Peer, ovp **transport.Overlay) func(overlay.Event) {
		ch := make(chan overlay.ID, 16)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case id := <-ch:
					(*pp).onTold(*ovp, id)
				}
			}
		}()
		return func(ev overlay.Event) {
			if ev, ok := ev.(overlay.Told); ok {
				ch <- ev.From.ID
			}
		}
	}
	var (
		pp, cp   *Peer
		pov, cov *transport.Overlay
	)
	gov, _, _, g := startOverlay(t, 11)
	pov, _, pid, par := startOverlay(t, 12, react(&pp, &pov))
	cov, _, cid, _ := startOverlay(t, 13, react(&cp, &cov))
	origin := tracker.NodeInfo{ID: strings.Repeat("0", 32), Addr: "127.0.0.1:1"}
	pp = &Peer{id: pid, failed: map[string]time.Time{}, childIDs: func() []swarm.NodeID { return []swarm.NodeID{cid.ID()} }}
	pp.channel.Origin = origin
	pp.stripes = []tracker.StripeAssignment{{Parent: g}}
	cp = &Peer{id: cid, failed: map[string]time.Time{}}
	cp.channel.Origin = origin
	cp.stripes = []tracker.StripeAssignment{{Parent: par}}
	depth := func(x *Peer) int {
		x.mu.Lock()
		defer x.mu.Unlock()
		return x.ringDepthLocked(0)
	}
	// The first round of each (children tell their parents): g at depth 2.
	gov.SetOffers([]overlay.Offer{{Stripe: 0, Depth: 2, Free: 1}})
	for deadline := time.Now().Add(20 * time.Second); depth(pp) != 3 || depth(cp) != 4; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("depths %d, %d after the first rounds; want 3, 4", depth(pp), depth(cp))
		}
		pp.refreshDepth(pov, true)
		cp.refreshDepth(cov, true)
	}
	// g moves up to depth 1 and tells p; nobody runs a round: the child
	// learns depth 3 through p at once.
	gov.SetOffers([]overlay.Offer{{Stripe: 0, Depth: 1, Free: 1}})
	start := time.Now()
	gov.TellID(transport.OverlayID(pid.ID()))
	for depth(cp) != 3 {
		if time.Since(start) > ringEvery {
			t.Fatalf("depths %d, %d %v after g's change; want 2, 3 before a ring round", depth(pp), depth(cp), time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("two levels down in %v (a ring round is %v)", time.Since(start), ringEvery)
	if d := depth(pp); d != 2 {
		t.Errorf("the parent's depth %d, want 2", d)
	}
}
