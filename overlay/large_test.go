package overlay

import (
	"flag"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	flagNodes = flag.Int("overlay.nodes", 0, "nodes in TestLargeRing (default 1000, 300 under -race or -short)")
	flagSeed  = flag.Uint64("overlay.seed", 1, "seed of TestLargeRing")
	flagFans  = flag.String("overlay.fanouts", "-1,1,2,4", "MergeFanout values of TestMergeByOneContact")
)

// buildRing joins n nodes, one every 20ms, each through a random member
// already on the ring.
func buildRing(s *simNet, n int) { buildRings(s, n, 1) }

// buildRings builds parts separate rings of n nodes in all (random IDs,
// so the rings interleave), returning each ring's members. With more
// than one part the network stays partitioned (s.side) until the caller
// heals it.
func buildRings(s *simNet, n, parts int) [][]*simNode {
	members := make([][]*simNode, parts)
	if parts > 1 {
		s.side = map[ID]int{}
	}
	for i := range n {
		p := i % parts
		sn := s.addRandom()
		if parts > 1 {
			s.side[sn.node.Self().ID] = p
		}
		if len(members[p]) == 0 {
			s.do(sn, func(*Node) {})
		} else {
			via := members[p][s.rng.IntN(len(members[p]))]
			s.do(sn, func(nd *Node) { nd.Join(s.now, via.node.Self()) })
		}
		members[p] = append(members[p], sn)
		s.runFor(20 * time.Millisecond)
	}
	return members
}

// TestMergeByOneContact: two rings built apart (no member remembers the
// other ring) merge after the driver tells one node of one member of the
// other ring; MergeFanout trades messages for time.
func TestMergeByOneContact(t *testing.T) {
	n := 1000
	if raceEnabled || testing.Short() {
		n = 200
	}
	if *flagNodes > 0 {
		n = *flagNodes
	}
	took := map[int]time.Duration{}
	var fans []int
	for _, f := range strings.Split(*flagFans, ",") {
		x, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("-overlay.fanouts: %v", err)
		}
		fans = append(fans, x)
	}
	for _, fan := range fans {
		s := newSimNet(t, *flagSeed+10)
		s.cfg = func(c *Config) { c.MergeFanout = fan }
		s.rejoin = true
		rings := buildRings(s, n, 2)
		s.runFor(30 * time.Second)
		for i := range rings {
			if bad := s.inconsistent(i); len(bad) > 0 {
				t.Fatalf("ring %d not consistent: %s", i, bad[0])
			}
		}
		s.side = nil
		base := baseline(s, n)
		all0, merge0 := s.sent()
		start := s.now
		a, b := rings[0][0], rings[1][0]
		s.do(a, func(nd *Node) { nd.Contact(s.now, b.node.Self()) })
		bound := 120 * time.Second
		if fan < 2 {
			bound = 30 * time.Minute // no spreading, or an epidemic that dies out: stabilisation zips
		}
		for s.now.Sub(start) < bound && len(s.inconsistent(-1)) > 0 {
			s.runFor(time.Second)
		}
		if bad := s.inconsistent(-1); len(bad) > 0 {
			t.Fatalf("fanout %d: not merged %v after the contact: %d wrong, e.g. %s", fan, bound, len(bad), bad[0])
		}
		all1, merge1 := s.sent()
		d := s.now.Sub(start)
		took[fan] = d
		perNode := float64(all1-all0) / float64(n)
		t.Logf("N=%d fanout %2d: one ring %v after one contact; per node %.1f messages, %.1f above the steady %.1f/s, %.1f merge-specific",
			n, fan, d, perNode, perNode-base*d.Seconds(), base, float64(merge1-merge0)/float64(n))
	}
	if _, ok := took[-1]; ok && (took[4] > took[-1] || took[2] > took[-1]) {
		t.Errorf("spreading did not speed the merge up: %v", took)
	}
}

// baseline runs the network for 10s and returns the messages per node
// per second it sent.
func baseline(s *simNet, n int) float64 {
	a, _ := s.sent()
	s.runFor(10 * time.Second)
	b, _ := s.sent()
	return float64(b-a) / float64(n) / 10
}

// lookups starts count lookups of random keys from random live nodes,
// waits, and returns the success ratio and mean hops.
func lookups(t *testing.T, s *simNet, count int) (success, meanHops float64, maxHops int) {
	type q struct {
		sn  *simNode
		req uint64
		key ID
	}
	live := s.live()
	var qs []q
	for range count {
		sn := live[s.rng.IntN(len(live))]
		key := ID(s.rng.Uint64())
		var req uint64
		s.do(sn, func(n *Node) { req = n.Lookup(s.now, key) })
		qs = append(qs, q{sn, req, key})
	}
	s.runFor(10 * time.Second)
	ok, hops := 0, 0
	for _, x := range qs {
		d, done := x.sn.done[x.req]
		if !done || d.Err != nil || d.Owner.ID != s.owner(x.sn.node.self.ID, x.key) {
			continue
		}
		ok++
		hops += d.Hops
		maxHops = max(maxHops, d.Hops)
	}
	if ok == 0 {
		return 0, 0, 0
	}
	return float64(ok) / float64(count), float64(hops) / float64(ok), maxHops
}

