package demo

import (
	"time"

	"github.com/swarmtv/swarmtv/internal/report"
)

// Report builds the demo's swarmtv.report/v1 from the peers, the origin
// and the tracker as they are now.
func (d *Demo) Report() *report.Report {
	r := report.New("demo", "demo")
	r.Peers = len(d.peers)
	wall := time.Since(d.start).Seconds()
	r.DurationS = wall
	r.WallS = wall

	var played, late, lost, stalls uint64
	var stallTime, watched time.Duration
	var player, p2p int64
	var startup, lags, repairs []time.Duration
	for _, p := range d.peers {
		st := p.Status()
		s := st.Swarm
		played += s.PlayedSlices
		late += s.LateSlices
		lost += s.LostSlices
		stalls += s.Stalls
		stallTime += s.StallTime
		watched += st.Watched
		player += int64(s.PlayerBytes)
		p2p += int64(s.BytesForwarded)
		if st.Startup > 0 {
			startup = append(startup, st.Startup)
		}
		lags = append(lags, p.Lags()...)
		repairs = append(repairs, s.RepairTimes...)
	}
	ost := d.origin.Stats()
	r.PlayerBytes = player
	r.OriginEgressBytes = int64(ost.EgressBytes)
	r.P2PBytes = p2p
	r.Savings = report.Savings(r.OriginEgressBytes, player)
	r.Continuity = report.Ratio(float64(played), float64(played+late+lost))
	r.Stalls = int64(stalls)
	r.RebufferRatio = report.Ratio(stallTime.Seconds(), watched.Seconds())
	if watched > 0 {
		r.StreamKbps = float64(player) * 8 / 1000 / watched.Seconds()
	}
	r.StartupMs = report.Of(report.Millis(startup))
	r.LagMs = report.Of(report.Millis(lags))
	r.RepairMs = report.Of(report.Millis(repairs))

	if dep := d.stripeDepth(); dep != nil {
		r.TreeDepth = dep
	} else if tv, err := d.tracker.Tree(Channel); err == nil && len(tv.Nodes) > 0 {
		sum, maxDepth := 0, 0
		for _, n := range tv.Nodes {
			sum += n.Depth
			maxDepth = max(maxDepth, n.Depth)
		}
		r.TreeDepth = &report.Depth{Mean: float64(sum) / float64(len(tv.Nodes)), Max: maxDepth}
	}
	// The dials the peers reported to the tracker's rendezvous (since
	// the last tracker start): direct on loopback.
	if d.rv != nil {
		cs := d.rv.Connections()
		r.NAT = &report.NAT{Direct: int(cs.Direct), Relayed: int(cs.Relayed), Failed: int(cs.Failed)}
	}
	r.ControlOverhead = report.Ratio(float64(d.ctrl.Load()), float64(p2p+r.OriginEgressBytes))
	return r
}

// stripeDepth is the depth of every peer in every stripe tree it has a
// parent in, from the peers' own per-stripe parents (the origin's
// children are at depth 1), as mean and max over stripes and peers; nil
// when no peer has a parent yet. A stripe whose parent chain does not
// reach the origin (a loop, or a parent waiting for its own) is not
// counted.
func (d *Demo) stripeDepth() *report.Depth {
	origin := string(d.origin.ID())
	parents := make(map[string][]string) // peer → parent ID by stripe
	for _, p := range d.peers {
		st := p.Status()
		ps := make([]string, len(st.Stripes))
		for s, a := range st.Stripes {
			ps[s] = a.Parent.ID
		}
		parents[string(p.ID())] = ps
	}
	sum, n, maxDepth := 0, 0, 0
	for _, ps := range parents {
		for s := range ps {
			if depth, ok := depthIn(parents, ps[s], s, origin); ok {
				sum += depth
				n++
				maxDepth = max(maxDepth, depth)
			}
		}
	}
	if n == 0 {
		return nil
	}
	return &report.Depth{Mean: float64(sum) / float64(n), Max: maxDepth}
}

// depthIn is the depth of a node whose stripe-s parent is parent: 1 under
// the origin, one more per peer above; ok is false when the chain does
// not reach the origin.
func depthIn(parents map[string][]string, parent string, s int, origin string) (depth int, ok bool) {
	cur := parent
	for depth = 1; depth <= len(parents)+1; depth++ {
		if cur == origin {
			return depth, true
		}
		up := parents[cur]
		if s >= len(up) || up[s] == "" {
			return 0, false
		}
		cur = up[s]
	}
	return 0, false
}

// StripeParents returns every peer's parent per stripe as the peer holds
// it now, by number: peers count from 1 in the order they joined, 0 is
// the origin, -1 no parent (or a node that is none of these). Index 0
// (the origin) is nil. The numbering is the simulator's
// (sim.Sim.StripeParents), so trees compare across the two.
func (d *Demo) StripeParents() [][]int {
	num := map[string]int{string(d.origin.ID()): 0}
	for i, p := range d.peers {
		num[string(p.ID())] = i + 1
	}
	out := make([][]int, len(d.peers)+1)
	for i, p := range d.peers {
		st := p.Status()
		ps := make([]int, len(st.Stripes))
		for s, a := range st.Stripes {
			n, ok := num[a.Parent.ID]
			if !ok || a.Parent.ID == "" {
				n = -1
			}
			ps[s] = n
		}
		out[i+1] = ps
	}
	return out
}
