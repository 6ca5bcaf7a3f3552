package transport

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// watchersOf returns the nodes pulling from n.
func watchersOf(n *testNode) []swarm.NodeID {
	res := make(chan []swarm.NodeID, 1)
	if !n.drv.do(func() { res <- n.node.Watchers() }) {
		return nil
	}
	return <-res
}

// DESIGN.md "Push, then pull, then origin", with real QUIC peers: c's
// parent a is killed mid-stream; c, without a parent, pulls the gap from
// its partner b (which the origin feeds), and plays on without a loss.
// Measured by counters: chunks c pulled and b served.
func TestPartnerFillsKilledParent(t *testing.T) {
	s := newStream(t, 2)
	origin := startNode(t, s, nodeOpts{source: true, maxChildren: 4})
	a := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	b := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	c := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	a.drv.SetParent(origin.peer())
	b.drv.SetParent(origin.peer())
	waitChildren(t, origin, a, b)
	c.drv.SetParent(a.peer())
	waitChildren(t, a, c)
	c.drv.SetPartners([]Peer{b.peer(), c.peer(), {}}) // itself and none are skipped
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(watchersOf(b), []swarm.NodeID{c.ep.ID()}) {
		if time.Now().After(deadline) {
			t.Fatalf("b's watchers: %v", watchersOf(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.drv.Partners(); !slices.Equal(got, []swarm.NodeID{b.ep.ID()}) {
		t.Fatalf("c's partners: %v", got)
	}

	const last = 150
	published := make(chan struct{})
	go func() {
		defer close(published)
		s.publish(t, origin.drv, 1, last)
	}()
	c.play.waitFor(t, 20, 5*time.Second)
	a.stop(t) // c's parent dies; c sets none (no backup switch here)
	<-published
	c.play.waitFor(t, last, 5*time.Second)
	c.play.check(t, s, 1, last)

	st := c.drv.Stats()
	served := b.drv.PullsServed()
	t.Logf("c: pulls %d, pulled %d, misses %d, fetches %d (origin bytes %d), maps asked %d; b served %d pulls, refused %d, sent %d maps; alives in %d",
		st.Pulls, st.Pulled, st.PullMisses, st.Fetches, st.OriginBytesIn, st.MapRequests, served, b.drv.PullsRefused(), b.drv.Stats().MapsSent, st.AlivesIn)
	if st.LostSlices != 0 {
		t.Fatalf("c skipped %d slices", st.LostSlices)
	}
	// After a's death about 130 slices × 2 stripes were missing: most
	// come from b, not from the origin.
	if st.Pulled < 50 || served < st.Pulled {
		t.Fatalf("c pulled %d chunks, b served %d", st.Pulled, served)
	}
	if st.PartnersDropped != 0 {
		t.Fatalf("c dropped %d honest partners", st.PartnersDropped)
	}
	// b's first map came before the stream: c chose its pulls from maps
	// it asked b for, and b sent no map unasked.
	if maps := b.drv.Stats().MapsSent; st.MapRequests == 0 || maps > 1+st.MapRequests {
		t.Fatalf("c asked for %d maps, b sent %d", st.MapRequests, maps)
	}
}

// A parent that crashes (its socket gone at once, no QUIC close: a
// kill -9 or a pulled cable) leaves its child's connection open until
// the idle timeout. The child finds it silent — no chunk, no Alive — and
// loses it within about a second, pulls the gap from its partner meanwhile and
// after, and plays on without a loss.
func TestPartnerFillsCrashedParent(t *testing.T) {
	s := newStream(t, 2)
	origin := startNode(t, s, nodeOpts{source: true, maxChildren: 4})
	a := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	b := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	c := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	a.drv.SetParent(origin.peer())
	b.drv.SetParent(origin.peer())
	waitChildren(t, origin, a, b)
	c.drv.SetParent(a.peer())
	waitChildren(t, a, c)
	c.drv.SetPartners([]Peer{b.peer()})
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(watchersOf(b), []swarm.NodeID{c.ep.ID()}) {
		if time.Now().After(deadline) {
			t.Fatalf("b's watchers: %v", watchersOf(b))
		}
		time.Sleep(10 * time.Millisecond)
	}

	const last = 150
	published := make(chan struct{})
	go func() {
		defer close(published)
		s.publish(t, origin.drv, 1, last)
	}()
	c.play.waitFor(t, 20, 5*time.Second)
	lostAt := make(chan time.Time, 8)
	c.play.mu.Lock()
	c.play.repair = func(l Lost) {
		if l.Parent == a.ep.ID() {
			select {
			case lostAt <- time.Now():
			default:
			}
		}
	}
	c.play.mu.Unlock()
	a.ep.udp.Close() // the crash: nothing leaves or reaches a any more
	crashed := time.Now()
	<-published
	c.play.waitFor(t, last, 5*time.Second)
	c.play.check(t, s, 1, last)

	st := c.drv.Stats()
	var took time.Duration
	select {
	case at := <-lostAt:
		took = at.Sub(crashed)
	default:
		t.Fatal("c never lost its crashed parent")
	}
	t.Logf("c: pulls %d, pulled %d, misses %d, fetches %d; lost a %v after the crash", st.Pulls, st.Pulled, st.PullMisses, st.Fetches, took)
	// ParentTimeout is 1 s here, silence 600 ms; the QUIC idle timeout
	// (which would close the connection) is far longer. A margin for a
	// loaded machine.
	if took > 3*time.Second {
		t.Fatalf("c lost its crashed parent only %v after the crash", took)
	}
	if st.LostSlices != 0 {
		t.Fatalf("c skipped %d slices", st.LostSlices)
	}
	if st.Pulled < 50 {
		t.Fatalf("c pulled %d chunks from its partner", st.Pulled)
	}
}
