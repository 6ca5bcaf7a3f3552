package tracker

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmtv/swarmtv/chandelier"
)

// Telemetry turns the viewers' heartbeat stats (PeerStats: totals since a
// peer joined) into swarm-wide figures: monotonic counters per channel for
// /metrics, startup and lag histograms, and a bounded history for the
// dashboard. It samples the tracker's trees once per interval; between two
// samples it adds each peer's growth of every counter. A peer's growth
// after its last sample before it leaves is not counted (at most one
// interval of one peer). A peer that leaves the tracker's view and comes
// back under the same ID (removed as silent, then rejoined) counts from
// the stats it had when last seen, which are kept for forgetAfter; a
// counter that shrinks (a peer process restarted under the same ID)
// counts from zero again.
//
// Origin egress is derived from the peers' origin_bytes_in: bytes a peer
// received from the origin while its parent was the origin count as
// reason="seed", all others (origin fetches by deeper peers) as
// reason="fallback". A depth-1 peer's own fallback fetches therefore count
// as seed; the origin's own /metrics has the exact split.
//
// Telemetry is safe for concurrent use. Run drives the sampling.
type Telemetry struct {
	t        *Tracker
	interval time.Duration
	keep     int

	startup *prometheus.HistogramVec
	lag     *prometheus.HistogramVec

	rv *Rendezvous // nil: no connection outcomes (direct/relayed/failed) known

	mu       sync.Mutex
	channels map[string]*chanTelemetry // guarded by mu
	rejected uint64                    // guarded by mu: implausible reports ignored
	natPeers map[string]int            // guarded by mu: peers by NAT class at the last sample
	relayed  int                       // guarded by mu: tree edges relayed at the last sample
	samples  uint64                    // guarded by mu
}

// chanTelemetry is one channel's aggregate. Guarded by Telemetry.mu.
type chanTelemetry struct {
	last    map[string]lastSeen // by peer ID: its stats when last sampled (kept forgetAfter)
	started map[string]bool     // peers whose startup time was observed
	totals  Totals
	history []Point // oldest first, at most Telemetry.keep
	viewers int
	lagMS   []int64 // latest lag of each peer, last sample
	startMS []int64 // startup of each peer that has played, last sample
	// isp is P2P bytes by (sending ISP, receiving ISP), attributed as
	// described at [ISPMatrix].
	isp map[ispPair]int64
}

// lastSeen is a peer's stats at the last sample that saw it.
type lastSeen struct {
	stats PeerStats
	at    time.Time
}

// forgetAfter is how long the telemetry keeps the stats of a peer that
// left the tracker's view. Within it, a rejoin under the same ID adds
// only the growth since; after it, the peer's totals count again in full.
const forgetAfter = 10 * time.Minute

// ispPair names a cell of the ISP matrix; "" is an unknown ISP.
type ispPair struct{ from, to string }

// Totals are a channel's counters since the tracker started, summed over
// its peers.
type Totals struct {
	PlayerBytes         int64 `json:"player_bytes"`
	P2PBytes            int64 `json:"p2p_bytes"`
	OriginSeedBytes     int64 `json:"origin_seed_bytes"`
	OriginFallbackBytes int64 `json:"origin_fallback_bytes"`
	PlayedSlices        int64 `json:"played_slices"`
	LateSlices          int64 `json:"late_slices"`
	LostSlices          int64 `json:"lost_slices"`
	Stalls              int64 `json:"stalls"`
	StallMS             int64 `json:"stall_ms"`
	BadChunks           int64 `json:"bad_chunks"`
	Repairs             int64 `json:"repairs"`
}

// OriginBytes is the origin's egress (seed and fallback).
func (t Totals) OriginBytes() int64 { return t.OriginSeedBytes + t.OriginFallbackBytes }

// Savings is 1 - origin egress / player bytes, or nil before anything
// played.
func (t Totals) Savings() *float64 {
	if t.PlayerBytes <= 0 {
		return nil
	}
	s := 1 - float64(t.OriginBytes())/float64(t.PlayerBytes)
	return &s
}

