package chandelier

// The ring rule: the peer side of Chandelier while the tracker is away.
//
// A peer that lost a stripe's parent and has no usable backup, while it
// cannot reach the tracker (an outage, a network partition), picks a new
// parent among the overlay ring members it knows. Picking freely can close
// a cycle (a peer adopting one of its own descendants, which then starve
// together). The rule keeps every stripe tree loop-free with local
// knowledge only:
//
//   - every peer advertises, per stripe, a rank: its depth in the stripe
//     tree (the origin is 0) and a tie-break ID (its ring ID);
//   - a peer may pick only a member whose rank is smaller than its own
//     (smaller depth, or the same depth and a smaller ID), that has
//     spare capacity (or already feeds it another stripe);
//   - while the tracker is away a peer's advertised depth never grows:
//     after a switch it is min(own depth, parent's depth + 1), and
//     refreshed from its parent it is min(own depth, parent's depth + 1).
//
// Invariant: along every parent pointer made or refreshed under the rule,
// the child's rank is greater than its parent's. A switch keeps it for the
// new edge (by the choice) and for the edges below the peer (its depth only
// shrinks); a refresh only shrinks depths. Ranks strictly fall along any
// path of parent pointers, so no path returns to where it started: the
// trees stay acyclic whatever the order of the switches, and with stale
// advertisements as long as they were true once (depths only shrink).
// While the tracker is up its placement rules, and depths are refreshed
// from the parents as they are (they may grow).

// RingRank is a peer's place in a stripe tree for the ring rule.
type RingRank struct {
	Depth int    // hops from the origin (the origin is 0)
	ID    uint64 // tie-break: the peer's ring ID
}

// Less reports whether a ranks before b: a may feed b under the rule.
func (a RingRank) Less(b RingRank) bool {
	return a.Depth < b.Depth || a.Depth == b.Depth && a.ID < b.ID
}

// RingCandidate is a ring member as a candidate parent.
type RingCandidate struct {
	Rank RingRank // as it advertises for the stripe
	// Spare: it has room for another child. Linked: it already feeds
	// this peer another stripe (no new child needed).
	Spare, Linked bool
	Failed        bool // lost lately, unreachable or refused
	// Stale: the stripe starves and it holds nothing newer of it than the
	// peer (see [Pointless]): never taken.
	Stale bool
}

// RingParent picks the new parent of a stripe for a peer of rank self
// under the ring rule: among the candidates that rank before self, have
// not failed and have room (or already feed it), the shallowest; ties go
// to one that already feeds the peer, then to the earlier candidate (the
// caller's order, e.g. ring order). ok is false when none qualifies: the
// origin's fallback covers the stripe until the tracker is back.
func RingParent(self RingRank, cands []RingCandidate) (i int, ok bool) {
	best := -1
	for k, c := range cands {
		if c.Failed || c.Stale || !(c.Spare || c.Linked) || !c.Rank.Less(self) {
			continue
		}
		if best < 0 {
			best = k
			continue
		}
		b := cands[best]
		if c.Rank.Depth < b.Rank.Depth || c.Rank.Depth == b.Rank.Depth && c.Linked && !b.Linked {
			best = k
		}
	}
	return best, best >= 0
}

// RingDepth is a peer's advertised depth once fed by a parent that
// advertises parentDepth, while the tracker is away: it never grows.
func RingDepth(own, parentDepth int) int {
	return min(own, parentDepth+1)
}
