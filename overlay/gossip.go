package overlay

import (
	"math"
	"time"
)

// Global estimates by push-sum (Kempe, Dobra and Gehrke, 2003): every node
// holds a sum and a weight per figure, each round keeps half and sends
// half to a random member, and s/w converges to the average over the
// ring in O(log N) rounds. Mass lost with a failed node or message
// biases nothing (it leaves with its own ratio), and epochs restart the
// averaging every EpochRounds rounds so that the figures follow the
// swarm: a node that hears of a newer epoch closes its own and joins it.
//
// The figures are averages of local values:
//   - peers: each node's estimate of the ring's size from the span of its
//     successor list ((k−1)·2^64/span, unbiased for random IDs; exact
//     when the list wraps round a small ring);
//   - upload and health: what the swarm core set with SetLocal.

const (
	estPeers = iota
	estUpload
	estHealth
	numEstimates
)

// Estimates are gossip-based figures for the whole ring.
type Estimates struct {
	Peers      float64 // members of the ring
	MeanUpload float64 // mean of the members' SetLocal upload
	Health     float64 // mean of the members' SetLocal health
	Epoch      uint64  // the epoch they come from
	Final      bool    // from a completed epoch (else: the running one)
}

type gossipState struct {
	epoch    uint64
	rounds   int
	sum      [numEstimates]float64
	weight   float64
	last     [numEstimates]float64
	hasLast  bool
	upload   float64
	health   float64
	lastFrom uint64
	// contrib is what this node's own values put into sum this epoch; a
	// change of them adds the difference (so the average follows a node
	// whose successor list or SetLocal figures changed mid-epoch).
	contrib [numEstimates]float64
}

func (g *gossipState) init() { g.health = 1 }

// SetLocal sets this node's own values averaged into the estimates: its
// upload capacity (any unit, used consistently) and a health figure (for
// example its playout continuity, 0..1). They enter at the next epoch.
func (n *Node) SetLocal(upload, health float64) {
	n.gossip.upload, n.gossip.health = upload, health
}

// Estimates returns the latest global figures.
func (n *Node) Estimates() Estimates {
	g := &n.gossip
	if g.hasLast {
		return Estimates{Peers: g.last[estPeers], MeanUpload: g.last[estUpload], Health: g.last[estHealth], Epoch: g.lastFrom, Final: true}
	}
	if g.weight == 0 {
		return Estimates{Peers: 1, MeanUpload: g.upload, Health: g.health}
	}
	return Estimates{Peers: g.sum[estPeers] / g.weight, MeanUpload: g.sum[estUpload] / g.weight,
		Health: g.sum[estHealth] / g.weight, Epoch: g.epoch}
}

// sizeEstimate is this node's local estimate of the ring's size.
func (n *Node) sizeEstimate() float64 {
	k := len(n.succs)
	switch {
	case k == 0:
		return 1
	case k < n.cfg.Successors:
		return float64(k + 1) // the list wrapped round the whole ring
	}
	span := float64(dist(n.self.ID, n.succs[k-1].ID))
	if span == 0 {
		return float64(k + 1)
	}
	return float64(k-1) * math.Ldexp(1, 64) / span
}

func (g *gossipState) local(n *Node) [numEstimates]float64 {
	return [numEstimates]float64{n.sizeEstimate(), g.upload, g.health}
}

func (g *gossipState) reset(n *Node) {
	g.rounds = 0
	g.sum = g.local(n)
	g.contrib = g.sum
	g.weight = 1
}

// update adds the change of this node's own values since they entered,
// while this node holds at least half of a unit of weight; else it waits.
// A change moves the node's ratio by change/weight: at a node holding
// little weight it made wild outliers (a ring size of 17 × the truth, a
// mean health above 1, in the simulator's 300-peer churn runs), and they
// could close an epoch. A change not applied in an epoch is dropped with
// it; the next epoch starts from the node's values as they are.
func (g *gossipState) update(n *Node) {
	if g.weight < 0.5 {
		return
	}
	cur := g.local(n)
	for i := range g.sum {
		g.sum[i] += cur[i] - g.contrib[i]
	}
	g.contrib = cur
}

func (g *gossipState) finish() {
	if g.weight > 0 {
		for i := range g.sum {
			g.last[i] = g.sum[i] / g.weight
		}
		g.hasLast, g.lastFrom = true, g.epoch
	}
}

// round sends half the mass to a random member and closes the epoch
// when it is over.
func (g *gossipState) round(n *Node, now time.Time) {
	g.rounds++
	if g.rounds >= n.cfg.EpochRounds {
		g.finish()
		g.epoch++
		g.reset(n)
	} else {
		g.update(n)
	}
	ms := n.Members()
	if len(ms) == 0 || g.weight == 0 {
		return
	}
	to := ms[intN(n.rng, len(ms))]
	m := &Gossip{Epoch: g.epoch, Weight: g.weight / 2, Offers: n.offers.outgoing(n, now)}
	for i := range g.sum {
		g.sum[i] /= 2
		m.Sum[i] = g.sum[i]
	}
	g.weight /= 2
	n.send(to, m)
}

func (g *gossipState) receive(n *Node, m *Gossip) {
	if m.Epoch < g.epoch {
		return
	}
	if m.Epoch > g.epoch {
		if m.Epoch == g.epoch+1 && g.rounds >= n.cfg.EpochRounds/2 {
			g.finish() // a nearly complete epoch: its figures are good
		}
		g.epoch = m.Epoch
		g.reset(n)
	}
	for i := range g.sum {
		g.sum[i] += m.Sum[i]
	}
	g.weight += m.Weight
}
