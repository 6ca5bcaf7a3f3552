package overlay

import (
	"slices"
	"time"
)

// Partner discovery by gossip: offers of room near the top of the trees.
//
// The overlay knows nothing of stripes or trees; its user (the swarm's
// driver) sets, with SetOffers, what this member offers per stripe: its
// depth in the stripe's tree, how many more children it would take and
// the newest slice of the stripe it holds.
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
	// Newest is the newest slice (seq) of the stripe the member held
	// when it made the offer; 0 unknown. A peer whose stripe starves
	// does not switch to a member that held nothing newer (chandelier's
	// Pointless).
	Newest uint64
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
	// direct are, per member heard from directly, the own offers its
	// latest gossip carried and when (see Heard); read by key only,
	// pruned by age.
	direct map[ID]directOffers
	// told is when this member last told each member its offers (Tell);
	// read by key only, pruned by age.
	told map[ID]time.Time
}

// directOffers are a member's own offers as it sent them.
type directOffers struct {
	at     time.Time
	offers []Offer
}

// maxDirect bounds how many members' own offers a node keeps (and how
// many members it remembers telling).
const maxDirect = 256

// tellGap is how soon after telling a member this one answers its Tell
// again: a parent answers each child's Tell at most once a tellGap.
const tellGap = time.Second

// Tell sends this member's own offers to p at once: a gossip message
// without estimate mass (a round's gossip always carries some). A member
// that receives one answers with its own Tell, unless it told the sender
// within tellGap, so the exchange ends. A child
// tells its parent (a peer it can reach) and so hears the parent's depth
// in each stripe back (Heard): it takes its own depth from its parent's
// rather than from an older view of the trees. A member of an older
// build takes a Tell for gossip without mass and does not answer.
func (n *Node) Tell(now time.Time, p Peer) {
	n.start(now)
	if p.ID == n.self.ID {
		return
	}
	s := &n.offers
	if s.told == nil {
		s.told = map[ID]time.Time{}
	}
	if _, known := s.told[p.ID]; !known && len(s.told) >= maxDirect {
		for id, at := range s.told { // deletes only: order does not matter
			if now.Sub(at) > tellGap {
				delete(s.told, id)
			}
		}
	}
	s.told[p.ID] = now
	n.send(p, &Gossip{Epoch: n.gossip.epoch, Offers: slices.Clone(n.offers.own)})
}

// TellID tells member id this member's own offers at once (Tell), when
// its address is known: it is in this node's tables, or it sent this
// node its own offers within Config.OfferTTL (a child telling its parent
// does). A parent whose depth changed so tells its children without
// waiting for their next Tell. It reports whether it sent.
func (n *Node) TellID(now time.Time, id ID) bool {
	if id == n.self.ID {
		return false
	}
	p, ok := n.peerOf(id)
	if !ok {
		if d, found := n.offers.direct[id]; found && now.Sub(d.at) <= n.cfg.OfferTTL && len(d.offers) > 0 {
			p, ok = d.offers[0].Peer, true
		}
	}
	if !ok {
		return false
	}
	n.Tell(now, p)
	return true
}

// answerTell answers a Tell from p with this member's own.
func (n *Node) answerTell(now time.Time, p Peer) {
	if len(n.offers.own) == 0 {
		return // nothing to tell
	}
	if at, ok := n.offers.told[p.ID]; ok && now.Sub(at) < tellGap {
		return
	}
	n.Tell(now, p)
}

// Heard returns the own offers member id last sent this node directly
// (Tell, or a gossip round), with their age at now; ok is false when none
// younger than Config.OfferTTL was heard.
func (n *Node) Heard(now time.Time, id ID) (offers []Offer, ok bool) {
	d, found := n.offers.direct[id]
	if !found || now.Sub(d.at) > n.cfg.OfferTTL {
		return nil, false
	}
	out := slices.Clone(d.offers)
	for i := range out {
		out[i].Age = max(now.Sub(d.at), 0)
	}
	return out, true
}

// heardFrom records the own offers of the sender of a gossip message.
func (s *offerState) heardFrom(n *Node, now time.Time, from Peer, offers []Offer) {
	var own []Offer
	for i, o := range offers {
		if i == MaxOffersPerMessage {
			break
		}
		if o.Peer.ID == from.ID && o.Age == 0 {
			own = append(own, o)
		}
	}
	if len(own) == 0 {
		return
	}
	if s.direct == nil {
		s.direct = map[ID]directOffers{}
	}
	if _, known := s.direct[from.ID]; !known && len(s.direct) >= maxDirect {
		for id, d := range s.direct { // deletes only: order does not matter
			if now.Sub(d.at) > n.cfg.OfferTTL {
				delete(s.direct, id)
			}
		}
		if len(s.direct) >= maxDirect {
			return // all fresh: the newcomer waits for room
		}
	}
	s.direct[from.ID] = directOffers{at: now, offers: own}
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
	delete(s.direct, id)
	for st, list := range s.held {
		s.held[st] = slices.DeleteFunc(list, func(x heldOffer) bool { return x.Peer.ID == id })
	}
}

// peerOf returns the member id of this node's tables.
func (n *Node) peerOf(id ID) (Peer, bool) {
	if n.hasPred && n.pred.ID == id {
		return n.pred, true
	}
	for _, s := range n.succs {
		if s.ID == id {
			return s, true
		}
	}
	for i, f := range n.fingers {
		if n.fingerOK[i] && f.ID == id {
			return f, true
		}
	}
	return Peer{}, false
}
