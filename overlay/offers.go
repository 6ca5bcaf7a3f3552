package overlay

import (
	"slices"
	"time"
)

// Partner discovery by gossip: offers of room near the top of the trees.
//
// The overlay knows nothing of stripes or trees; its user (the swarm's
// driver) sets, with SetOffers, what this member offers per stripe: its
// depth in the stripe's tree and how many more children it would take.
// Every gossip round carries this member's own offers and the best few it
// has heard per stripe (smallest depth with room first) to a random
// member, so offers of the shallow members with room spread through the
// ring epidemically, in O(log N) rounds. Each member keeps, per stripe,
// the best Config.Offers offers it heard, each with its age: an offer
// ages from when its member made it (the age travels with it, so a
// relayed offer does not grow young again) and is dropped once older
// than Config.OfferTTL, or when its member is found failed, or replaced
// by a newer offer of the same member. Offers returns them: candidates
// for a new parent while the tracker is away (chandelier's ring rule),
// beyond the few members in the successor list and fingers.

// Offer is a member's offer of room in one stripe tree.
type Offer struct {
	Peer   Peer
	Stripe uint8
	Depth  uint16 // its depth in the stripe tree (the origin is 0)
	Free   uint16 // children it would still take in the stripe
	// Age is how long ago the member made the offer (at the node that
	// holds or sends it).
	Age time.Duration
}

// Limits on what one Gossip message carries and what SetOffers takes.
const (
	MaxOffersPerMessage = 32
	MaxStripes          = 64
)

// better reports whether a is a better candidate than b: room first,
// then the smaller depth, then the fresher.
func (a *heldOffer) better(b *heldOffer) bool {
	if (a.Free > 0) != (b.Free > 0) {
		return a.Free > 0
	}
	if a.Depth != b.Depth {
		return a.Depth < b.Depth
	}
	if !a.made.Equal(b.made) {
		return a.made.After(b.made)
	}
	return a.Peer.ID < b.Peer.ID
}

type heldOffer struct {
	Offer
	made time.Time // now − Age when it was heard
}

type offerState struct {
	own  []Offer               // this member's, by stripe order as set
	held map[uint8][]heldOffer // per stripe, best first; iterated by stripe order only
}

// SetOffers sets what this member offers per stripe (Peer and Age are
// ignored: they are this member and now). Offers of more than
// MaxStripes stripes are cut.
func (n *Node) SetOffers(offers []Offer) {
	own := n.offers.own[:0]
	for _, o := range offers {
		if len(own) == MaxStripes {
			break
		}
		o.Peer, o.Age = n.self, 0
		own = append(own, o)
	}
	n.offers.own = own
}

// Offers returns the fresh offers this member heard for stripe, best
// first (room, then the smaller depth, then the fresher), with their age
// at now. It never includes this member's own.
func (n *Node) Offers(now time.Time, stripe uint8) []Offer {
	var out []Offer
	for _, h := range n.offers.held[stripe] {
		age := now.Sub(h.made)
		if age > n.cfg.OfferTTL {
			continue
		}
		o := h.Offer
		o.Age = max(age, 0)
		out = append(out, o)
	}
	return out
}

// outgoing is what a gossip message carries: this member's own offers,
// then the best held per stripe, at most MaxOffersPerMessage.
func (s *offerState) outgoing(n *Node, now time.Time) []Offer {
	out := slices.Clone(s.own)
	stripes := make([]uint8, 0, len(s.held))
	for st := range s.held {
		stripes = append(stripes, st)
	}
	slices.Sort(stripes)
	for _, st := range stripes {
		k := 0
		for _, h := range s.held[st] {
			if k == n.cfg.OffersRelayed || len(out) >= MaxOffersPerMessage {
				break
			}
			age := now.Sub(h.made)
			if age > n.cfg.OfferTTL || h.Free == 0 {
				continue
			}
			o := h.Offer
			o.Age = max(age, 0)
			out = append(out, o)
			k++
		}
	}
	if len(out) > MaxOffersPerMessage {
		out = out[:MaxOffersPerMessage]
	}
	return out
}

// receive merges offers heard at now.
func (s *offerState) receive(n *Node, now time.Time, offers []Offer) {
	for i, o := range offers {
		if i == MaxOffersPerMessage {
			break
		}
		if o.Peer.ID == n.self.ID || o.Age < 0 || o.Age > n.cfg.OfferTTL {
			continue
		}
		h := heldOffer{Offer: o, made: now.Add(-o.Age)}
		h.Age = 0
		if s.held == nil {
			s.held = map[uint8][]heldOffer{}
		}
		list := s.held[o.Stripe]
		if k := slices.IndexFunc(list, func(x heldOffer) bool { return x.Peer.ID == o.Peer.ID }); k >= 0 {
			if !h.made.After(list[k].made) {
				continue // no newer than what is held
			}
			list = slices.Delete(list, k, k+1)
		}
		// Drop the expired, insert in order, keep the best Config.Offers.
		list = slices.DeleteFunc(list, func(x heldOffer) bool { return now.Sub(x.made) > n.cfg.OfferTTL })
		at, _ := slices.BinarySearchFunc(list, h, func(x, h heldOffer) int {
			if x.better(&h) {
				return -1
			}
			return 1
		})
		list = slices.Insert(list, at, h)
		if len(list) > n.cfg.Offers {
			list = list[:n.cfg.Offers]
		}
		s.held[o.Stripe] = list
	}
}

// forget drops the offers of a failed member.
func (s *offerState) forget(id ID) {
	for st, list := range s.held {
		s.held[st] = slices.DeleteFunc(list, func(x heldOffer) bool { return x.Peer.ID == id })
	}
}
