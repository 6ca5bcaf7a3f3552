package transport

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// A child that vanishes without a word (its process killed) keeps its
// slot at a full origin until the QUIC idle timeout, so the replacement
// the tracker places there is refused. DropChild frees the slot at once
// (the origin calls it for a child the tracker no longer counts), and
// the replacement's next attempt gets in.
//
// (Closing a's endpoint would close its connections with a
// CONNECTION_CLOSE; closing its socket under QUIC leaves them silent.)
func TestDropChildFreesSlot(t *testing.T) {
	s := newStream(t, 1)
	origin := startNode(t, s, nodeOpts{source: true, maxChildren: 1})
	a := startNode(t, s, nodeOpts{maxChildren: 1, origin: origin})
	b := startNode(t, s, nodeOpts{maxChildren: 1, origin: origin})
	a.drv.SetParent(origin.peer())
	waitChildren(t, origin, a)
	if origin.drv.DropChild(b.ep.ID(), "test") {
		t.Fatal("DropChild of a node that is no child reported true")
	}
	a.ep.udp.Close() // vanishes: no Bye, no CONNECTION_CLOSE can leave its socket
	b.drv.SetParent(origin.peer())
	time.Sleep(300 * time.Millisecond)
	if got := origin.drv.Children(); !slices.Equal(got, []swarm.NodeID{a.ep.ID()}) {
		t.Fatalf("children 300 ms after a vanished: %v, want still a (the slot waits for the idle timeout)", got)
	}
	start := time.Now()
	if !origin.drv.DropChild(a.ep.ID(), "test: gone from the channel") {
		t.Fatal("DropChild of the child reported false")
	}
	// b's peer asks again, as proxy.Peer does after a refusal.
	b.drv.SetParents(nil)
	b.drv.SetParent(origin.peer())
	waitChildren(t, origin, b)
	if d := time.Since(start); d >= MaxIdleTimeout {
		t.Fatalf("b got the slot %v after the drop, no sooner than the idle timeout", d)
	}
	s.publish(t, origin.drv, 1, 20)
	b.play.waitFor(t, 20, 5*time.Second)
}
