package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/swarmtv/swarmtv/overlay"
)

// Overlay frames (version 1). A node opens an overlay stream with one
// FrameOverlayHello and then sends one FrameOverlay per overlay message;
// the receiver only reads. Both payloads start with the version byte.
//
//	hello     version u8, channel string, from peer
//	message   version u8, type u8, then the type's fields:
//
//	  1 find-successor  req uvarint, key u64, origin peer, kind u8, hops uvarint
//	  2 found           req uvarint, key u64, kind u8, pred peer, succ peer,
//	                    hops uvarint, nsuccs uvarint, nsuccs × peer
//	  3 get-pred        req uvarint
//	  4 pred-reply      req uvarint, flags u8 (bit 0: has pred),
//	                    [pred peer when flag 0], nsuccs uvarint, nsuccs × peer
//	  5 notify          (nothing)
//	  6 succ-hint       cand peer
//	  7 ping            req uvarint
//	  8 pong            req uvarint
//	  9 merge-hint      contact peer
//	 10 gossip          epoch uvarint, 3 × sum f64, weight f64
//	 11 gossip-offers   the gossip fields, then noffers uvarint (1 …
//	                    MaxOverlayOffers), noffers × offer (a gossip
//	                    message with offers of room for partner discovery;
//	                    one without any is sent as type 10)
//	 12 gossip-newest   as gossip-offers, each offer followed by newest
//	                    uvarint (the newest slice of the stripe the
//	                    member held; 0 unknown). Sent when an offer
//	                    carries one (else refused: one encoding per
//	                    message); type 11 otherwise, and a type-11
//	                    offer decodes with newest 0 (unknown). A build
//	                    older than type 12 refuses it.
//
//	offer    peer, stripe u8, depth uvarint (< 2^16), free uvarint
//	         (< 2^16), age-ms uvarint (at most MaxOfferAgeMS)
//
//	peer     id u64, addr string (at most MaxOverlayAddrLen bytes)
//	f64      IEEE 754 bits, big-endian; finite
//
// Kinds are those of overlay.Kind that travel (lookup … partner); hops at
// most MaxOverlayHops; successor lists at most MaxOverlayPeers.

// Frame types of the overlay. They sit apart from the media frames' range
// so that new media frame types never collide with them.
const (
	FrameOverlayHello FrameType = 0x40 // OverlayHello: opens an overlay stream
	FrameOverlay      FrameType = 0x41 // one overlay message
)

// Limits of overlay messages.
const (
	MaxOverlayAddrLen = 200  // a peer's address ("nodeid@host:port")
	MaxOverlayPeers   = 64   // successor list entries in one message
	MaxOverlayHops    = 1024 // forwards of one lookup
	MaxOverlayOffers  = overlay.MaxOffersPerMessage
	MaxOfferAgeMS     = 3_600_000 // an offer's age: one hour
	// MaxOverlayLen bounds an overlay frame's payload: the largest
	// message (a Found with a full successor list) fits.
	MaxOverlayLen = 2 + 8 + 8 + 1 + 3 + (MaxOverlayPeers+2)*(8+2+MaxOverlayAddrLen) + 2*binary.MaxVarintLen64
)

// Overlay message type codes.
const (
	ovFindSuccessor = 1 + iota
	ovFound
	ovGetPred
	ovPredReply
	ovNotify
	ovSuccHint
	ovPing
	ovPong
	ovMergeHint
	ovGossip
	ovGossipOffers
	ovGossipNewest
)

const numWireKinds = 5 // overlay.KindLookup … overlay.KindPartner

// OverlayHello opens an overlay stream: the channel whose overlay it is
// and the sender as a ring member (its ID and the address to reach it).
type OverlayHello struct {
	Channel string
	From    overlay.Peer
}

// Append appends h's encoding to b.
func (h OverlayHello) Append(b []byte) []byte {
	b = append(b, Version)
	b = appendString(b, h.Channel)
	return appendPeer(b, h.From)
}

// ParseOverlayHello decodes an OverlayHello payload.
func ParseOverlayHello(p []byte) (OverlayHello, error) {
	r := reader{b: p}
	if v := r.u8(); r.err == nil && v != Version {
		return OverlayHello{}, fmt.Errorf("%w: overlay hello version %d", ErrVersion, v)
	}
	var h OverlayHello
	h.Channel = r.string(MaxChannelLen)
	h.From = r.peer()
	r.end("overlay hello")
	if r.err == nil && h.Channel == "" {
		r.fail("overlay hello without channel")
	}
	if r.err != nil {
		return OverlayHello{}, r.err
	}
	return h, nil
}

