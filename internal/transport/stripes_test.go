package transport

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// stripeParents returns a's per-stripe parent assignment: even stripes
// from x, odd ones from y.
func evenOdd(k int, x, y Peer) []Peer {
	ps := make([]Peer, k)
	for s := range ps {
		ps[s] = x
		if s%2 == 1 {
			ps[s] = y
		}
	}
	return ps
}

// links returns n's parent links as (parent → stripe mask, Hello.From).
func links(t *testing.T, n *testNode) map[swarm.NodeID][2]uint64 {
	t.Helper()
	res := make(chan map[swarm.NodeID][2]uint64, 1)
	if !n.drv.do(func() {
		m := make(map[swarm.NodeID][2]uint64)
		for id, l := range n.drv.parents {
			m[id] = [2]uint64{uint64(l.mask), l.from}
		}
		res <- m
	}) {
		t.Fatal("driver stopped")
	}
	return <-res
}

// waitLinks waits until n's parent links ask exactly the given masks.
func waitLinks(t *testing.T, n *testNode, want map[swarm.NodeID]uint16) map[swarm.NodeID][2]uint64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := links(t, n)
		ok := len(got) == len(want)
		for id, m := range want {
			ok = ok && got[id][0] == uint64(m)
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("links %v, want masks %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two parents each feed half the stripes over one link each; one is
// killed mid-stream; the child switches the stripes it fed to the other
// at once (as a peer's local repair does) and plays every slice.
func TestStripesFromTwoParentsOneKilled(t *testing.T) {
	const k = 4
	s := newStream(t, k)
	origin := startNode(t, s, nodeOpts{source: true, maxChildren: 4})
	a := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	b := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	c := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	a.drv.SetParent(origin.peer())
	b.drv.SetParent(origin.peer())
	waitChildren(t, origin, a, b)
	c.play.mu.Lock()
	c.play.repair = func(l Lost) {
		if l.Parent == a.ep.ID() {
			for _, st := range l.Stripes {
				c.drv.SetStripeParent(st, b.peer())
			}
		}
	}
	c.play.mu.Unlock()
	c.drv.SetParents(evenOdd(k, a.peer(), b.peer()))
	waitChildren(t, a, c)
	waitChildren(t, b, c)
	waitLinks(t, c, map[swarm.NodeID]uint16{a.ep.ID(): 0b0101, b.ep.ID(): 0b1010})

	pub := s.publishLive(t, origin.drv, 1)
	c.play.waitFor(t, 20, 5*time.Second)
	if st := c.drv.Stats(); st.OriginBytesIn != 0 {
		t.Fatalf("c got %d bytes from the origin while both parents were up", st.OriginBytesIn)
	}
	a.stop(t)

	got := waitLinks(t, c, map[swarm.NodeID]uint16{b.ep.ID(): 0b1111})
	if from := got[b.ep.ID()][1]; from == 0 {
		t.Fatal("the renewed link to b asked for the newest keyframe (From 0), not the next missing slice")
	}
	last := pub.finish(40)
	c.play.waitFor(t, last, 5*time.Second)
	c.play.check(t, s, 1, last)

	c.play.mu.Lock()
	lost := slices.Clone(c.play.lost)
	c.play.mu.Unlock()
	if len(lost) != 1 || lost[0].Parent != a.ep.ID() || !slices.Equal(lost[0].Stripes, []int{0, 2}) {
		t.Fatalf("lost %+v, want one report of a with stripes [0 2]", lost)
	}
	st := c.drv.Stats()
	if st.LostSlices != 0 || st.BadChunks != 0 {
		t.Fatalf("c stats after the switch: %+v", st)
	}
	if ps := c.drv.Parents(); !slices.Equal(ps, evenOdd(k, b.peer(), b.peer())) {
		t.Fatalf("c's parents %v, want b on every stripe", ps)
	}
	// b's link was renewed on the same connection.
	c.drv.mu.Lock()
	n := len(c.drv.conns[b.ep.ID()])
	c.drv.mu.Unlock()
	if n != 1 {
		t.Fatalf("c holds %d connections to b, want 1", n)
	}
	t.Logf("c: %d duplicates, %d fetches, %d origin bytes, repairs %v", st.Duplicates, st.Fetches, st.OriginBytesIn, st.RepairTimes)
}

// A new child that names its start (swarm.Config.StartAge) sends both of
// its parents the same Hello.Start over real QUIC; both send their
// stripes from the first keyframe captured at or after it, so the child
// starts there with every chunk from its parents, none from the origin.
func TestOneStartKeyframeFromTwoParents(t *testing.T) {
	const k = 4
	s := newStream(t, k)
	origin := startNode(t, s, nodeOpts{source: true, maxChildren: 4})
	a := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	b := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	// Keyframes every 10 slices of 20 ms: a start 100 ms back is the
	// newest keyframe half the time, the next one otherwise.
	c := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin, startAge: 100 * time.Millisecond})
	a.drv.SetParent(origin.peer())
	b.drv.SetParent(origin.peer())
	waitChildren(t, origin, a, b)
	pub := s.publishLive(t, origin.drv, 1)
	a.play.waitFor(t, 15, 5*time.Second)
	b.play.waitFor(t, 15, 5*time.Second)

	c.drv.SetParents(evenOdd(k, a.peer(), b.peer()))
	waitLinks(t, c, map[swarm.NodeID]uint16{a.ep.ID(): 0b0101, b.ep.ID(): 0b1010})
	starts := make(chan [2]int64, 1)
	c.drv.do(func() {
		starts <- [2]int64{c.drv.parents[a.ep.ID()].start, c.drv.parents[b.ep.ID()].start}
	})
	st := <-starts
	if st[0] == 0 || st[0] != st[1] {
		t.Fatalf("hello starts %v, want one start for both parents", st)
	}
	c.play.waitFor(t, pub.seq.Load()+10, 5*time.Second)
	c.play.mu.Lock()
	first := c.play.slices[0]
	c.play.mu.Unlock()
	if !first.Keyframe || first.Capture.UnixNano() < st[0] {
		t.Fatalf("c started at slice %d (keyframe %v, captured %v after the start), want a keyframe at or after it",
			first.Seq, first.Keyframe, first.Capture.Sub(time.Unix(0, st[0])))
	}
	last := pub.finish(20)
	c.play.check(t, s, first.Seq, last)
	if bytes := c.drv.Stats().OriginBytesIn; bytes != 0 {
		t.Fatalf("c fetched %d bytes from the origin: its parents did not send every stripe from one keyframe", bytes)
	}
}

