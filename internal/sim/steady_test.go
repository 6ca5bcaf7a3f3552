package sim

import (
	"slices"
	"testing"
	"time"
)

// The steady block (Config.MeasureFrom) holds what came at or after its
// start and nothing before: the run cut just before it (its prefix)
// and the block add up to the whole run, slice by slice and byte by
// byte; its startups are those of the viewers that joined in it; the
// whole-run figures are those of the run without the block. The warm-up
// here is bad on purpose: the tracker is away while most of the crowd
// joins, and the block leaves that out.
func TestSteadyPhase(t *testing.T) {
	c := small(80, 30*time.Second, 21)
	c.Churn = 0.3
	c.KillTrackerAt, c.RestartTrackerAt = time.Second, 6*time.Second
	c.MeasureFrom = 12 * time.Second
	r, s := run(t, c)
	off := c
	off.MeasureFrom = 0
	plain, _ := run(t, off)
	st := r.Steady
	if st == nil || plain.Steady != nil {
		t.Fatalf("steady block %+v with measure-from, %+v without", st, plain.Steady)
	}
	r.Steady = nil
	if a, b := reportJSON(t, r), reportJSON(t, plain); a != b {
		t.Errorf("the whole-run figures change with the steady block:\n%s\n%s", a, b)
	}
	off.Duration = c.MeasureFrom - 1
	_, pre := run(t, off)

	whole, pm, sm := &s.m.qoe, &pre.m.qoe, &s.m.steady
	for _, x := range []struct {
		name              string
		whole, pre, phase int64
	}{
		{"played", int64(whole.played), int64(pm.played), int64(sm.played)},
		{"late", int64(whole.late), int64(pm.late), int64(sm.late)},
		{"lost", int64(whole.lost), int64(pm.lost), int64(sm.lost)},
		{"stalls", int64(whole.stalls), int64(pm.stalls), int64(sm.stalls)},
		{"stall time", whole.stallTime, pm.stallTime, sm.stallTime},
		{"player bytes", whole.playerBytes, pm.playerBytes, sm.playerBytes},
		{"origin bytes", whole.originEgress, pm.originEgress, sm.originEgress},
		{"lag samples", int64(whole.lagN), int64(pm.lagN), int64(sm.lagN)},
		{"repairs", int64(len(whole.repair)), int64(len(pm.repair)), int64(len(sm.repair))},
	} {
		if x.pre+x.phase != x.whole || x.phase <= 0 {
			t.Errorf("%s: %d before %v and %d from it, %d in the whole run", x.name, x.pre, c.MeasureFrom, x.phase, x.whole)
		}
	}

	var want []float64
	for _, p := range s.peers[1:] {
		if p.joinAt >= int64(c.MeasureFrom) && p.firstPlay >= 0 {
			want = append(want, float64(p.firstPlay-p.joinAt)/1e6)
		}
	}
	got := slices.Clone(sm.startup)
	slices.Sort(got)
	slices.Sort(want)
	if len(want) < 5 || !slices.Equal(got, want) || st.Joins != len(want) {
		t.Errorf("steady startups (%d joins) %v, want those of the %d viewers joining from %v: %v", st.Joins, got, len(want), c.MeasureFrom, want)
	}

	t.Logf("whole run: savings %.4f continuity %.4f startup p95 %.0f; steady: savings %.4f continuity %.4f startup p95 %.0f (%d joins)",
		*plain.Savings, *plain.Continuity, plain.StartupMs.P95, *st.Savings, *st.Continuity, st.StartupMs.P95, st.Joins)
	// Measured: startup p95 8,900 ms over the whole run (the crowd
	// waited for the tracker), 1,290 ms in the block; savings 0.7959,
	// 0.8722.
	if st.StartupMs.P95 > 0.5*plain.StartupMs.P95 || *st.Savings <= *plain.Savings {
		t.Errorf("steady startup p95 %.0f ms, savings %.4f; whole run %.0f ms, %.4f: want the tracker's outage left out (startup p95 under half, savings higher)",
			st.StartupMs.P95, *st.Savings, plain.StartupMs.P95, *plain.Savings)
	}
}
