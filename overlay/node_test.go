package overlay

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestRingIntervals(t *testing.T) {
	const max = ^ID(0)
	tests := []struct {
		a, x, b     ID
		open, right bool
	}{
		{10, 15, 20, false || true, true},
		{10, 20, 20, false, true},
		{10, 10, 20, false, false},
		{10, 5, 20, false, false},
		{max - 5, 3, 10, true, true}, // wraps past zero
		{max - 5, max - 6, 10, false, false},
		{7, 3, 7, true, true}, // a == b: the whole ring but a
		{7, 7, 7, false, true},
	}
	for _, tt := range tests {
		if got := between(tt.a, tt.x, tt.b); got != tt.open {
			t.Errorf("between(%d, %d, %d) = %v", tt.a, tt.x, tt.b, got)
		}
		if got := betweenIncl(tt.a, tt.x, tt.b); got != tt.right {
			t.Errorf("betweenIncl(%d, %d, %d) = %v", tt.a, tt.x, tt.b, got)
		}
	}
	if got := lowestUsefulFinger(0, 1<<40+5); got != 40 {
		t.Errorf("lowestUsefulFinger = %d, want 40", got)
	}
	if got := fingerStart(max, 0); got != 0 {
		t.Errorf("fingerStart wraps: %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("no Rand: err %v, want ErrConfig", err)
	}
	if _, err := New(Config{Rand: rand.NewPCG(1, 2), Successors: 1}); !errors.Is(err, ErrConfig) {
		t.Errorf("1 successor: err %v, want ErrConfig", err)
	}
	n, err := New(Config{Rand: rand.NewPCG(1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if c := n.Config(); c.Successors != DefaultSuccessors || c.Round != DefaultRound || c.MergeFanout != DefaultMergeFanout {
		t.Errorf("defaults not applied: %+v", c)
	}
}

var t0 = epoch

func peer(id ID, name string) Peer { return Peer{ID: id, Addr: name} }

func newNode(t *testing.T, self Peer, adjust ...func(*Config)) *Node {
	t.Helper()
	cfg := Config{Self: self, Rand: rand.NewPCG(1, uint64(self.ID))}
	for _, f := range adjust {
		f(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sent returns the messages of type M in r, with their destinations.
func sentOf[M Message](r Ready) (ms []M, to []Peer) {
	for _, e := range r.Messages {
		if m, ok := e.Msg.(M); ok {
			ms = append(ms, m)
			to = append(to, e.To)
		}
	}
	return ms, to
}

// probesOf returns the merge probes in r and their destinations.
func probesOf(r Ready) (ps []*FindSuccessor, to []Peer) {
	all, dst := sentOf[*FindSuccessor](r)
	for i, f := range all {
		if f.Kind == KindMerge {
			ps, to = append(ps, f), append(to, dst[i])
		}
	}
	return ps, to
}

func TestJoinNeedsOnlyTheSuccessor(t *testing.T) {
	a, b, c := peer(100, "a"), peer(200, "b"), peer(300, "c")
	n := newNode(t, b)
	n.Join(t0, a)
	fs, to := sentOf[*FindSuccessor](n.Ready())
	if len(fs) != 1 || to[0] != a || fs[0].Key != b.ID || fs[0].Kind != KindJoin {
		t.Fatalf("join sent %+v to %v", fs, to)
	}
	// A joining node does not route others' lookups.
	n.Step(t0, a, &FindSuccessor{Req: 9, Key: 5, Origin: a, Kind: KindLookup})
	if r := n.Ready(); len(r.Messages) != 0 {
		t.Fatalf("joining node answered a lookup: %+v", r.Messages)
	}
	n.Step(t0, c, &Found{Req: fs[0].Req, Key: b.ID, Kind: KindJoin, Pred: a, Succ: c, Succs: []Peer{a, b}})
	r := n.Ready()
	if len(r.Events) != 1 || r.Events[0] != (Joined{Succ: c}) {
		t.Fatalf("events %+v, want Joined{c}", r.Events)
	}
	if got := n.Successors(); len(got) != 2 || got[0] != c || got[1] != a {
		t.Errorf("successors %v, want [c a] (the answer's list, cut at self)", got)
	}
	if ns, to := sentOf[*Notify](r); len(ns) != 1 || to[0] != c {
		t.Errorf("no Notify to the new successor: %v", r.Messages)
	}
	if gs, to := sentOf[*GetPred](r); len(gs) != 1 || to[0] != c {
		t.Errorf("no GetPred to the new successor: %v", r.Messages)
	}
}

func TestJoinFailsWhenViaFails(t *testing.T) {
	a, b := peer(100, "a"), peer(200, "b")
	n := newNode(t, b)
	n.Join(t0, a)
	n.Ready()
	n.NodeFailed(t0.Add(time.Second), a.ID)
	r := n.Ready()
	if len(r.Events) != 1 || r.Events[0] != (JoinFailed{Via: a}) {
		t.Fatalf("events %+v, want JoinFailed{a}", r.Events)
	}
	// Unanswered joins fail after the retries too.
	n.Join(t0, a)
	n.Ready()
	var events []Event
	for i := 1; i <= 10; i++ {
		n.Tick(t0.Add(time.Duration(i) * DefaultLookupTimeout))
		events = append(events, n.Ready().Events...)
	}
	if len(events) != 1 || events[0] != (JoinFailed{Via: a}) {
		t.Fatalf("events %+v, want one JoinFailed", events)
	}
}

func TestNotifyRelaxedRing(t *testing.T) {
	a, b, c := peer(100, "a"), peer(200, "b"), peer(300, "c")
	n := newNode(t, c)
	n.Step(t0, a, &Notify{})
	if p, ok := n.Predecessor(); !ok || p != a {
		t.Fatalf("pred %v %v, want a", p, ok)
	}
	// A lone node takes its first predecessor as successor too.
	if n.Successor() != a {
		t.Fatalf("successor %v, want a", n.Successor())
	}
	n.Ready()
	// b joins between a and c: c takes it and tells a at once.
	n.Step(t0, b, &Notify{})
	if p, _ := n.Predecessor(); p != b {
		t.Fatalf("pred %v, want b", p)
	}
	hs, to := sentOf[*SuccHint](n.Ready())
	if len(hs) != 1 || to[0] != a || hs[0].Cand != b {
		t.Fatalf("want SuccHint{b} to a, got %+v to %v", hs, to)
	}
	// A Notify from farther away is ignored.
	n.Step(t0, a, &Notify{})
	if p, _ := n.Predecessor(); p != b {
		t.Fatalf("pred %v after a farther Notify, want b", p)
	}
}

func TestStabiliseAdoptsPredAndCopiesList(t *testing.T) {
	a, b, c, d, e := peer(100, "a"), peer(200, "b"), peer(300, "c"), peer(400, "d"), peer(500, "e")
	n := newNode(t, a, func(c *Config) { c.Successors = 3 })
	n.Join(t0, c)
	fs, _ := sentOf[*FindSuccessor](n.Ready())
	n.Step(t0, c, &Found{Req: fs[0].Req, Key: a.ID, Kind: KindJoin, Pred: e, Succ: c})
	gs, _ := sentOf[*GetPred](n.Ready())
	// c's predecessor is b, between a and c: adopt it.
	n.Step(t0, c, &PredReply{Req: gs[0].Req, Pred: b, HasPred: true, Succs: []Peer{d, e}})
	if n.Successor() != b {
		t.Fatalf("successor %v, want b", n.Successor())
	}
	gs, to := sentOf[*GetPred](n.Ready())
	if len(gs) != 1 || to[0] != b {
		t.Fatalf("want GetPred to b at once, got %v", to)
	}
	// b's list, cut at ourselves and at Successors.
	n.Step(t0, b, &PredReply{Req: gs[0].Req, Pred: a, HasPred: true, Succs: []Peer{c, d, e}})
	if got := n.Successors(); len(got) != 3 || got[0] != b || got[1] != c || got[2] != d {
		t.Fatalf("successors %v, want [b c d]", got)
	}
	n.Step(t0, b, &PredReply{Req: 999, Pred: e, HasPred: true}) // stale: ignored
	if n.Successor() != b {
		t.Fatalf("stale reply changed the successor")
	}
}

func TestProbeTimeoutFailsSuccessor(t *testing.T) {
	a, b, c := peer(100, "a"), peer(200, "b"), peer(300, "c")
	n := newNode(t, a)
	n.Join(t0, b)
	fs, _ := sentOf[*FindSuccessor](n.Ready())
	n.Step(t0, b, &Found{Req: fs[0].Req, Key: a.ID, Kind: KindJoin, Pred: c, Succ: b, Succs: []Peer{c}})
	n.Ready()
	if d := n.NextDeadline(); !d.Equal(t0.Add(DefaultProbeTimeout)) && !d.Before(t0.Add(DefaultProbeTimeout)) {
		t.Fatalf("next deadline %v after the probe's", d)
	}
	n.Tick(t0.Add(DefaultProbeTimeout))
	r := n.Ready()
	if len(r.Events) == 0 || r.Events[0] != (MemberFailed{Peer: b}) {
		t.Fatalf("events %+v, want MemberFailed{b}", r.Events)
	}
	if n.Successor() != c {
		t.Fatalf("successor %v, want c (next in the list)", n.Successor())
	}
	if rem := n.Remembered(); len(rem) != 1 || rem[0] != b {
		t.Fatalf("remembered %v, want [b]", rem)
	}
	// The driver's NodeFailed does the same.
	n.NodeFailed(t0.Add(3*time.Second), c.ID)
	if r := n.Ready(); len(r.Events) == 0 || r.Events[0] != (MemberFailed{Peer: c}) {
		t.Fatalf("events %+v, want MemberFailed{c}", r.Events)
	}
}

// ringNode returns a node that believes the ring is members (sorted),
// with successor list and fingers set as stabilisation would.
func ringNode(t *testing.T, self Peer, members []Peer, succs int) *Node {
	t.Helper()
	n := newNode(t, self, func(c *Config) { c.Successors = succs })
	i := 0
	for members[i] != self {
		i++
	}
	L := len(members)
	for k := 1; k <= succs && k < L; k++ {
		n.succs = append(n.succs, members[(i+k)%L])
	}
	n.pred, n.hasPred = members[(i+L-1)%L], true
	n.joined = true
	for f := 0; f < 64; f++ {
		key := fingerStart(self.ID, f)
		for k := 1; k <= L; k++ {
			m := members[(i+k)%L]
			if betweenIncl(members[(i+k-1)%L].ID, key, m.ID) {
				n.fingers[f], n.fingerOK[f] = m, m != self
				break
			}
		}
	}
	return n
}

func TestRouteClosestPrecedingAndAnswerAtPredecessor(t *testing.T) {
	var ms []Peer
	for i := range 16 {
		ms = append(ms, peer(ID(i)<<60, string(rune('a'+i))))
	}
	n := ringNode(t, ms[0], ms, 3)
	origin := peer(12345, "o")
	// A join for a key owned by our successor is answered at once.
	n.Step(t0, origin, &FindSuccessor{Req: 1, Key: ms[1].ID - 1, Origin: origin, Kind: KindJoin})
	fs, to := sentOf[*Found](n.Ready())
	if len(fs) != 1 || to[0] != origin || fs[0].Succ != ms[1] || fs[0].Pred != ms[0] {
		t.Fatalf("want Found succ=b pred=a to o, got %+v", fs)
	}
	// A user's lookup of it goes to the owner, which answers for itself
	// (so a dead owner is never the answer).
	n.Step(t0, origin, &FindSuccessor{Req: 6, Key: ms[1].ID - 1, Origin: origin})
	fw, to := sentOf[*FindSuccessor](n.Ready())
	if len(fw) != 1 || to[0] != ms[1] {
		t.Fatalf("want lookup forwarded to its owner b, got %+v to %v", fw, to)
	}
	// The owner answers a lookup of a key between its predecessor and itself.
	b := ringNode(t, ms[1], ms, 3)
	b.Step(t0, origin, &FindSuccessor{Req: 7, Key: ms[1].ID - 1, Origin: origin, Hops: 1})
	fs, to = sentOf[*Found](b.Ready())
	if len(fs) != 1 || to[0] != origin || fs[0].Succ != ms[1] || fs[0].Pred != ms[0] || fs[0].Hops != 1 {
		t.Fatalf("owner: want Found succ=b pred=a to o, got %+v", fs)
	}
	// A key further along the successor list goes to its predecessor,
	// the first to learn of a member joining in front of it.
	n.Step(t0, origin, &FindSuccessor{Req: 4, Key: ms[2].ID - 1, Origin: origin, Kind: KindPartner})
	fw, to = sentOf[*FindSuccessor](n.Ready())
	if len(fw) != 1 || to[0] != ms[1] {
		t.Fatalf("want forward to b, got %+v to %v", fw, to)
	}
	// A finger refresh is answered from the list, saving the hop.
	n.Step(t0, origin, &FindSuccessor{Req: 5, Key: ms[2].ID - 1, Origin: origin, Kind: KindFinger})
	fs, to = sentOf[*Found](n.Ready())
	if len(fs) != 1 || to[0] != origin || fs[0].Succ != ms[2] || fs[0].Pred != ms[1] {
		t.Fatalf("finger: want Found succ=c pred=b to o, got %+v", fs)
	}
	// A far key goes to the closest preceding finger: 0 + 2^63 is i.
	n.Step(t0, origin, &FindSuccessor{Req: 2, Key: ms[9].ID + 5, Origin: origin, Hops: 3})
	fw, to = sentOf[*FindSuccessor](n.Ready())
	if len(fw) != 1 || to[0] != ms[8] || fw[0].Hops != 4 {
		t.Fatalf("want forward to i with hops 4, got %+v to %v", fw, to)
	}
	// A merge probe is forwarded to the key's predecessor, not answered.
	n.Step(t0, origin, &FindSuccessor{Req: 3, Key: ms[2].ID - 1, Origin: origin, Kind: KindMerge})
	fw, to = sentOf[*FindSuccessor](n.Ready())
	if len(fw) != 1 || to[0] != ms[1] {
		t.Fatalf("merge probe: want forward to b, got %v", to)
	}
}

func TestLocalLookupAndTimeout(t *testing.T) {
	var ms []Peer
	for i := range 16 {
		ms = append(ms, peer(ID(i)<<60, string(rune('a'+i))))
	}
	n := ringNode(t, ms[0], ms, 3)
	// A key this node owns is answered locally.
	req := n.Lookup(t0, ms[0].ID-5)
	r := n.Ready()
	if len(r.Events) != 1 || r.Events[0] != (LookupDone{Req: req, Key: ms[0].ID - 5, Owner: ms[0]}) {
		t.Fatalf("local lookup: %+v", r.Events)
	}
	req = n.Lookup(t0, ms[9].ID)
	n.Ready()
	var events []Event
	for i := 1; i <= 5; i++ {
		n.Tick(t0.Add(time.Duration(i) * DefaultLookupTimeout))
		for _, e := range n.Ready().Events {
			if d, ok := e.(LookupDone); ok {
				events = append(events, d)
			}
		}
	}
	want := LookupDone{Req: req, Key: ms[9].ID, Err: ErrLookupTimeout}
	if len(events) != 1 || events[0] != want {
		t.Fatalf("events %+v, want %+v after %d retries", events, want, DefaultLookupRetries)
	}
}

func TestMergeProbeAdoptsProberFromAnotherRing(t *testing.T) {
	r, s := peer(100, "r"), peer(300, "s")
	p := peer(200, "p") // of another ring
	n := ringNode(t, r, []Peer{r, s}, 3)
	n.Step(t0, p, &FindSuccessor{Req: 7, Key: p.ID, Origin: p, Kind: KindMerge})
	out := n.Ready()
	fs, _ := sentOf[*Found](out)
	if len(fs) != 1 || fs[0].Pred != r || fs[0].Succ != s {
		t.Fatalf("Found %+v, want pred r succ s", fs)
	}
	if n.Successor() != p {
		t.Fatalf("successor %v, want the prober p", n.Successor())
	}
	if len(n.contacts) != 1 || n.contacts[0] != p {
		t.Fatalf("contacts %v, want [p] (probe its ring back)", n.contacts)
	}

	// At the prober: an answer naming itself means the same ring.
	q := ringNode(t, p, []Peer{p, peer(250, "x")}, 3)
	q.Contact(t0, r)
	q.Tick(t0.Add(time.Second))
	ps, to := probesOf(q.Ready())
	if len(ps) != 1 || to[0] != r || ps[0].Kind != KindMerge || ps[0].Key != p.ID {
		t.Fatalf("want a merge probe to r, got %+v to %v", ps, to)
	}
	q.Step(t0, r, &Found{Req: ps[0].Req, Key: p.ID, Kind: KindMerge, Pred: r, Succ: s})
	out = q.Ready()
	if len(out.Events) != 1 || out.Events[0] != (RingMerge{Contact: r, Succ: s}) {
		t.Fatalf("events %+v, want RingMerge", out.Events)
	}
	hs, _ := sentOf[*MergeHint](out)
	if len(hs) != 1 { // p knows one member: x
		t.Fatalf("hints %+v, want one to x", hs)
	}
	if q.Successor().ID != 250 {
		t.Fatalf("successor %v: s (300) is farther than x (250)", q.Successor())
	}
	// Within the cooldown a hint starts no probe.
	q.Step(t0.Add(2*time.Second), s, &MergeHint{Contact: s})
	if ps, _ := probesOf(q.Ready()); len(ps) != 0 {
		t.Fatalf("probe within the cooldown: %+v", ps)
	}
	q.Step(t0.Add(20*time.Second), s, &MergeHint{Contact: s})
	if ps, to := probesOf(q.Ready()); len(ps) != 1 || to[0] != s {
		t.Fatalf("after the cooldown a hint probes s: %+v", ps)
	}
}

func TestPassiveContact(t *testing.T) {
	a, b := peer(100, "a"), peer(200, "b")
	stranger := peer(150, "z")
	n := ringNode(t, a, []Peer{a, b}, 3)
	n.cfg.PassiveContacts = true
	n.Step(t0, stranger, &Ping{Req: 1})
	n.Ready()
	n.Tick(t0.Add(time.Second))
	if ps, to := probesOf(n.Ready()); len(ps) != 1 || to[0] != stranger {
		t.Fatalf("want a merge probe to the stranger, got %+v to %v", ps, to)
	}
}

func TestRecheckRememberedMember(t *testing.T) {
	a, b, c := peer(100, "a"), peer(200, "b"), peer(300, "c")
	n := ringNode(t, a, []Peer{a, b, c}, 3)
	n.NodeFailed(t0, c.ID)
	n.Ready()
	n.Tick(t0.Add(time.Second))
	pings, to := sentOf[*Ping](n.Ready())
	if len(pings) != 1 || to[0] != c {
		t.Fatalf("want a Ping to the remembered c, got %v", to)
	}
	n.Step(t0.Add(time.Second), c, &Pong{Req: pings[0].Req})
	if len(n.Remembered()) != 0 || len(n.contacts) != 1 || n.contacts[0] != c {
		t.Fatalf("remembered %v contacts %v: c answered, so it is a contact", n.Remembered(), n.contacts)
	}
}

func TestPartnersSample(t *testing.T) {
	var ms []Peer
	for i := range 32 {
		ms = append(ms, peer(ID(i)<<59, string(rune('A'+i))))
	}
	n := ringNode(t, ms[0], ms, 8)
	got := n.Partners(5)
	seen := map[Peer]bool{}
	for _, p := range got {
		if p == ms[0] || seen[p] {
			t.Fatalf("partners %v: self or duplicate", got)
		}
		seen[p] = true
	}
	if len(got) != 5 {
		t.Fatalf("%d partners, want 5", len(got))
	}
	n.DiscoverPartners(t0, 3)
	fw, _ := sentOf[*FindSuccessor](n.Ready())
	for _, f := range fw {
		if f.Kind != KindPartner {
			t.Fatalf("partner lookup of kind %v", f.Kind)
		}
	}
}

// TestGossipEstimates: push-sum over a mini network converges to the
// true mean upload and the true count.
func TestGossipEstimates(t *testing.T) {
	s := newSimNet(t, 7)
	s.rejoin = true
	buildRing(s, 64)
	var sum float64
	for i, sn := range s.live() {
		up := float64(i % 5)
		sum += up
		sn.node.SetLocal(up, 0.5)
	}
	s.runFor(100 * time.Second)
	mean := sum / 64
	for _, sn := range s.live() {
		e := sn.node.Estimates()
		if !e.Final || abs(e.MeanUpload-mean) > 0.01*mean || abs(e.Health-0.5) > 0.005 || abs(e.Peers-64) > 16 {
			t.Fatalf("%v: estimates %+v, want upload %.3f health 0.5 peers ~64", sn.node.Self(), e, mean)
		}
	}
	e := s.live()[0].node.Estimates()
	t.Logf("64 nodes: peers %.1f, mean upload %.3f (true %.3f)", e.Peers, e.MeanUpload, mean)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestDeterministic: the same seed replays the same run, message for
// message; another seed does not.
func TestDeterministic(t *testing.T) {
	run := func(seed uint64) uint64 {
		s := newSimNet(t, seed)
		s.rejoin = true
		var h uint64 = 14695981039346656037
		s.onMsg = func(at time.Time, from, to Peer, m Message) {
			h ^= uint64(at.UnixNano()) ^ uint64(from.ID)*31 ^ uint64(to.ID)*17
			h *= 1099511628211
		}
		buildRing(s, 50)
		for range 5 {
			live := s.live()
			s.kill(live[s.rng.IntN(len(live))])
			s.runFor(time.Second)
		}
		s.runFor(20 * time.Second)
		return h
	}
	if a, b := run(3), run(3); a != b {
		t.Fatalf("seed 3 gave %x then %x", a, b)
	}
	if a, b := run(3), run(4); a == b {
		t.Fatalf("seeds 3 and 4 gave the same trace %x", a)
	}
}

func TestRejoinWhileStillListed(t *testing.T) {
	a, b, c := peer(100, "a"), peer(200, "b"), peer(300, "c")
	n := newNode(t, b)
	n.Join(t0, a)
	fs, _ := sentOf[*FindSuccessor](n.Ready())
	// The ring still lists b: the answer names b itself, then c.
	n.Step(t0, a, &Found{Req: fs[0].Req, Key: b.ID, Kind: KindJoin, Pred: a, Succ: b, Succs: []Peer{c, a}})
	if got := n.Successors(); len(got) != 2 || got[0] != c || got[1] != a {
		t.Fatalf("successors %v, want [c a]", got)
	}
	if !n.Joined() {
		t.Fatal("not joined")
	}
}