// Moving one stripe between two live parents touches only the links of
// those parents, asks from the next missing slice, and costs at most a
// few duplicate chunks (From 0 would re-send everything since the
// newest keyframe on every stripe of the renewed links).
func TestMoveOneStripe(t *testing.T) {
	const k = 4
	s := newStream(t, k)
	// The product's slice length: a move's duplicates are the chunks the
	// old parent sends until it hears of the move, one a slice, so 20 ms
	// slices on a loaded machine (a parent hearing 360 ms late) gave 18.
	s.slice = 100 * time.Millisecond
	origin := startNode(t, s, nodeOpts{source: true, maxChildren: 4, queueDelay: -1})
	// The parents keep every queued chunk: a writer starved by a loaded
	// machine would drop some after MaxQueueDelay, and the child's hello
	// to its new parent then asks from such a hole (duplicates that are
	// not the move's).
	keep := nodeOpts{maxChildren: 4, origin: origin, queueDelay: -1}
	a := startNode(t, s, keep)
	b := startNode(t, s, keep)
	c := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	a.drv.SetParent(origin.peer())
	b.drv.SetParent(origin.peer())
	waitChildren(t, origin, a, b)
	c.drv.SetParents(evenOdd(k, a.peer(), b.peer()))
	waitLinks(t, c, map[swarm.NodeID]uint16{a.ep.ID(): 0b0101, b.ep.ID(): 0b1010})

	pub := s.publishLive(t, origin.drv, 1)
	c.play.waitFor(t, 25, 10*time.Second)
	// Only what the move costs counts: on a loaded machine the start
	// itself may come late enough to fetch a few chunks from the origin.
	start := c.drv.Stats()
	before := start.Duplicates
	c.drv.SetStripeParent(2, b.peer())
	got := waitLinks(t, c, map[swarm.NodeID]uint16{a.ep.ID(): 0b0001, b.ep.ID(): 0b1110})
	for id, l := range got {
		if l[1] == 0 {
			t.Fatalf("renewed link to %s asked from the newest keyframe", id)
		}
	}
	last := pub.finish(40)
	c.play.waitFor(t, last, 5*time.Second)
	// The start is not what this test is about: a loaded machine may
	// start the child at the second keyframe. From there on, nothing is
	// missed.
	c.play.mu.Lock()
	first := c.play.slices[0].Seq
	c.play.mu.Unlock()
	c.play.check(t, s, first, last)
	st := c.drv.Stats()
	dups := st.Duplicates - before
	if dups > 2*k {
		t.Fatalf("%d duplicate chunks after moving one stripe, want at most %d", dups, 2*k)
	}
	if st.LostSlices != 0 || st.OriginBytesIn != start.OriginBytesIn {
		t.Fatalf("moving a stripe between live parents cost slices or origin fetches (%d origin bytes before the move): %+v", start.OriginBytesIn, st)
	}
	c.play.mu.Lock()
	defer c.play.mu.Unlock()
	if len(c.play.lost) != 0 {
		t.Fatalf("a deliberate move reported lost parents: %+v", c.play.lost)
	}
	t.Logf("moving stripe 2 from a to b: %d duplicates", dups)
}
