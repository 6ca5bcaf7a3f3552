package origin

import "github.com/prometheus/client_golang/prometheus"

// The origin's own series. Its egress is exact here (the tracker derives
// an estimate from the peers' reports).
var (
	descChunks = prometheus.NewDesc("swarmtv_origin_chunks_total",
		"Signed chunks the origin cut from its source.", []string{"channel"}, nil)
	descSent = prometheus.NewDesc("swarmtv_origin_sent_bytes_total",
		"Chunk bytes the origin sent: reason=seed (pushed to its children) or fallback (fetched by peers that missed a chunk).",
		[]string{"channel", "reason"}, nil)
	descChildren = prometheus.NewDesc("swarmtv_origin_children",
		"Peers the origin feeds directly.", []string{"channel"}, nil)
	descDropped = prometheus.NewDesc("swarmtv_origin_dropped_packets_total",
		"Source packets the chunker dropped.", []string{"channel"}, nil)
	descCapped = prometheus.NewDesc("swarmtv_origin_capped_slices_total",
		"Slices the chunker closed early at its size cap (--slice-cap), each continued by the next at the same capture.", []string{"channel"}, nil)
	descRefused = prometheus.NewDesc("swarmtv_origin_fetches_refused_total",
		"Fallback fetches answered missing because the origin's fetch budget (--fetch-kbps) could not send them before their deadline.", []string{"channel"}, nil)
	descCanceled = prometheus.NewDesc("swarmtv_origin_fetches_canceled_total",
		"Fallback fetches their askers canceled while they waited in the origin's fetch budget (the chunk came from a peer first).", []string{"channel"}, nil)
)

// Describe implements [prometheus.Collector], so an Origin can be
// registered for /metrics.
func (o *Origin) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descChunks, descSent, descChildren, descDropped, descRefused, descCapped, descCanceled} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (o *Origin) Collect(ch chan<- prometheus.Metric) {
	st := o.Stats()
	o.mu.Lock()
	dropped := o.dropped
	o.mu.Unlock()
	name := o.cfg.Channel
	ch <- prometheus.MustNewConstMetric(descChunks, prometheus.CounterValue, float64(st.Chunks), name)
	ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(st.PushBytes), name, "seed")
	ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(st.FetchBytes), name, "fallback")
	ch <- prometheus.MustNewConstMetric(descChildren, prometheus.GaugeValue, float64(st.Children), name)
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(dropped), name)
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(st.FetchesRefused), name)
	ch <- prometheus.MustNewConstMetric(descCapped, prometheus.CounterValue, float64(st.CappedSlices), name)
	ch <- prometheus.MustNewConstMetric(descCanceled, prometheus.CounterValue, float64(st.FetchesCanceled), name)
}