func appendPeer(b []byte, p overlay.Peer) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(p.ID))
	return appendString(b, p.Addr)
}

func appendPeers(b []byte, ps []overlay.Peer) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendPeer(b, p)
	}
	return b
}

func appendF64(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
}

func (r *reader) peer() overlay.Peer {
	id := r.u64()
	addr := r.string(MaxOverlayAddrLen)
	return overlay.Peer{ID: overlay.ID(id), Addr: addr}
}

func (r *reader) peers() []overlay.Peer {
	n := r.count(MaxOverlayPeers)
	if n == 0 {
		return nil
	}
	ps := make([]overlay.Peer, 0, n)
	for range n {
		ps = append(ps, r.peer())
	}
	return ps
}

func (r *reader) kind() overlay.Kind {
	k := r.u8()
	if r.err == nil && k >= numWireKinds {
		r.fail(fmt.Sprintf("overlay lookup kind %d", k))
	}
	return overlay.Kind(k)
}

// offers reads a non-empty list of offers (gossip-offers; with newest,
// gossip-newest).
func (r *reader) offers(newest bool) []overlay.Offer {
	n := r.count(MaxOverlayOffers)
	if r.err == nil && n == 0 {
		r.fail("gossip-offers without offers")
	}
	var out []overlay.Offer
	for range n {
		if r.err != nil {
			return nil
		}
		o := overlay.Offer{Peer: r.peer(), Stripe: r.u8()}
		o.Depth = uint16(r.count(math.MaxUint16))
		o.Free = uint16(r.count(math.MaxUint16))
		o.Age = time.Duration(r.count(MaxOfferAgeMS)) * time.Millisecond
		if newest {
			o.Newest = r.uvarint()
		}
		out = append(out, o)
	}
	return out
}

func (r *reader) hops() int { return r.count(MaxOverlayHops) }

func (r *reader) f64() float64 {
	f := math.Float64frombits(r.u64())
	if r.err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
		r.fail("overlay gossip value not a finite number")
	}
	return f
}

func (r *reader) end(what string) {
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes in " + what)
	}
}

// AppendOverlay appends the encoding of an overlay message to b. It fails
// (wrapping ErrMalformed) for a message the decoder would refuse: an
// unknown type, a kind that does not travel, or a field over its limit.
func AppendOverlay(b []byte, m overlay.Message) ([]byte, error) {
	start := len(b)
	b = append(b, Version)
	switch m := m.(type) {
	case *overlay.FindSuccessor:
		b = append(b, ovFindSuccessor)
		b = binary.AppendUvarint(b, m.Req)
		b = binary.BigEndian.AppendUint64(b, uint64(m.Key))
		b = appendPeer(b, m.Origin)
		b = append(b, byte(m.Kind))
		b = binary.AppendUvarint(b, uint64(max(m.Hops, 0)))
	case *overlay.Found:
		b = append(b, ovFound)
		b = binary.AppendUvarint(b, m.Req)
		b = binary.BigEndian.AppendUint64(b, uint64(m.Key))
		b = append(b, byte(m.Kind))
		b = appendPeer(b, m.Pred)
		b = appendPeer(b, m.Succ)
		b = binary.AppendUvarint(b, uint64(max(m.Hops, 0)))
		b = appendPeers(b, m.Succs)
	case *overlay.GetPred:
		b = append(b, ovGetPred)
		b = binary.AppendUvarint(b, m.Req)
	case *overlay.PredReply:
		b = append(b, ovPredReply)
		b = binary.AppendUvarint(b, m.Req)
		if m.HasPred {
			b = append(b, 1)
			b = appendPeer(b, m.Pred)
		} else {
			b = append(b, 0)
		}
		b = appendPeers(b, m.Succs)
	case *overlay.Notify:
		b = append(b, ovNotify)
	case *overlay.SuccHint:
		b = append(b, ovSuccHint)
		b = appendPeer(b, m.Cand)
	case *overlay.Ping:
		b = append(b, ovPing)
		b = binary.AppendUvarint(b, m.Req)
	case *overlay.Pong:
		b = append(b, ovPong)
		b = binary.AppendUvarint(b, m.Req)
	case *overlay.MergeHint:
		b = append(b, ovMergeHint)
		b = appendPeer(b, m.Contact)
	case *overlay.Gossip:
		newest := slices.ContainsFunc(m.Offers, func(o overlay.Offer) bool { return o.Newest > 0 })
		switch {
		case len(m.Offers) == 0:
			b = append(b, ovGossip)
		case newest:
			b = append(b, ovGossipNewest)
		default:
			b = append(b, ovGossipOffers)
		}
		b = binary.AppendUvarint(b, m.Epoch)
		for _, s := range m.Sum {
			b = appendF64(b, s)
		}
		b = appendF64(b, m.Weight)
		if len(m.Offers) > 0 {
			b = binary.AppendUvarint(b, uint64(len(m.Offers)))
			for _, o := range m.Offers {
				b = appendPeer(b, o.Peer)
				b = append(b, o.Stripe)
				b = binary.AppendUvarint(b, uint64(o.Depth))
				b = binary.AppendUvarint(b, uint64(o.Free))
				b = binary.AppendUvarint(b, uint64(max(o.Age.Milliseconds(), 0)))
				if newest {
					b = binary.AppendUvarint(b, o.Newest)
				}
				if o.Age < 0 || o.Age.Milliseconds() > MaxOfferAgeMS {
					return b[:start], fmt.Errorf("%w: offer age %v", ErrMalformed, o.Age)
				}
			}
		}
	default:
		return b[:start], fmt.Errorf("%w: overlay message %T", ErrMalformed, m)
	}
	// The decoder is the one judge of limits: what it refuses is not sent.
	if _, err := ParseOverlay(b[start:]); err != nil {
		return b[:start], err
	}
	return b, nil
}

