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

	if tv, err := d.tracker.Tree(Channel); err == nil && len(tv.Nodes) > 0 {
		sum, maxDepth := 0, 0
		for _, n := range tv.Nodes {
			sum += n.Depth
			maxDepth = max(maxDepth, n.Depth)
		}
		r.TreeDepth = &report.Depth{Mean: float64(sum) / float64(len(tv.Nodes)), Max: maxDepth}
	}
	// Every demo peer reaches its parent directly on loopback.
	r.NAT = &report.NAT{Direct: len(d.peers)}
	r.ControlOverhead = report.Ratio(float64(d.ctrl.Load()), float64(p2p+r.OriginEgressBytes))
	return r
}
