package overlay

import (
	"testing"
	"time"
)

// TestOffersSpread: partner discovery. A few members of a 100-member
// ring offer room at a small depth in stripe 1; within a few rounds every
// member holds at least one of them among its best offers (not just the
// members whose successor list or fingers happen to name them), best
// first. A member that fails is dropped from the offers, and an offer
// that is no longer renewed ages out.
func TestOffersSpread(t *testing.T) {
	s := newSimNet(t, 11)
	s.rejoin = true
	buildRing(s, 100)
	live := s.live()
	shallow := map[ID]bool{}
	for i, sn := range live {
		if i%25 == 3 { // 4 shallow members with room
			shallow[sn.node.Self().ID] = true
			sn.node.SetOffers([]Offer{{Stripe: 1, Depth: 1, Free: 2}})
			continue
		}
		sn.node.SetOffers([]Offer{{Stripe: 1, Depth: 4, Free: 0}, {Stripe: 2, Depth: 3, Free: 1}})
	}
	s.runFor(15 * time.Second)
	for _, sn := range s.live() {
		if shallow[sn.node.Self().ID] {
			continue
		}
		got := sn.node.Offers(s.now, 1)
		if len(got) == 0 || !shallow[got[0].Peer.ID] || got[0].Depth != 1 || got[0].Free != 2 {
			t.Fatalf("%v: best offers in stripe 1 %+v, want a shallow member with room first", sn.node.Self(), got)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Free > 0 && got[i-1].Free > 0 && got[i].Depth < got[i-1].Depth {
				t.Fatalf("%v: offers out of order %+v", sn.node.Self(), got)
			}
		}
		for _, o := range got {
			if o.Age > DefaultOfferTTL || o.Peer.ID == sn.node.Self().ID {
				t.Fatalf("%v: offer %+v too old or its own", sn.node.Self(), o)
			}
		}
		if len(sn.node.Offers(s.now, 2)) == 0 {
			t.Fatalf("%v: no offers in stripe 2", sn.node.Self())
		}
	}

	// One shallow member dies; its offer goes at the nodes that find it
	// failed and ages out everywhere else.
	var dead *simNode
	for _, sn := range s.live() {
		if shallow[sn.node.Self().ID] {
			dead = sn
			break
		}
	}
	s.kill(dead)
	s.runFor(DefaultOfferTTL + 5*time.Second)
	for _, sn := range s.live() {
		for _, o := range sn.node.Offers(s.now, 1) {
			if o.Peer.ID == dead.node.Self().ID {
				t.Fatalf("%v still offers the dead member %v (age %v)", sn.node.Self(), o.Peer, o.Age)
			}
		}
	}
}

// TestOffersBounded: a message with too many, too old or self offers
// changes nothing beyond the bounds.
func TestOffersBounded(t *testing.T) {
	a, b := peer(100, "a"), peer(200, "b")
	n := newNode(t, a)
	var many []Offer
	for i := range 3 * MaxOffersPerMessage {
		many = append(many, Offer{Peer: peer(ID(1000+i), "x"), Stripe: 0, Depth: uint16(i), Free: 1})
	}
	many = append([]Offer{{Peer: a, Stripe: 0, Depth: 0, Free: 9}, {Peer: b, Stripe: 0, Depth: 0, Free: 9, Age: time.Hour}}, many...)
	n.Step(t0, b, &Gossip{Epoch: 0, Weight: 0.5, Offers: many})
	got := n.Offers(t0, 0)
	if len(got) != n.Config().Offers {
		t.Fatalf("%d offers held, want %d", len(got), n.Config().Offers)
	}
	for i, o := range got {
		if o.Peer == a || o.Peer == b || o.Depth != uint16(i) {
			t.Fatalf("offer %d: %+v (want depth %d, neither its own nor the stale one)", i, o, i)
		}
	}
	if len(n.Offers(t0.Add(n.Config().OfferTTL+time.Second), 0)) != 0 {
		t.Fatal("offers outlived OfferTTL")
	}
}

