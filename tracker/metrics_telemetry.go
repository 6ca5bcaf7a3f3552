package tracker

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// The swarm-wide series the tracker aggregates from its viewers'
// heartbeats (see [Telemetry]). Every series is per channel; none is per
// peer.
var (
	descViewers = prometheus.NewDesc("swarmtv_viewers",
		"Viewers (peers) in the channel at the last telemetry sample.", []string{"channel"}, nil)
	descPlayerBytes = prometheus.NewDesc("swarmtv_player_bytes_total",
		"Media bytes the channel's peers played out, summed over peers.", []string{"channel"}, nil)
	descP2PBytes = prometheus.NewDesc("swarmtv_p2p_bytes_total",
		"Media bytes the channel's peers received from other peers.", []string{"channel"}, nil)
	descOriginEgress = prometheus.NewDesc("swarmtv_origin_egress_bytes_total",
		"Media bytes the channel's peers received from the origin: reason=seed while their parent was the origin, fallback otherwise.",
		[]string{"channel", "reason"}, nil)
	descSavings = prometheus.NewDesc("swarmtv_savings_ratio",
		"1 - origin egress / player bytes since the tracker started (0 before anything played).", []string{"channel"}, nil)
	descSlices = prometheus.NewDesc("swarmtv_slices_total",
		"Slices the channel's peers played out: state=played (complete, on time), late (after a stall) or lost (skipped).",
		[]string{"channel", "state"}, nil)
	descStalls = prometheus.NewDesc("swarmtv_stalls_total",
		"Playout stalls of the channel's peers.", []string{"channel"}, nil)
	descStallSeconds = prometheus.NewDesc("swarmtv_stall_seconds_total",
		"Time the channel's peers spent stalled.", []string{"channel"}, nil)
	descBadChunks = prometheus.NewDesc("swarmtv_bad_chunks_total",
		"Chunks the channel's peers rejected (bad signature or malformed).", []string{"channel"}, nil)
	descRepairs = prometheus.NewDesc("swarmtv_parent_repairs_total",
		"Parent losses the channel's peers repaired.", []string{"channel"}, nil)
	descNAT = prometheus.NewDesc("swarmtv_nat_peers",
		"Peers in every channel by the NAT class they reported (unknown: not probed yet), at the last telemetry sample.", []string{"nat"}, nil)
	descRelayed = prometheus.NewDesc("swarmtv_relayed_connections",
		"Parent-child links of the stripe trees whose latest connection went through the relay, at the last telemetry sample.", nil, nil)
	descISPPath = prometheus.NewDesc("swarmtv_p2p_isp_bytes_total",
		"Media bytes the channel's peers received from other peers, by path: same_isp, cross_isp, or unknown (a side in no ISP of the prefix table, or no peer parent at the sample); attributed to per-stripe parents as the dashboard's ISP matrix is.",
		[]string{"channel", "path"}, nil)
	descRejected = prometheus.NewDesc("swarmtv_telemetry_rejected_total",
		"Peer telemetry reports ignored as implausible (counters growing faster than any viewer could).", nil, nil)
	descSamples = prometheus.NewDesc("swarmtv_telemetry_samples_total",
		"Telemetry samples the tracker took of its channels.", nil, nil)
)

// Describe implements [prometheus.Collector].
func (m *Telemetry) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descViewers, descPlayerBytes, descP2PBytes, descOriginEgress, descSavings,
		descSlices, descStalls, descStallSeconds, descBadChunks, descRepairs, descISPPath, descNAT, descRelayed, descRejected, descSamples} {
		ch <- d
	}
	m.startup.Describe(ch)
	m.lag.Describe(ch)
}

// Collect implements [prometheus.Collector]. It reports the last sample.
func (m *Telemetry) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, c := range m.Channels() {
		n, t := c.Name, c.Totals
		ch <- prometheus.MustNewConstMetric(descViewers, prometheus.GaugeValue, float64(c.Viewers), n)
		counter(descPlayerBytes, t.PlayerBytes, n)
		counter(descP2PBytes, t.P2PBytes, n)
		counter(descOriginEgress, t.OriginSeedBytes, n, "seed")
		counter(descOriginEgress, t.OriginFallbackBytes, n, "fallback")
		savings := 0.0
		if c.Savings != nil {
			savings = *c.Savings
		}
		ch <- prometheus.MustNewConstMetric(descSavings, prometheus.GaugeValue, savings, n)
		counter(descSlices, t.PlayedSlices, n, "played")
		counter(descSlices, t.LateSlices, n, "late")
		counter(descSlices, t.LostSlices, n, "lost")
		counter(descStalls, t.Stalls, n)
		ch <- prometheus.MustNewConstMetric(descStallSeconds, prometheus.CounterValue, float64(t.StallMS)/1000, n)
		counter(descBadChunks, t.BadChunks, n)
		counter(descRepairs, t.Repairs, n)
		same, cross, unknown := m.ispPaths(n)
		counter(descISPPath, same, n, "same_isp")
		counter(descISPPath, cross, n, "cross_isp")
		counter(descISPPath, unknown, n, "unknown")
	}
	m.mu.Lock()
	rejected, samples, nat, relayed := m.rejected, m.samples, m.natPeers, m.relayed
	m.mu.Unlock()
	// Every class, so a graph of the mix has all its series from the start.
	for _, c := range append(slices.Clone(NATClasses), unknownLabel) {
		ch <- prometheus.MustNewConstMetric(descNAT, prometheus.GaugeValue, float64(nat[c]), c)
	}
	ch <- prometheus.MustNewConstMetric(descRelayed, prometheus.GaugeValue, float64(relayed))
	counter(descRejected, int64(rejected))
	counter(descSamples, int64(samples))
	m.startup.Collect(ch)
	m.lag.Collect(ch)
}

// ispPaths sums a channel's ISP matrix by path.
func (m *Telemetry) ispPaths(channel string) (same, cross, unknown int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.channels[channel]
	if c == nil {
		return 0, 0, 0
	}
	for k, v := range c.isp {
		switch {
		case k.from == "" || k.to == "":
			unknown += v
		case k.from == k.to:
			same += v
		default:
			cross += v
		}
	}
	return same, cross, unknown
}