// Point is one sample of a channel's history; rates are per second over
// the interval that ends at UnixMS.
type Point struct {
	UnixMS            int64    `json:"unix_ms"`
	Viewers           int      `json:"viewers"`
	PlayerBps         float64  `json:"player_bytes_per_s"`
	P2PBps            float64  `json:"p2p_bytes_per_s"`
	OriginSeedBps     float64  `json:"origin_seed_bytes_per_s"`
	OriginFallbackBps float64  `json:"origin_fallback_bytes_per_s"`
	Savings           *float64 `json:"savings"` // over the interval; null when nothing played
	Stalls            int64    `json:"stalls"`  // new stalls in the interval
	LagP50MS          *int64   `json:"lag_p50_ms"`
	LagP95MS          *int64   `json:"lag_p95_ms"`
}

// TelemetryConfig configures [NewTelemetry]. Zero values take defaults.
type TelemetryConfig struct {
	// Interval between samples (default 1s).
	Interval time.Duration
	// History is how many samples each channel keeps (default 300).
	History int
	// Rendezvous, when the tracker runs one, gives the dashboard the
	// peers' connection outcomes (direct, relayed, failed) and marks
	// relayed tree edges.
	Rendezvous *Rendezvous
}

// Plausibility bounds of one peer's report between two samples: growth
// beyond them is ignored and counted in swarmtv_telemetry_rejected_total.
const (
	maxBytesPerSecond  = 1 << 30 // a viewer does not move a GiB/s of media
	maxSlicesPerSecond = 10000
	maxReportedMS      = int64(24 * time.Hour / time.Millisecond)
)

// NewTelemetry returns a Telemetry over t's channels.
func NewTelemetry(t *Tracker, cfg TelemetryConfig) *Telemetry {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.History <= 0 {
		cfg.History = 300
	}
	return &Telemetry{
		t:        t,
		rv:       cfg.Rendezvous,
		interval: cfg.Interval,
		keep:     cfg.History,
		channels: map[string]*chanTelemetry{},
		startup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "swarmtv_startup_seconds",
			Help:    "Viewers' join to first slice played, observed once per peer.",
			Buckets: []float64{0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20},
		}, []string{"channel"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "swarmtv_lag_seconds",
			Help:    "Viewers' capture-to-playout lag, observed once per peer per telemetry sample.",
			Buckets: []float64{0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30},
		}, []string{"channel"}),
	}
}

// Interval is the sampling interval.
func (m *Telemetry) Interval() time.Duration { return m.interval }

// Run samples every interval until ctx ends, then returns nil.
func (m *Telemetry) Run(ctx context.Context) error {
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	m.Sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			m.Sample(now)
		}
	}
}

// peerSample is what a sample reads of one peer under the tracker's lock.
type peerSample struct {
	id          string
	stats       PeerStats
	originChild bool // the origin feeds it at least one stripe
	isp, nat    string
	// fromISPs holds the ISP of its parent on each stripe a peer feeds
	// it ("" for a parent in no known ISP).
	fromISPs []string
}

// Sample takes one sample of every channel now.
func (m *Telemetry) Sample(now time.Time) {
	// Copy what is needed under the tracker's lock, then aggregate under
	// ours: the two locks are never held together.
	t := m.t
	relayed := relayedEdges(m.rv) // before t.mu: the two locks are never held together
	nat := map[string]int{}
	nrelayed := 0
	t.mu.Lock()
	snap := map[string][]peerSample{}
	for _, name := range t.channelNamesLocked() {
		ch := t.channels[name]
		ps := make([]peerSample, 0, len(ch.peers))
		for _, n := range ch.peers {
			origin := false
			var from []string
			var seen []string // relayed parents counted (few stripes: a slice)
			for _, a := range n.stripes {
				origin = origin || a.Parent == chandelier.Origin
				if p, ok := ch.peers[a.Parent]; ok {
					from = append(from, p.isp)
				}
				if len(relayed) == 0 {
					continue
				}
				if parent := ch.nodeInfo(a.Parent).ID; parent != "" && !slices.Contains(seen, parent) && edgeRelayed(relayed, name, n.id, parent) {
					seen = append(seen, parent)
					nrelayed++
				}
			}
			nat[cmp.Or(n.nat, unknownLabel)]++
			ps = append(ps, peerSample{id: n.id, stats: n.stats, originChild: origin, isp: n.isp, nat: n.nat, fromISPs: from})
		}
		slices.SortFunc(ps, func(a, b peerSample) int {
			switch {
			case a.id < b.id:
				return -1
			case a.id > b.id:
				return 1
			}
			return 0
		})
		snap[name] = ps
	}
	t.mu.Unlock()

	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples++
	m.natPeers, m.relayed = nat, nrelayed
	for name, peers := range snap {
		c := m.channels[name]
		if c == nil {
			c = &chanTelemetry{last: map[string]lastSeen{}, started: map[string]bool{}, isp: map[ispPair]int64{}}
			m.channels[name] = c
		}
		m.sampleChannel(name, c, peers, now)
	}
}