// TestTellHeard: a parent tells a child its own offers (its depth per
// stripe); the child reads them back with Heard, keyed by the sender,
// whatever its best-offers list holds. Offers the sender only relays,
// stale ones and a failed member's are not its own; a message carries no
// estimate mass.
func TestTellHeard(t *testing.T) {
	a, b, c := peer(100, "a"), peer(200, "b"), peer(300, "c")
	pa, pb := newNode(t, a), newNode(t, b)
	pa.SetOffers([]Offer{{Stripe: 0, Depth: 3, Free: 0}, {Stripe: 2, Depth: 5, Free: 1}})
	pa.Tell(t0, a) // to itself: nothing
	pa.Tell(t0, b)
	r := pa.Ready()
	if len(r.Messages) != 1 || r.Messages[0].To != b {
		t.Fatalf("Tell sent %+v", r.Messages)
	}
	g, ok := r.Messages[0].Msg.(*Gossip)
	if !ok || g.Weight != 0 || g.Sum != [numEstimates]float64{} {
		t.Fatalf("Tell sent %+v, want a gossip message without mass", r.Messages[0].Msg)
	}
	if _, ok := pb.Heard(t0, a.ID); ok {
		t.Fatal("heard before anything arrived")
	}
	// A relayed offer of c in the same message is not a's own.
	g.Offers = append(g.Offers, Offer{Peer: c, Stripe: 1, Depth: 1, Free: 1, Age: time.Second})
	pb.Step(t0.Add(time.Second), a, g)
	// b has no offers of its own yet: no answer.
	if r := pb.Ready(); len(r.Messages) != 0 {
		t.Fatalf("b answered with %+v without offers", r.Messages)
	}
	got, ok := pb.Heard(t0.Add(2*time.Second), a.ID)
	if !ok || len(got) != 2 || got[0].Stripe != 0 || got[0].Depth != 3 || got[1].Stripe != 2 || got[1].Depth != 5 || got[0].Age != time.Second {
		t.Fatalf("heard %+v, %v; want a's two offers, a second old", got, ok)
	}
	if _, ok := pb.Heard(t0, c.ID); ok {
		t.Fatal("a relayed offer counted as heard from its member")
	}
	if _, ok := pb.Heard(t0.Add(time.Second+pb.Config().OfferTTL+time.Millisecond), a.ID); ok {
		t.Fatal("heard offers outlived OfferTTL")
	}
	pb.NodeFailed(t0.Add(3*time.Second), a.ID)
	if _, ok := pb.Heard(t0.Add(3*time.Second), a.ID); ok {
		t.Fatal("a failed member's offers are still heard")
	}
}

// TestTellAnswered: a child tells its parent its offers and hears the
// parent's back; the exchange ends after one answer.
func TestTellAnswered(t *testing.T) {
	child, parent := peer(100, "child"), peer(200, "parent")
	c, p := newNode(t, child), newNode(t, parent)
	// The child knows no depth yet: it tells nothing, and asks.
	p.SetOffers([]Offer{{Stripe: 1, Depth: 2, Free: 1}})
	now := t0
	c.Tell(now, parent)
	msgs := 0
	for range 10 { // deliver until quiet
		moved := false
		for _, pair := range [][2]*Node{{c, p}, {p, c}} {
			for _, e := range pair[0].Ready().Messages {
				msgs++
				moved = true
				pair[1].Step(now, pair[0].Self(), e.Msg)
			}
		}
		if !moved {
			break
		}
	}
	if msgs != 2 {
		t.Errorf("%d messages exchanged, want the tell and its answer", msgs)
	}
	got, ok := c.Heard(now, parent.ID)
	if !ok || len(got) != 1 || got[0].Depth != 2 {
		t.Fatalf("the child heard %+v, %v from its parent; want depth 2", got, ok)
	}
	if _, ok := p.Heard(now, child.ID); ok {
		t.Fatal("the parent heard offers from a child that has none")
	}
}

// TestTellIDTold: a parent whose depth changed tells a child at once by
// its ID, known from the child's own Tell (not in the parent's tables);
// the child's node reports the Tell as a Told event carrying the
// parent's offers. An ID it knows nothing of is not told.
func TestTellIDTold(t *testing.T) {
	child, parent := peer(100, "child"), peer(200, "parent")
	c, p := newNode(t, child), newNode(t, parent)
	now := t0
	if p.TellID(now, child.ID) {
		t.Fatal("told a member it knows nothing of")
	}
	// The child (depth 4 in stripe 1) tells its parent: the parent now
	// knows its address.
	c.SetOffers([]Offer{{Stripe: 1, Depth: 4, Free: 1}})
	c.Tell(now, parent)
	for _, e := range c.Ready().Messages {
		p.Step(now, child, e.Msg)
	}
	p.Ready() // (no answer: the parent has no offers yet)
	// The parent's depth changes to 1: it tells the child at once.
	p.SetOffers([]Offer{{Stripe: 1, Depth: 1, Free: 2}})
	now = now.Add(2 * time.Second)
	if !p.TellID(now, child.ID) {
		t.Fatal("the parent could not tell its child")
	}
	r := p.Ready()
	if len(r.Messages) != 1 || r.Messages[0].To != child {
		t.Fatalf("TellID sent %+v", r.Messages)
	}
	c.Step(now, parent, r.Messages[0].Msg)
	var told *Told
	for _, ev := range c.Ready().Events {
		if ev, ok := ev.(Told); ok {
			told = &ev
		}
	}
	if told == nil || told.From != parent || len(told.Offers) != 1 || told.Offers[0].Depth != 1 {
		t.Fatalf("the child's events: Told %+v; want the parent's depth 1", told)
	}
}
