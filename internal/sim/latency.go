package sim

import (
	"time"

	"github.com/swarmtv/swarmtv/internal/report"
	"github.com/swarmtv/swarmtv/internal/swarm"
)

// latency breaks the report's startup and lag figures into their parts
// (report.Latency): per viewer, where its startup went; per played
// slice, how much of its lag was arrival and how much playout margin.
type latency struct {
	// Per viewer, parallel to metrics.startup (ms).
	tracker, first, key, playout []float64
	// Per played slice: histograms (1 ms buckets, like metrics.lag) of
	// arrival (capture → complete) and margin (complete → played), and
	// the sums of both by the slice's lag bucket, for the tail's means.
	arrival, margin       []uint64
	keyArrival            []uint64 // arrival of the keyframe slices
	keyN                  uint64
	arrivalSum, marginSum []float64 // by lag bucket, ms
	count                 []uint64  // slices recorded, by lag bucket
	n                     uint64
	hi                    int // one past the highest bucket of these holding a count (merge adds below it)
	// win splits startup and lag by time (see windowOf): startups by the
	// viewer's join time, lags by the slice's play time.
	win []timeWindow
}

// timeWindow holds one window's startups (ms) and a lag histogram
// (winLagStep buckets up to winLagMax).
type timeWindow struct {
	startup []float64
	lag     []uint64
	lagN    uint64
}

// The by-time windows: 10 s each for the first minute, then a minute
// each; their lag histograms have 10 ms buckets up to a minute.
const (
	winShort   = 10 * time.Second
	winLong    = time.Minute
	winLagStep = 10 // ms
	winLagMax  = 60_000 / winLagStep
)

// LateStart is how long a viewer may take to start playing before the
// report counts it late (report.Latency.LateStarts): the flash crowd's
// bound, every viewer playing within 5 s of joining.
const LateStart = 5 * time.Second

// windowOf returns the index of the window of virtual time t (ns).
func windowOf(t int64) int {
	d := time.Duration(max(t, 0))
	if d < winLong {
		return int(d / winShort)
	}
	return int(winLong/winShort) + int((d-winLong)/winLong)
}

// windowBounds returns where window i starts and ends.
func windowBounds(i int) (from, to time.Duration) {
	short := int(winLong / winShort)
	if i < short {
		from = time.Duration(i) * winShort
		return from, from + winShort
	}
	from = winLong + time.Duration(i-short)*winLong
	return from, from + winLong
}

// window returns the window of virtual time t, growing the list.
func (l *latency) window(t int64) *timeWindow {
	i := windowOf(t)
	for len(l.win) <= i {
		l.win = append(l.win, timeWindow{})
	}
	return &l.win[i]
}

// merge adds o's samples and histograms (another part's) to l's; the
// per-viewer samples stay parallel to metrics.startup, merged in the
// same order.
func (l *latency) merge(o *latency) {
	l.tracker = append(l.tracker, o.tracker...)
	l.first = append(l.first, o.first...)
	l.key = append(l.key, o.key...)
	l.playout = append(l.playout, o.playout...)
	l.grow(o.hi)
	for i := range o.hi {
		l.arrival[i] += o.arrival[i]
		l.margin[i] += o.margin[i]
		l.keyArrival[i] += o.keyArrival[i]
		l.arrivalSum[i] += o.arrivalSum[i]
		l.marginSum[i] += o.marginSum[i]
		l.count[i] += o.count[i]
	}
	l.keyN += o.keyN
	l.n += o.n
	l.hi = max(l.hi, o.hi)
	for i := range o.win {
		from, _ := windowBounds(i)
		w, ow := l.window(int64(from)), &o.win[i]
		w.startup = append(w.startup, ow.startup...)
		if ow.lag != nil {
			if w.lag == nil {
				w.lag = make([]uint64, winLagMax)
			}
			for j, n := range ow.lag {
				w.lag[j] += n
			}
		}
		w.lagN += ow.lagN
	}
}

func (l *latency) init() {
	l.grow(1024)
}

// grow makes the histograms hold at least n buckets. They start short
// and grow with the lags they count: a run keeps a set per part.
func (l *latency) grow(n int) {
	if n <= len(l.count) {
		return
	}
	n = growTo(len(l.count), n)
	l.arrival = growHist(l.arrival, n)
	l.margin = growHist(l.margin, n)
	l.keyArrival = growHist(l.keyArrival, n)
	l.arrivalSum = growHist(l.arrivalSum, n)
	l.marginSum = growHist(l.marginSum, n)
	l.count = growHist(l.count, n)
}