// TestLargeRing is the acceptance run of the overlay core on the mini
// network: build, churn, stabilise, look up, partition, heal.
func TestLargeRing(t *testing.T) {
	n, partition := *flagNodes, 5*time.Minute
	if raceEnabled || testing.Short() {
		partition = time.Minute
	}
	if n == 0 {
		n = 1000
		if raceEnabled || testing.Short() {
			n = 300
		}
	}
	seed := *flagSeed
	t.Logf("replay: go test ./overlay -run TestLargeRing -overlay.nodes=%d -overlay.seed=%d", n, seed)
	s := newSimNet(t, seed)
	s.rejoin = true
	buildRing(s, n)
	s.runFor(30 * time.Second)
	if bad := s.inconsistent(-1); len(bad) > 0 {
		t.Fatalf("ring of %d not consistent 30s after the joins: %d nodes wrong, e.g. %s", n, len(bad), bad[0])
	}

	// Churn: for 30s, one crash and one join every 200ms.
	for range 150 {
		live := s.live()
		s.kill(live[s.rng.IntN(len(live))])
		live = s.live()
		via := live[s.rng.IntN(len(live))]
		sn := s.addRandom()
		s.do(sn, func(nd *Node) { nd.Join(s.now, via.node.Self()) })
		s.runFor(200 * time.Millisecond)
	}
	start := s.now
	for s.now.Sub(start) < 30*time.Second && len(s.inconsistent(-1)) > 0 {
		s.runFor(time.Second)
	}
	if bad := s.inconsistent(-1); len(bad) > 0 {
		t.Fatalf("not consistent 30s after churn: %d wrong, e.g. %s", len(bad), bad[0])
	}
	t.Logf("consistent %v after churn stopped", s.now.Sub(start))
	s.runFor(20 * time.Second) // fingers catch up
	succ, hops, maxH := lookups(t, s, 2000)
	limit := math.Log2(float64(n))/2 + 2
	t.Logf("N=%d: lookup success %.4f, mean hops %.2f (limit %.2f), max %d", n, succ, hops, limit, maxH)
	if succ < 0.999 {
		t.Errorf("lookup success %.4f < 0.999", succ)
	}
	if hops > limit {
		t.Errorf("mean hops %.2f > log2(N)/2+2 = %.2f", hops, limit)
	}

	// Estimates.
	s.runFor(70 * time.Second)
	live := s.live()
	est := live[0].node.Estimates()
	t.Logf("gossip estimate of peers at one node: %.0f (true %d), epoch %d", est.Peers, len(live), est.Epoch)
	for _, sn := range live {
		e := sn.node.Estimates()
		if !e.Final || math.Abs(e.Peers-float64(len(live))) > 0.25*float64(len(live)) {
			t.Fatalf("%v estimates %.0f peers (final %v), true %d", sn.node.Self(), e.Peers, e.Final, len(live))
		}
	}

	// Partition into two random halves (interleaved on the ring).
	s.side = map[ID]int{}
	for _, sn := range live {
		s.side[sn.node.Self().ID] = s.rng.IntN(2)
	}
	s.runFor(partition)
	for side := range 2 {
		if bad := s.inconsistent(side); len(bad) > 0 {
			t.Fatalf("side %d not a consistent ring after %v of partition: %d wrong, e.g. %s", side, partition, len(bad), bad[0])
		}
	}
	succ, hops, _ = lookups(t, s, 1000)
	t.Logf("during the partition: lookup success %.4f (owner on the asker's side), mean hops %.2f", succ, hops)
	if succ < 0.999 {
		t.Errorf("lookup success %.4f < 0.999 within the parts", succ)
	}
	base := baseline(s, len(live))
	// Heal.
	s.side = nil
	all0, merge0 := s.sent()
	start = s.now
	const mergeBound = 30 * time.Second // the acceptance bound
	for s.now.Sub(start) < mergeBound && len(s.inconsistent(-1)) > 0 {
		s.runFor(time.Second)
	}
	all1, merge1 := s.sent()
	if bad := s.inconsistent(-1); len(bad) > 0 {
		t.Fatalf("rings not merged %v after the heal: %d wrong, e.g. %s", mergeBound, len(bad), bad[0])
	}
	took := s.now.Sub(start)
	perNode := float64(all1-all0) / float64(len(live))
	t.Logf("N=%d: partitioned %v, then merged into one consistent ring %v after the heal (%.0f rounds); messages per node during the merge: %.1f, %.1f above the steady %.1f/s; merge-specific %.1f",
		n, partition, took, took.Seconds()/DefaultRound.Seconds(), perNode, perNode-base*took.Seconds(), base, float64(merge1-merge0)/float64(len(live)))
}
