package overlay

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// simNet is a deterministic, seeded mini network for the overlay core: a
// virtual clock, an event queue, per-message latency drawn from the
// network's source, node crashes and partitions. A message to a crashed
// or unreachable node is dropped and, after failDelay, the sender's
// driver reports NodeFailed (as a transport whose connection failed
// would). It is the test double for the simulator of internal/sim.
type simNet struct {
	t         testing.TB
	rng       *rand.Rand
	seed      uint64
	now       time.Time
	nodes     map[ID]*simNode
	order     []*simNode // creation order: the only order ever iterated
	q         eventQueue
	seq       uint64
	side      map[ID]int // partition side per node; nil when whole
	minLat    time.Duration
	maxLat    time.Duration
	failWait  time.Duration
	cfg       func(*Config) // adjusts every new node's config
	onEvent   func(at time.Time, n *simNode, e Event)
	onMsg     func(at time.Time, from, to Peer, m Message)
	rejoin    bool // on JoinFailed, join again through a random live member
	delivered uint64
	dropped   uint64
}

type simNode struct {
	node  *Node
	alive bool
	wake  time.Time
	done  map[uint64]LookupDone
}

type evKind int

const (
	evDeliver evKind = iota
	evWake
	evFailed
)

type simEvent struct {
	at   time.Time
	seq  uint64
	kind evKind
	to   ID
	from Peer
	msg  Message
	gone ID
}

type eventQueue []*simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newSimNet(t testing.TB, seed uint64) *simNet {
	return &simNet{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x6f7665726c6179)),
		now: epoch, nodes: map[ID]*simNode{},
		minLat: 5 * time.Millisecond, maxLat: 60 * time.Millisecond, failWait: 500 * time.Millisecond,
	}
}

func (s *simNet) push(e *simEvent) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.q, e)
}

