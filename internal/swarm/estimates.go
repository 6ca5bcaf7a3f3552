package swarm

import (
	"fmt"
	"math/bits"
	"time"
)

// Estimates are the swarm's global figures a node's driver knows without
// the tracker — in swarmtv the overlay's gossip estimates (push-sum over
// the ring) — and whether the tracker is reachable. The driver hands them
// to the node with SetEstimates; the zero value (nothing known, the
// tracker up) changes nothing.
type Estimates struct {
	Peers float64 // viewers in the swarm; 0 unknown
	// UploadRatio is the viewers' mean upload over the stream rate (1:
	// the swarm's upload just carries the stream to everyone); 0 unknown.
	UploadRatio float64
	// Health is the viewers' mean playout continuity, 0..1; 0 unknown.
	Health float64
	// TrackerAway: the node cannot reach the tracker, so no placement
	// round rebalances its children or replaces its parents.
	TrackerAway bool
}

// PoorHealth is the mean continuity below which the swarm's health is
// poor: viewers stall for more than one slice in a hundred.
const PoorHealth = 0.99

// SetEstimates sets the swarm's global figures the node decides with:
//
//   - the accept limit: while the tracker is away, a node takes no more
//     stripe feeds than Config.Capacity (a new child, or a subscription
//     that grows past it, gets ErrFull): no round would rebalance an
//     overloaded parent, whose queues put its whole subtree ever further
//     behind live, and the child repairs to a member with room (its
//     backups, the ring rule). With the tracker up it keeps MaxChildren
//     (the tracker's slack for children it moved, which leave late).
//     Measured in the simulator (300 peers, churn 10 %/min, tracker down
//     60 s): without the limit parents shed 85–119 children and seed 2's
//     continuity while the tracker was away fell to 0.9957 (0.9997 with
//     it); keeping the slack while upload is scarce (mean upload 0.9 of
//     the stream) made parents shed 1,323 children and gave continuity
//     0.43 against 0.48; a limit at capacity with the tracker up lowered
//     seed 3's continuity from 0.9989 to 0.9849.
//   - the playout margin: while the swarm's health is poor (Health
//     below PoorHealth), a viewer that converges its playout (with
//     StartMargin) keeps half a PlayoutDelay more behind the slowest
//     recent arrival, as after a stall of its own (see catchUp): the
//     repairs that cost the swarm its continuity are slow, and the
//     margin gives them time before this viewer stalls too. It takes
//     the margin by playing up to CatchUp slower, and gives it back the
//     same way once the swarm's health is good again.
func (n *Node) SetEstimates(nowT time.Time, e Estimates) {
	now := at(nowT)
	if e == n.est {
		return
	}
	n.est = e
	n.step(now)
}

// Estimates returns what SetEstimates last set.
func (n *Node) Estimates() Estimates { return n.est }

// healthMargin is the playout margin kept beyond PlayoutDelay for the
// swarm's health (see SetEstimates).
func (n *Node) healthMargin() time.Duration {
	if h := n.est.Health; h > 0 && h < PoorHealth {
		return n.cfg.PlayoutDelay / 2
	}
	return 0
}

// feedLimit is how many stripe feeds the node takes from its children (0:
// no limit beyond MaxChildren; see SetEstimates).
func (n *Node) feedLimit() int {
	if n.est.TrackerAway {
		return n.cfg.Capacity
	}
	return 0
}

// checkFeeds reports ErrFull when subscribing id to mask would take the
// node's stripe feeds past its limit (see feedLimit). A renewed
// subscription that does not grow is always kept.
func (n *Node) checkFeeds(id NodeID, mask uint16) error {
	limit := n.feedLimit()
	if limit == 0 {
		return nil
	}
	feeds, own := 0, 0
	for i := range n.children {
		c := &n.children[i]
		f := bits.OnesCount16(c.mask)
		if c.id == id {
			own = f
			continue
		}
		feeds += f
	}
	want := bits.OnesCount16(mask)
	if want <= own || feeds+want <= limit {
		return nil
	}
	return fmt.Errorf("%w: %d stripe feeds taken, %d asked, capacity %d while the tracker is away", ErrFull, feeds, want, limit)
}
