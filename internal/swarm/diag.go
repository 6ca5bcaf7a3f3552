package swarm

import "time"

// Diagnostics: read-only views of a node's state for tools that explain
// its playout (the simulator's account of missed slices). They change
// nothing.

// Stalled reports the slice playout is stalled on and the stripes of it
// the node holds (a mask); ok is false unless playout runs and is stalled.
func (n *Node) Stalled() (seq uint64, held uint16, ok bool) {
	p := &n.play
	if !p.started || !p.stalled {
		return 0, 0, false
	}
	if i, found := n.find(p.next); found {
		held = n.idx[i].held
	}
	return p.next, held, true
}

// Due reports when slice seq is due on the node's playout clock; ok is
// false before playout starts or when the node cannot place seq.
func (n *Node) Due(seq uint64) (time.Time, bool) {
	if !n.play.started {
		return time.Time{}, false
	}
	t, ok := n.playAt(seq)
	return t.Time(), ok
}
