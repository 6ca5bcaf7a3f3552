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
