package swarm

import "time"

// StripeNewest returns the newest slice the node received on stripe and
// its capture time; ok is false before any chunk of the stripe arrived.
// A driver judges by it whether the stripe starves (its newest chunk is
// old) and whether a candidate parent holds anything newer (see
// chandelier.Pointless).
func (n *Node) StripeNewest(stripe int) (seq uint64, capture time.Time, ok bool) {
	if stripe < 0 || stripe >= n.k || !n.stripes[stripe].seen {
		return 0, time.Time{}, false
	}
	seq = n.stripes[stripe].newest
	c, ok := n.captureOf(seq)
	return seq, c.Time(), ok
}
