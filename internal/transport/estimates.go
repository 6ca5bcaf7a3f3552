package transport

import (
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// SetEstimates hands the node the swarm's global figures and whether
// the tracker is reachable (swarm.Node.SetEstimates). It waits for Run to
// take them.
func (d *Driver) SetEstimates(e swarm.Estimates) {
	d.do(func() { d.node.SetEstimates(d.now(), e) })
}

// StripeNewest is the newest slice of a stripe a node holds
// (swarm.Node.StripeNewest); OK is false when it holds none.
type StripeNewest struct {
	Seq     uint64
	Capture time.Time
	OK      bool
}

// newestLocked returns the node's newest slice per stripe. Run goroutine
// only.
func (d *Driver) newestLocked() []StripeNewest {
	k := d.node.Config().Stripes
	out := make([]StripeNewest, k)
	for s := range k {
		out[s].Seq, out[s].Capture, out[s].OK = d.node.StripeNewest(s)
	}
	return out
}

// Newest returns the node's newest slice per stripe; nil once stopped.
func (d *Driver) Newest() []StripeNewest {
	res := make(chan []StripeNewest, 1)
	if !d.do(func() { res <- d.newestLocked() }) {
		return nil
	}
	select {
	case n := <-res:
		return n
	case <-d.ctx.Done():
		return nil
	}
}
