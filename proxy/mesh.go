package proxy

import (
	"slices"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/tracker"
)

// meshPartners is how many partners a peer pulls missing chunks from.
const meshPartners = 4

// partnersLocked returns the partners the peer pulls from (see
// swarm.Node.SetPartners): its tracker backups, rank by rank and stripe
// by stripe, the first meshPartners that are not the origin (which
// serves fetches), not this stripe's parent, and not lost lately. The
// tracker's backups of a stripe are forwarders of it outside the
// subtree of the peer's parent that the placement checked the peer can
// reach: they still receive the stripe when the parent fails, and one of
// them is the parent the peer switches to. p.mu must be held.
func (p *Peer) partnersLocked(as []tracker.StripeAssignment) []transport.Peer {
	var out []transport.Peer
	for r := 0; len(out) < meshPartners; r++ {
		more := false
		for _, a := range as {
			if r >= len(a.Backups) {
				continue
			}
			more = true
			b := a.Backups[r]
			_, lost := p.failed[b.ID]
			if len(out) >= meshPartners || b.IsZero() || b.ID == string(p.ID()) || b.ID == p.channel.Origin.ID ||
				b.ID == a.Parent.ID || lost ||
				slices.ContainsFunc(out, func(q transport.Peer) bool { return q.ID == swarm.NodeID(b.ID) }) {
				continue
			}
			out = append(out, peerOf(b))
		}
		if !more {
			break
		}
	}
	return out
}
