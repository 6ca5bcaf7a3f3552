package tracker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Tracker events counted in swarmtv_tracker_events_total.
const (
	eventJoin        = "join"
	eventRefused     = "join_refused"
	eventLeave       = "leave"
	eventExpire      = "expire"
	eventParentLost  = "parent_lost"
	eventLostRemoved = "lost_parent_removed"
)

var events = []string{eventJoin, eventRefused, eventLeave, eventExpire, eventParentLost, eventLostRemoved}

var (
	descChannels = prometheus.NewDesc("swarmtv_tracker_channels",
		"Channels registered with the tracker.", nil, nil)
	descPeers = prometheus.NewDesc("swarmtv_tracker_peers",
		"Peers in a channel's tree, attached or waiting.", []string{"channel"}, nil)
	descWaiting = prometheus.NewDesc("swarmtv_tracker_peers_waiting",
		"Peers not connected to the origin (a subtree waiting for a free slot).", []string{"channel"}, nil)
	descDepth = prometheus.NewDesc("swarmtv_tracker_tree_depth_max",
		"Depth of the deepest peer in a channel's tree (origin's children: 1).", []string{"channel"}, nil)
	descOriginCap = prometheus.NewDesc("swarmtv_tracker_origin_capacity",
		"Children the channel's origin feeds directly.", []string{"channel"}, nil)
	descEvents = prometheus.NewDesc("swarmtv_tracker_events_total",
		"Tracker events: joins, refused joins, leaves, expiries, parent-lost reports, silent parents removed on such a report.", []string{"event"}, nil)
)

// Describe implements [prometheus.Collector], so a Tracker can be
// registered with a Prometheus registry for /metrics.
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descChannels, descPeers, descWaiting, descDepth, descOriginCap, descEvents} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector]. It reads the trees as they
// are (no expiry runs on a scrape).
func (t *Tracker) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descChannels, prometheus.GaugeValue, float64(len(t.channels)))
	for _, name := range t.channelNamesLocked() {
		tr := t.channels[name].tree
		attached, depth := 0, 0
		tr.walk(func(_ string, _ *node, d int) {
			attached++
			depth = max(depth, d)
		})
		ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, float64(tr.peers()), name)
		ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(len(tr.nodes)-attached), name)
		ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(depth), name)
		ch <- prometheus.MustNewConstMetric(descOriginCap, prometheus.GaugeValue, float64(tr.root().capacity), name)
	}
	for _, e := range events {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(t.events[e]), e)
	}
}
