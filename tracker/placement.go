package tracker

// This file is pure: no clock, no I/O, no goroutines, no randomness.

import "time"

// A Candidate is a node of a channel's tree with at least one free child
// slot that a [Placer] may choose as a parent. It is connected to the
// origin and is neither the node being placed, one of its descendants, nor
// a node the placement must avoid.
type Candidate struct {
	ID       string    // node ID (the origin's node ID for the origin)
	Origin   bool      // the channel's origin
	Depth    int       // 0 for the origin, 1 for its children, ...
	Capacity int       // child slots
	Children int       // slots in use, < Capacity
	Joined   time.Time // when the peer joined; zero for the origin
}

// A Placer picks the parent of a peer that joins or must be re-placed.
// Implementations are pure and deterministic: same input, same answer.
type Placer interface {
	// Place returns the index in cands of the parent for the peer id with
	// the given capacity, or -1 to leave it without a parent. cands is
	// never empty; it lists the origin first, then peers by depth (the
	// order of a breadth-first walk with children sorted by ID).
	//
	// When no node has a free slot the tree does not ask the Placer: a
	// peer that can forward then takes the place of the shallowest
	// leaf-only peer, which becomes its child.
	Place(id string, capacity int, cands []Candidate, now time.Time) int
}

// Shallowest is the skeleton placement: the origin while it has a free
// slot, then the shallowest peer with a free slot; ties go to the peer
// that joined earliest, then to the smaller ID.
type Shallowest struct{}

// Place implements [Placer].
func (Shallowest) Place(_ string, _ int, cands []Candidate, _ time.Time) int {
	best := -1
	for i, c := range cands {
		if best < 0 || shallower(c, cands[best]) {
			best = i
		}
	}
	return best
}

func shallower(a, b Candidate) bool {
	if a.Origin != b.Origin {
		return a.Origin
	}
	if a.Depth != b.Depth {
		return a.Depth < b.Depth
	}
	if !a.Joined.Equal(b.Joined) {
		return a.Joined.Before(b.Joined)
	}
	return a.ID < b.ID
}