// start records p's startup parts when its first slice (sl) plays at
// now: startup is the core's first-chunk-to-first-play delay, zero the
// virtual time origin.
func (l *latency) start(p *peer, now int64, startup time.Duration, zero time.Time, sl *swarm.Slice) {
	ms := func(d int64) float64 { return float64(max(d, 0)) / 1e6 }
	joined := p.joinedAt
	if joined == 0 || joined < p.joinAt {
		joined = p.joinAt
	}
	first := now - int64(startup)
	done := int64(sl.Done.Sub(zero))
	if sl.Done.IsZero() {
		done = now
	}
	first = min(max(first, joined), done)
	w := l.window(p.joinAt)
	w.startup = append(w.startup, ms(now-p.joinAt))
	l.tracker = append(l.tracker, ms(joined-p.joinAt))
	l.first = append(l.first, ms(first-joined))
	l.key = append(l.key, ms(done-first))
	l.playout = append(l.playout, ms(now-done))
}

// slice records a slice played at now: its lag (capture to played,
// ms) by window, and its parts. key: the slice is a keyframe's, or a
// part the size cap cut off it (its arrival counts as the keyframe's).
func (l *latency) slice(now, lag int64, sl *swarm.Slice, key bool) {
	w := l.window(now)
	if w.lag == nil {
		w.lag = make([]uint64, winLagMax)
	}
	w.lag[min(max(lag, 0)/winLagStep, winLagMax-1)]++
	w.lagN++
	if sl.Done.IsZero() {
		return
	}
	arr := sl.Done.Sub(sl.Capture).Milliseconds()
	mar := lag - arr
	b := min(max(lag, 0), lagBuckets-1)
	a, m := min(max(arr, 0), lagBuckets-1), min(max(mar, 0), lagBuckets-1)
	l.hi = max(l.hi, int(max(a, b, m))+1)
	l.grow(l.hi)
	l.arrival[a]++
	if key {
		l.keyArrival[a]++
		l.keyN++
	}
	l.margin[m]++
	l.arrivalSum[b] += float64(arr)
	l.marginSum[b] += float64(mar)
	l.count[b]++
	l.n++
}

// report returns the report's latency section but for StartupMaxMs and
// LateStarts (the caller's: qoe.phase): startup holds the viewers'
// startups (ms, parallel to the parts), lag the lag percentiles.
func (l *latency) report(startup []float64, lag *report.Percentiles) *report.Latency {
	r := &report.Latency{
		StartupTrackerMs:    report.Of(l.tracker),
		StartupFirstChunkMs: report.Of(l.first),
		StartupKeyframeMs:   report.Of(l.key),
		StartupPlayoutMs:    report.Of(l.playout),
		ArrivalMs:           histPercentiles(l.arrival, l.n),
		MarginMs:            histPercentiles(l.margin, l.n),
		KeyframeArrivalMs:   histPercentiles(l.keyArrival, l.keyN),
	}
	if sp := report.Of(startup); sp != nil && len(startup) == len(l.tracker) {
		var t report.StartupParts
		n := 0
		for i, v := range startup {
			if v >= sp.P95 {
				t.Tracker += l.tracker[i]
				t.FirstChunk += l.first[i]
				t.Keyframe += l.key[i]
				t.Playout += l.playout[i]
				n++
			}
		}
		if n > 0 {
			f := float64(n)
			t.Tracker, t.FirstChunk, t.Keyframe, t.Playout = t.Tracker/f, t.FirstChunk/f, t.Keyframe/f, t.Playout/f
			r.StartupTail = &t
		}
	}
	for i := range l.win {
		w := &l.win[i]
		if len(w.startup) == 0 && w.lagN == 0 {
			continue
		}
		from, to := windowBounds(i)
		tw := report.TimeWindow{FromS: from.Seconds(), ToS: to.Seconds(), Joins: len(w.startup), StartupMs: report.Of(w.startup)}
		if lp := histPercentiles(w.lag, w.lagN); lp != nil {
			tw.LagMs = &report.Percentiles{P50: lp.P50 * winLagStep, P95: lp.P95 * winLagStep, P99: lp.P99 * winLagStep}
		}
		r.ByTime = append(r.ByTime, tw)
	}
	if lag != nil && l.n > 0 {
		var t report.LagParts
		var n uint64
		for b := int(lag.P95); b < len(l.count); b++ {
			t.Arrival += l.arrivalSum[b]
			t.Margin += l.marginSum[b]
			n += l.count[b]
		}
		if n > 0 {
			t.Arrival /= float64(n)
			t.Margin /= float64(n)
			r.LagTail = &t
		}
	}
	return r
}

// histPercentiles returns nearest-rank percentiles of a 1 ms histogram
// of n samples.
func histPercentiles(h []uint64, n uint64) *report.Percentiles {
	if n == 0 {
		return nil
	}
	rank := func(p float64) float64 {
		want := max(uint64(p*float64(n)+0.999999999), 1)
		var acc uint64
		for i, c := range h {
			acc += c
			if acc >= want {
				return float64(i)
			}
		}
		return float64(len(h) - 1)
	}
	return &report.Percentiles{P50: rank(0.50), P95: rank(0.95), P99: rank(0.99)}
}