// add creates a node (not yet joined) with the given ID and address.
func (s *simNet) add(id ID, addr string) *simNode {
	if _, dup := s.nodes[id]; dup {
		s.t.Fatalf("duplicate node ID %v", id)
	}
	cfg := Config{Self: Peer{ID: id, Addr: addr}, Rand: rand.New(rand.NewPCG(s.seed, uint64(id)))}
	if s.cfg != nil {
		s.cfg(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	sn := &simNode{node: n, alive: true, done: map[uint64]LookupDone{}}
	s.nodes[id] = sn
	s.order = append(s.order, sn)
	return sn
}

// addRandom creates a node with a random ID drawn from the network's source.
func (s *simNet) addRandom() *simNode {
	for {
		id := ID(s.rng.Uint64())
		if _, dup := s.nodes[id]; !dup {
			return s.add(id, "")
		}
	}
}

// do runs an input on a live node and handles its output.
func (s *simNet) do(sn *simNode, f func(n *Node)) {
	if !sn.alive {
		return
	}
	f(sn.node)
	s.flush(sn)
}

func (s *simNet) flush(sn *simNode) {
	r := sn.node.Ready()
	self := sn.node.Self()
	for _, env := range r.Messages {
		if s.onMsg != nil {
			s.onMsg(s.now, self, env.To, env.Msg)
		}
		to, ok := s.nodes[env.To.ID]
		if !ok || !to.alive || !s.reachable(self.ID, env.To.ID) {
			s.dropped++
			s.push(&simEvent{at: s.now.Add(s.failWait), kind: evFailed, to: self.ID, gone: env.To.ID})
			continue
		}
		lat := s.minLat + time.Duration(s.rng.Int64N(int64(s.maxLat-s.minLat)+1))
		s.push(&simEvent{at: s.now.Add(lat), kind: evDeliver, to: env.To.ID, from: self, msg: env.Msg})
	}
	for _, e := range r.Events {
		switch e := e.(type) {
		case LookupDone:
			sn.done[e.Req] = e
		case JoinFailed:
			if s.rejoin {
				s.joinRandom(sn)
			}
		}
		if s.onEvent != nil {
			s.onEvent(s.now, sn, e)
		}
	}
	if d := sn.node.NextDeadline(); !d.Equal(sn.wake) {
		sn.wake = d
		s.push(&simEvent{at: d, kind: evWake, to: self.ID})
	}
}

func (s *simNet) reachable(a, b ID) bool {
	return s.side == nil || s.side[a] == s.side[b]
}

// run processes events up to and including time until.
func (s *simNet) run(until time.Time) {
	for s.q.Len() > 0 && !s.q[0].at.After(until) {
		e := heap.Pop(&s.q).(*simEvent)
		s.now = e.at
		sn := s.nodes[e.to]
		if sn == nil || !sn.alive {
			continue
		}
		switch e.kind {
		case evDeliver:
			s.delivered++
			s.do(sn, func(n *Node) { n.Step(s.now, e.from, e.msg) })
		case evWake:
			if e.at.Equal(sn.wake) {
				sn.wake = time.Time{}
				s.do(sn, func(n *Node) { n.Tick(s.now) })
			}
		case evFailed:
			s.do(sn, func(n *Node) { n.NodeFailed(s.now, e.gone) })
		}
	}
	if until.After(s.now) {
		s.now = until
	}
}

func (s *simNet) runFor(d time.Duration) { s.run(s.now.Add(d)) }

// joinRandom makes sn join through a random live, joined member.
func (s *simNet) joinRandom(sn *simNode) {
	var cands []*simNode
	for _, c := range s.order {
		if c.alive && c != sn && c.node.Joined() && s.reachable(sn.node.self.ID, c.node.self.ID) {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return
	}
	via := cands[s.rng.IntN(len(cands))].node.Self()
	sn.node.Join(s.now, via) // flushed by the caller
}

// kill crashes a node: it stops, and messages to it fail.
func (s *simNet) kill(sn *simNode) { sn.alive = false }

// live returns the live nodes sorted by ID.
func (s *simNet) live() []*simNode {
	var l []*simNode
	for _, sn := range s.order {
		if sn.alive {
			l = append(l, sn)
		}
	}
	slices.SortFunc(l, func(a, b *simNode) int {
		switch {
		case a.node.self.ID < b.node.self.ID:
			return -1
		case a.node.self.ID > b.node.self.ID:
			return 1
		}
		return 0
	})
	return l
}

// inconsistent returns the live nodes (of the given partition side, or
// all when side < 0) whose successor, predecessor or successor list
// differs from the true ring of those nodes.
func (s *simNet) inconsistent(side int) []string {
	var ring []*simNode
	for _, sn := range s.live() {
		if side < 0 || s.side == nil || s.side[sn.node.self.ID] == side {
			ring = append(ring, sn)
		}
	}
	var bad []string
	L := len(ring)
	for i, sn := range ring {
		n := sn.node
		want := []ID{}
		for k := 1; k <= n.cfg.Successors && k < L; k++ {
			want = append(want, ring[(i+k)%L].node.self.ID)
		}
		got := []ID{}
		for _, p := range n.succs {
			got = append(got, p.ID)
		}
		pred, ok := n.Predecessor()
		wantPred := ring[(i+L-1)%L].node.self.ID
		switch {
		case L == 1 && len(got) == 0:
		case !slices.Equal(got, want):
			bad = append(bad, fmt.Sprintf("%v: successors %v, want %v", n.self, got, want))
		case !ok || pred.ID != wantPred:
			bad = append(bad, fmt.Sprintf("%v: predecessor %v (known %v), want %v", n.self, pred.ID, ok, wantPred))
		}
	}
	return bad
}

// owner is the true successor of key among the live nodes that asker
// can reach.
func (s *simNet) owner(asker, key ID) ID {
	var l []*simNode
	for _, sn := range s.live() {
		if s.reachable(asker, sn.node.self.ID) {
			l = append(l, sn)
		}
	}
	i, _ := slices.BinarySearchFunc(l, key, func(sn *simNode, k ID) int {
		switch {
		case sn.node.self.ID < k:
			return -1
		case sn.node.self.ID > k:
			return 1
		}
		return 0
	})
	return l[i%len(l)].node.self.ID
}

func (s *simNet) sent() (all, merge uint64) {
	for _, sn := range s.order {
		st := sn.node.Stats()
		all += st.Sent
		merge += st.MergeSent
	}
	return all, merge
}
