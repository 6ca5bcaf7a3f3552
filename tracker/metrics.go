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
	// An origin's channel dropped after its heartbeats stopped, and a
	// channel re-planned for its origin's measured stream rate.
	eventChannelExpire = "channel_expire"
	eventReplan        = "stream_rate_replan"
)

var events = []string{eventJoin, eventRefused, eventLeave, eventExpire, eventParentLost, eventLostRemoved, eventChannelExpire, eventReplan}

var (
	descChannels = prometheus.NewDesc("swarmtv_tracker_channels",
		"Channels registered with the tracker.", nil, nil)
	descPeers = prometheus.NewDesc("swarmtv_tracker_peers",
		"Peers in a channel, placed or waiting.", []string{"channel"}, nil)
	descWaiting = prometheus.NewDesc("swarmtv_tracker_peers_waiting",
		"Peers with at least one stripe not connected to the origin through its parents (the origin's fallback covers it).", []string{"channel"}, nil)
	descDepth = prometheus.NewDesc("swarmtv_tracker_tree_depth_max",
		"Depth of the deepest peer over a channel's stripe trees (origin's children: 1).", []string{"channel"}, nil)
	descOriginCap = prometheus.NewDesc("swarmtv_tracker_origin_capacity",
		"Children the channel's origin feeds directly (whole-stream equivalents).", []string{"channel"}, nil)
	descEvents = prometheus.NewDesc("swarmtv_tracker_events_total",
		"Tracker events: joins, refused joins, leaves, expiries, parent-lost reports, silent parents removed on such a report.", []string{"event"}, nil)
	descRounds = prometheus.NewDesc("swarmtv_tracker_placement_rounds_total",
		"Placement rounds run (periodic, and at once for joins and unrepaired losses).", []string{"channel"}, nil)
	descRoundSeconds = prometheus.NewDesc("swarmtv_tracker_placement_round_seconds_total",
		"Wall time spent in placement rounds.", []string{"channel"}, nil)
	descRoundLast = prometheus.NewDesc("swarmtv_tracker_placement_round_last_seconds",
		"Wall time of the latest placement round.", []string{"channel"}, nil)
	descEdges = prometheus.NewDesc("swarmtv_tracker_placement_edges_changed_total",
		"Parent changes of peers present before and after a round (edges the rounds moved).", []string{"channel"}, nil)
	descDeficit = prometheus.NewDesc("swarmtv_tracker_placement_deficit",
		"Peer-stripe pairs without a parent after the latest round.", []string{"channel"}, nil)
)

var allDescs = []*prometheus.Desc{descChannels, descPeers, descWaiting, descDepth, descOriginCap, descEvents,
	descRounds, descRoundSeconds, descRoundLast, descEdges, descDeficit}

// Describe implements [prometheus.Collector], so a Tracker can be
// registered with a Prometheus registry for /metrics.
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements [prometheus.Collector]. It reads the channels as
// they are (no expiry runs on a scrape); depths cost a walk of every
// peer's chain.
func (t *Tracker) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, name string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
	}
	counter := func(d *prometheus.Desc, v float64, name string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, name)
	}
	ch <- prometheus.MustNewConstMetric(descChannels, prometheus.GaugeValue, float64(len(t.channels)))
	for _, name := range t.channelNamesLocked() {
		c := t.channels[name]
		waiting, depth := 0, 0
		ds := c.depths()
		for id := range c.peers {
			w := false
			for s := range ds {
				d := ds[s][id]
				depth = max(depth, d)
				w = w || d == 0
			}
			if w {
				waiting++
			}
		}
		gauge(descPeers, float64(len(c.peers)), name)
		gauge(descWaiting, float64(waiting), name)
		gauge(descDepth, float64(depth), name)
		gauge(descOriginCap, float64(c.originCap), name)
		counter(descRounds, float64(c.rounds), name)
		counter(descRoundSeconds, float64(c.roundNanos)/1e9, name)
		gauge(descRoundLast, float64(c.lastRoundNs)/1e9, name)
		counter(descEdges, float64(c.edgesChanged), name)
		gauge(descDeficit, float64(c.lastPlan.Deficit), name)
	}
	for _, e := range events {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(t.events[e]), e)
	}
}