func (m *Telemetry) sampleChannel(name string, c *chanTelemetry, peers []peerSample, now time.Time) {
	secs := m.interval.Seconds()
	var prevUnix int64
	if n := len(c.history); n > 0 {
		prevUnix = c.history[n-1].UnixMS
		if d := float64(now.UnixMilli()-prevUnix) / 1000; d > 0 {
			secs = d
		}
	}
	before := c.totals
	c.lagMS = c.lagMS[:0]
	c.startMS = c.startMS[:0]
	for _, p := range peers {
		s := p.stats
		d := delta(c.last[p.id].stats, s)
		c.last[p.id] = lastSeen{stats: s, at: now}
		if !plausible(d, s, secs) {
			m.rejected++
			continue
		}
		c.totals.PlayerBytes += d.PlayerBytes
		c.totals.P2PBytes += d.P2PBytesIn
		c.attributeISP(p, d.P2PBytesIn)
		if p.originChild {
			c.totals.OriginSeedBytes += d.OriginBytesIn
		} else {
			c.totals.OriginFallbackBytes += d.OriginBytesIn
		}
		c.totals.PlayedSlices += d.PlayedSlices
		c.totals.LateSlices += d.LateSlices
		c.totals.LostSlices += d.LostSlices
		c.totals.Stalls += d.Stalls
		c.totals.StallMS += d.StallMS
		c.totals.BadChunks += d.BadChunks
		c.totals.Repairs += d.Repairs
		if s.PlayedSlices+s.LateSlices > 0 {
			c.lagMS = append(c.lagMS, s.LagMS)
			m.lag.WithLabelValues(name).Observe(float64(s.LagMS) / 1000)
		}
		if s.StartupMS > 0 {
			c.startMS = append(c.startMS, s.StartupMS)
			if !c.started[p.id] {
				c.started[p.id] = true
				m.startup.WithLabelValues(name).Observe(float64(s.StartupMS) / 1000)
			}
		}
	}
	for id, l := range c.last {
		if now.Sub(l.at) > forgetAfter {
			delete(c.last, id)
			delete(c.started, id)
		}
	}
	c.viewers = len(peers)

	d := Totals{
		PlayerBytes:         c.totals.PlayerBytes - before.PlayerBytes,
		P2PBytes:            c.totals.P2PBytes - before.P2PBytes,
		OriginSeedBytes:     c.totals.OriginSeedBytes - before.OriginSeedBytes,
		OriginFallbackBytes: c.totals.OriginFallbackBytes - before.OriginFallbackBytes,
	}
	pt := Point{
		UnixMS:            now.UnixMilli(),
		Viewers:           len(peers),
		PlayerBps:         float64(d.PlayerBytes) / secs,
		P2PBps:            float64(d.P2PBytes) / secs,
		OriginSeedBps:     float64(d.OriginSeedBytes) / secs,
		OriginFallbackBps: float64(d.OriginFallbackBytes) / secs,
		Savings:           d.Savings(),
		Stalls:            c.totals.Stalls - before.Stalls,
		LagP50MS:          percentile(c.lagMS, 50),
		LagP95MS:          percentile(c.lagMS, 95),
	}
	if prevUnix == 0 {
		// The first sample of a channel covers everything before it:
		// no meaningful rate.
		pt.PlayerBps, pt.P2PBps, pt.OriginSeedBps, pt.OriginFallbackBps, pt.Savings = 0, 0, 0, 0, nil
	}
	c.history = append(c.history, pt)
	if len(c.history) > m.keep {
		c.history = slices.Delete(c.history, 0, len(c.history)-m.keep)
	}
}

// attributeISP adds a peer's P2P bytes received since the last sample to
// the ISP matrix: split evenly over the stripes a peer parent feeds it
// (each stripe carries an equal share of the stream), from that parent's
// ISP; with no peer parent at the sample (bytes pulled from partners or
// ring members, or a parent that just left), from an unknown ISP.
func (c *chanTelemetry) attributeISP(p peerSample, b int64) {
	if b <= 0 {
		return
	}
	if len(p.fromISPs) == 0 {
		c.isp[ispPair{"", p.isp}] += b
		return
	}
	n := int64(len(p.fromISPs))
	for i, from := range p.fromISPs {
		share := b / n
		if i == 0 {
			share += b % n
		}
		c.isp[ispPair{from, p.isp}] += share
	}
}