// ParseOverlay decodes an overlay message payload. The result owns its
// memory (nothing aliases p).
func ParseOverlay(p []byte) (overlay.Message, error) {
	if len(p) > MaxOverlayLen {
		return nil, fmt.Errorf("%w: overlay message of %d bytes", ErrMalformed, len(p))
	}
	r := reader{b: p}
	if v := r.u8(); r.err == nil && v != Version {
		return nil, fmt.Errorf("%w: overlay message version %d", ErrVersion, v)
	}
	t := r.u8()
	var m overlay.Message
	switch t {
	case ovFindSuccessor:
		f := &overlay.FindSuccessor{Req: r.uvarint(), Key: overlay.ID(r.u64())}
		f.Origin = r.peer()
		f.Kind = r.kind()
		f.Hops = r.hops()
		m = f
	case ovFound:
		f := &overlay.Found{Req: r.uvarint(), Key: overlay.ID(r.u64())}
		f.Kind = r.kind()
		f.Pred = r.peer()
		f.Succ = r.peer()
		f.Hops = r.hops()
		f.Succs = r.peers()
		m = f
	case ovGetPred:
		m = &overlay.GetPred{Req: r.uvarint()}
	case ovPredReply:
		pr := &overlay.PredReply{Req: r.uvarint()}
		switch flags := r.u8(); {
		case r.err != nil:
		case flags == 1:
			pr.HasPred = true
			pr.Pred = r.peer()
		case flags != 0:
			r.fail(fmt.Sprintf("pred-reply flags %#x", flags))
		}
		pr.Succs = r.peers()
		m = pr
	case ovNotify:
		m = &overlay.Notify{}
	case ovSuccHint:
		m = &overlay.SuccHint{Cand: r.peer()}
	case ovPing:
		m = &overlay.Ping{Req: r.uvarint()}
	case ovPong:
		m = &overlay.Pong{Req: r.uvarint()}
	case ovMergeHint:
		m = &overlay.MergeHint{Contact: r.peer()}
	case ovGossip, ovGossipOffers, ovGossipNewest:
		g := &overlay.Gossip{Epoch: r.uvarint()}
		for i := range g.Sum {
			g.Sum[i] = r.f64()
		}
		g.Weight = r.f64()
		if t != ovGossip {
			g.Offers = r.offers(t == ovGossipNewest)
		}
		if t == ovGossipNewest && r.err == nil && !slices.ContainsFunc(g.Offers, func(o overlay.Offer) bool { return o.Newest > 0 }) {
			r.fail("gossip-newest without a newest slice (type 11 carries those)")
		}
		m = g
	default:
		if r.err == nil {
			r.fail(fmt.Sprintf("overlay message type %d", t))
		}
	}
	r.end("overlay message")
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}
