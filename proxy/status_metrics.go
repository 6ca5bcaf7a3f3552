package proxy

import "github.com/prometheus/client_golang/prometheus"

// A peer's own series (one peer per process, so no peer label).
var (
	descPeerPlayer   = prometheus.NewDesc("swarmtv_peer_player_bytes_total", "Media bytes this peer played out.", nil, nil)
	descPeerReceived = prometheus.NewDesc("swarmtv_peer_received_bytes_total",
		"Chunk bytes received: source=peer (pushed by a parent) or origin (seeded or fetched).", []string{"source"}, nil)
	descPeerForwarded = prometheus.NewDesc("swarmtv_peer_forwarded_bytes_total", "Chunk bytes sent to this peer's children.", nil, nil)
	descPeerSlices    = prometheus.NewDesc("swarmtv_peer_slices_total",
		"Slices played out: state=played (complete, on time), late (after a stall) or lost (skipped).", []string{"state"}, nil)
	descPeerStalls    = prometheus.NewDesc("swarmtv_peer_stalls_total", "Playout stalls.", nil, nil)
	descPeerStallSecs = prometheus.NewDesc("swarmtv_peer_stall_seconds_total", "Time spent stalled.", nil, nil)
	descPeerBad       = prometheus.NewDesc("swarmtv_peer_bad_chunks_total", "Chunks rejected (bad signature or malformed).", nil, nil)
	descPeerRepairs   = prometheus.NewDesc("swarmtv_peer_parent_repairs_total", "Parent losses repaired.", nil, nil)
	descPeerLag       = prometheus.NewDesc("swarmtv_peer_lag_seconds", "Capture-to-playout lag of the latest slice.", nil, nil)
	descPeerStartup   = prometheus.NewDesc("swarmtv_peer_startup_seconds", "Join to first slice played (0 before).", nil, nil)
	descPeerChildren  = prometheus.NewDesc("swarmtv_peer_children", "Children this peer feeds.", nil, nil)
	descPeerHasParent = prometheus.NewDesc("swarmtv_peer_parent_connected", "1 while the tracker has given this peer a parent.", nil, nil)
	descPeerReaders   = prometheus.NewDesc("swarmtv_peer_rtsp_readers", "Players playing from this peer's RTSP server.", nil, nil)
	descPeerRTSPBytes = prometheus.NewDesc("swarmtv_peer_rtsp_bytes_total", "RTP bytes queued to players.", nil, nil)
	descPeerRTSPDrops = prometheus.NewDesc("swarmtv_peer_rtsp_readers_dropped_total", "Players disconnected for being too slow.", nil, nil)
)

// Describe implements [prometheus.Collector].
func (p *Peer) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPeerPlayer, descPeerReceived, descPeerForwarded, descPeerSlices, descPeerStalls,
		descPeerStallSecs, descPeerBad, descPeerRepairs, descPeerLag, descPeerStartup, descPeerChildren, descPeerHasParent,
		descPeerReaders, descPeerRTSPBytes, descPeerRTSPDrops} {
		ch <- d
	}
	describeOverlay(ch)
}

// Collect implements [prometheus.Collector].
func (p *Peer) Collect(ch chan<- prometheus.Metric) {
	v := p.View()
	st := p.rtsp.Stats()
	c := func(d *prometheus.Desc, val float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, val, labels...)
	}
	g := func(d *prometheus.Desc, val float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, val)
	}
	c(descPeerPlayer, float64(v.PlayerBytes))
	c(descPeerReceived, float64(v.BytesDownP2P), "peer")
	c(descPeerReceived, float64(v.BytesDownOrig), "origin")
	c(descPeerForwarded, float64(v.BytesUp))
	c(descPeerSlices, float64(v.PlayedSlices), "played")
	c(descPeerSlices, float64(v.LateSlices), "late")
	c(descPeerSlices, float64(v.LostSlices), "lost")
	c(descPeerStalls, float64(v.Stalls))
	c(descPeerStallSecs, float64(v.StallMS)/1000)
	c(descPeerBad, float64(v.BadChunks))
	c(descPeerRepairs, float64(v.Repairs))
	g(descPeerLag, float64(v.LagMS)/1000)
	g(descPeerStartup, float64(v.StartupMS)/1000)
	g(descPeerChildren, float64(len(v.Children)))
	parent := 0.0
	if v.Parent.ID != "" {
		parent = 1
	}
	g(descPeerHasParent, parent)
	g(descPeerReaders, float64(v.RTSPReaders))
	c(descPeerRTSPBytes, float64(v.RTSPBytes))
	c(descPeerRTSPDrops, float64(st.ReadersDropped))
	collectOverlay(ch, v.Overlay)
}