// delta is the growth from prev to cur. A counter that shrank restarts
// from zero.
func delta(prev, cur PeerStats) PeerStats {
	g := func(p, c int64) int64 {
		if c < p {
			return c
		}
		return c - p
	}
	return PeerStats{
		PlayedSlices:   g(prev.PlayedSlices, cur.PlayedSlices),
		LateSlices:     g(prev.LateSlices, cur.LateSlices),
		LostSlices:     g(prev.LostSlices, cur.LostSlices),
		Stalls:         g(prev.Stalls, cur.Stalls),
		StallMS:        g(prev.StallMS, cur.StallMS),
		PlayerBytes:    g(prev.PlayerBytes, cur.PlayerBytes),
		P2PBytesIn:     g(prev.P2PBytesIn, cur.P2PBytesIn),
		OriginBytesIn:  g(prev.OriginBytesIn, cur.OriginBytesIn),
		BytesForwarded: g(prev.BytesForwarded, cur.BytesForwarded),
		BadChunks:      g(prev.BadChunks, cur.BadChunks),
		Repairs:        g(prev.Repairs, cur.Repairs),
	}
}

// plausible reports whether a peer's growth d over secs and its latest
// values s are believable. The tracker's API only checks that values are
// not negative; a buggy or hostile peer must not be able to inflate the
// swarm's totals or overflow them. The first report of a peer may carry
// up to a minute of history.
func plausible(d, s PeerStats, secs float64) bool {
	span := max(secs, 60)
	for _, b := range []int64{d.PlayerBytes, d.P2PBytesIn, d.OriginBytesIn, d.BytesForwarded} {
		if float64(b) > maxBytesPerSecond*span {
			return false
		}
	}
	for _, n := range []int64{d.PlayedSlices, d.LateSlices, d.LostSlices, d.Stalls, d.BadChunks, d.Repairs} {
		if float64(n) > maxSlicesPerSecond*span {
			return false
		}
	}
	if float64(d.StallMS) > 1000*span*2 {
		return false
	}
	return s.LagMS <= maxReportedMS && s.StartupMS <= maxReportedMS
}

// percentile returns the p-th percentile (nearest rank) of vs, or nil for
// none. It sorts a copy.
func percentile(vs []int64, p int) *int64 {
	if len(vs) == 0 {
		return nil
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	v := s[min(max(i, 0), len(s)-1)]
	return &v
}

// ChannelTelemetry is one channel's figures at the last sample.
type ChannelTelemetry struct {
	Name    string   `json:"name"`
	Viewers int      `json:"viewers"`
	Totals  Totals   `json:"totals"`
	Savings *float64 `json:"savings"` // over Totals; null before anything played
	// Startup and lag percentiles over the current viewers (their latest
	// values), milliseconds; null without viewers that played.
	StartupMS Percentiles `json:"startup_ms"`
	LagMS     Percentiles `json:"lag_ms"`
	History   []Point     `json:"history"`
}

// Percentiles are p50/p95/p99 of a sample, null when it is empty.
type Percentiles struct {
	P50 *int64 `json:"p50"`
	P95 *int64 `json:"p95"`
	P99 *int64 `json:"p99"`
}

func percentiles(vs []int64) Percentiles {
	return Percentiles{P50: percentile(vs, 50), P95: percentile(vs, 95), P99: percentile(vs, 99)}
}

// Channels returns every sampled channel's figures, by name.
func (m *Telemetry) Channels() []ChannelTelemetry {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.channels))
	for n := range m.channels {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]ChannelTelemetry, 0, len(names))
	for _, n := range names {
		c := m.channels[n]
		out = append(out, ChannelTelemetry{
			Name:      n,
			Viewers:   c.viewers,
			Totals:    c.totals,
			Savings:   c.totals.Savings(),
			StartupMS: percentiles(c.startMS),
			LagMS:     percentiles(c.lagMS),
			History:   slices.Clone(c.history),
		})
	}
	return out
}

// Samples is how many samples were taken.
func (m *Telemetry) Samples() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.samples
}
