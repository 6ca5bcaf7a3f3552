package sim

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/swarmtv/swarmtv/internal/report"
)

// WriteSummary prints a report as a table.
func WriteSummary(w io.Writer, r *report.Report, events uint64) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	f := func(p *float64, format string) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf(format, *p)
	}
	pc := func(p *report.Percentiles) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("p50 %.0f  p95 %.0f  p99 %.0f", p.P50, p.P95, p.P99)
	}
	seed := int64(0)
	if r.Seed != nil {
		seed = *r.Seed
	}
	fmt.Fprintf(tw, "scenario\t%s (seed %d)\n", r.Scenario, seed)
	fmt.Fprintf(tw, "peers\t%d, %.0f s of a %.0f kbit/s stream\n", r.Peers, r.DurationS, r.StreamKbps)
	// With a steady phase, its figures in a column beside the whole
	// run's.
	st := r.Steady
	row := func(name, whole string, steady func(st *report.Phase) string) {
		if st == nil {
			fmt.Fprintf(tw, "%s\t%s\n", name, whole)
			return
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, whole, steady(st))
	}
	if st != nil {
		fmt.Fprintf(tw, "\twhole run\tsteady, from %.0f s (%d joins)\n", st.FromS, st.Joins)
	}
	row("savings", f(r.Savings, "%.4f"), func(st *report.Phase) string { return f(st.Savings, "%.4f") })
	row("continuity", f(r.Continuity, "%.4f"), func(st *report.Phase) string { return f(st.Continuity, "%.4f") })
	row("stalls", fmt.Sprintf("%d (rebuffer ratio %s)", r.Stalls, f(r.RebufferRatio, "%.4f")),
		func(st *report.Phase) string {
			return fmt.Sprintf("%d (rebuffer ratio %s)", st.Stalls, f(st.RebufferRatio, "%.4f"))
		})
	row("player bytes", human(r.PlayerBytes), func(st *report.Phase) string { return human(st.PlayerBytes) })
	row("origin egress", human(r.OriginEgressBytes), func(st *report.Phase) string { return human(st.OriginEgressBytes) })
	row("p2p bytes", human(r.P2PBytes), func(*report.Phase) string { return "" })
	row("startup ms", pc(r.StartupMs), func(st *report.Phase) string { return pc(st.StartupMs) })
	if l := r.Latency; l != nil {
		late := func(max float64, n int) string { return fmt.Sprintf("%.0f  (%d later than %v)", max, n, LateStart) }
		row("startup max ms", late(l.StartupMaxMs, l.LateStarts), func(st *report.Phase) string { return late(st.StartupMaxMs, st.LateStarts) })
	}
	row("lag ms", pc(r.LagMs), func(st *report.Phase) string { return pc(st.LagMs) })
	row("repair ms", pc(r.RepairMs), func(st *report.Phase) string { return pc(st.RepairMs) })
	if l := r.Latency; l != nil {
		p5 := func(p *report.Percentiles) string {
			if p == nil {
				return "n/a"
			}
			return fmt.Sprintf("%.0f/%.0f", p.P50, p.P95)
		}
		fmt.Fprintf(tw, "startup parts ms\tp50/p95: tracker %s  first chunk %s  keyframe %s  playout %s\n",
			p5(l.StartupTrackerMs), p5(l.StartupFirstChunkMs), p5(l.StartupKeyframeMs), p5(l.StartupPlayoutMs))
		if t := l.StartupTail; t != nil {
			fmt.Fprintf(tw, "startup >= p95\tmean: tracker %.0f  first chunk %.0f  keyframe %.0f  playout %.0f\n",
				t.Tracker, t.FirstChunk, t.Keyframe, t.Playout)
		}
		fmt.Fprintf(tw, "lag parts ms\tp50/p95: arrival %s (keyframe slices %s)  margin %s\n", p5(l.ArrivalMs), p5(l.KeyframeArrivalMs), p5(l.MarginMs))
		if t := l.LagTail; t != nil {
			fmt.Fprintf(tw, "lag >= p95\tmean: arrival %.0f  margin %.0f\n", t.Arrival, t.Margin)
		}
		for _, w := range l.ByTime {
			fmt.Fprintf(tw, "  %.0f-%.0f s\tjoins %d  startup p50/p95 %s  lag p50/p95 %s (by play time)\n",
				w.FromS, w.ToS, w.Joins, p5(w.StartupMs), p5(w.LagMs))
		}
	}
	if d := r.TreeDepth; d != nil {
		fmt.Fprintf(tw, "tree depth\tmean %.2f  max %d\n", d.Mean, d.Max)
	}
	if r.CrossISPBytes != nil && r.CrossISPLowerBoundBytes != nil {
		fmt.Fprintf(tw, "cross-ISP bytes\t%s (lower bound %s)\n", human(*r.CrossISPBytes), human(*r.CrossISPLowerBoundBytes))
	}
	if pl := r.Placement; pl != nil {
		fmt.Fprintf(tw, "cross-ISP by cause\ttree %s  backup %s  catch-up %s  stale %s (edges crossing %s)\n",
			human(pl.CrossISPTreeBytes), human(pl.CrossISPBackupBytes), human(pl.CrossISPCatchupBytes),
			human(pl.CrossISPStaleBytes), f(pl.CrossISPEdgeShare, "%.4f"))
		fmt.Fprintf(tw, "placement rounds\t%d, edges changed per round %s (max %d), relayed placements %d; catch-up bytes %s\n",
			pl.Rounds, f(pl.EdgesChangedPerRound, "%.1f"), pl.EdgesChangedMax, pl.RelayedPlacements, human(pl.CatchupBytes))
	}
	if ms := r.Mesh; ms != nil {
		fmt.Fprintf(tw, "mesh\tpulls %d  pulled %d  missed %d  pulled bytes %s (cross-ISP %s)  partners dropped %d  maps %s  alives %s\n",
			ms.Pulls, ms.Pulled, ms.PullMisses, human(ms.PullBytes), human(ms.CrossISPPullBytes), ms.PartnersDropped,
			human(ms.MapBytes), human(ms.AliveBytes))
	}
	if n := r.NAT; n != nil {
		fmt.Fprintf(tw, "connections\tdirect %d  relayed %d  failed %d\n", n.Direct, n.Relayed, n.Failed)
	}
	fmt.Fprintf(tw, "control overhead\t%s\n", f(r.ControlOverhead, "%.5f"))
	if o := r.Overlay; o != nil {
		hops := "n/a"
		if o.LookupHops != nil {
			hops = fmt.Sprintf("mean %.2f  p99 %.0f", o.LookupHops.Mean, o.LookupHops.P99)
		}
		consistent := "n/a"
		if o.Consistent != nil {
			consistent = fmt.Sprint(*o.Consistent)
		}
		fmt.Fprintf(tw, "overlay lookups\tsuccess %s  hops %s\n", f(o.LookupSuccess, "%.5f"), hops)
		fmt.Fprintf(tw, "overlay ring\tconsistent %s  merge %s ms  merge msgs/peer %s\n", consistent, f(o.MergeMs, "%.0f"), f(o.MergeMessagesPerPeer, "%.1f"))
	}
	if r.TraceHash != nil {
		fmt.Fprintf(tw, "trace hash\t%s\n", *r.TraceHash)
	}
	fmt.Fprintf(tw, "events\t%d\n", events)
	fmt.Fprintf(tw, "wall\t%.2f s\n", r.WallS)
	tw.Flush()
}

// StripeParents returns, after Run, every viewer's parent per stripe as
// the viewers themselves hold them at the end: viewers are numbered from
// 1 in the order they were created (the initial viewers in join order
// when they join one after another), 0 is the origin and -1 no parent;
// a viewer that is not alive has a nil entry. Index 0 of the result (the
// origin) is nil. Comparisons with `swarmtv demo` use it for tree
// shapes.
func (s *Sim) StripeParents() [][]int {
	out := make([][]int, len(s.peers))
	for i, p := range s.peers {
		if i == originIdx || !p.alive {
			continue
		}
		ps := make([]int, len(p.parents))
		for st, q := range p.parents {
			ps[st] = int(q)
		}
		out[i] = ps
	}
	return out
}
