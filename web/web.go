// Package web holds the operator's dashboard and the viewer peer's status
// page: their assets (embedded in the binary, no external links, so they
// work offline) and the HTTP handlers that serve them.
//
// The dashboard is a single page drawing plain SVG with its own small
// script. It follows the tracker's state over server-sent events
// (GET /api/v1/dashboard/events) and falls back to nothing else: the JSON
// behind it is documented in the README ("Dashboard and metrics").
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmtv/swarmtv/tracker"
)

//go:embed dashboard peer
var assets embed.FS

// PeerPage is the peer status page's HTML. It reads "status" and
// "metrics" relative to its own URL, so it can be mounted under a prefix.
func PeerPage() []byte {
	b, err := assets.ReadFile("peer/index.html")
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

// MetricsHandler serves reg in the Prometheus text format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// TrackerHandler serves, on one address: the tracker's API (api, under
// /v1/ and /healthz), the dashboard (/, /dashboard/…, /api/v1/dashboard…)
// over tel, and /metrics from reg.
func TrackerHandler(api http.Handler, tel *tracker.Telemetry, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle("/healthz", api)
	mux.Handle("GET /metrics", MetricsHandler(reg))
	mux.Handle("/", Dashboard(tel.DashboardState, tel.Interval()))
	return mux
}

// Dashboard serves the dashboard page at / and its assets, the current
// state as JSON at GET /api/v1/dashboard and a stream of states as
// server-sent events ("state" events, one per period) at
// GET /api/v1/dashboard/events.
func Dashboard(state func() tracker.DashboardState, period time.Duration) http.Handler {
	if period <= 0 {
		period = time.Second
	}
	sub, _ := fs.Sub(assets, "dashboard")
	files := http.FileServerFS(sub)
	mux := http.NewServeMux()
	mux.Handle("GET /dashboard/", http.StripPrefix("/dashboard/", files))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := assets.ReadFile("dashboard/index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	})
	mux.HandleFunc("GET /api/v1/dashboard", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(state())
	})
	mux.HandleFunc("GET /api/v1/dashboard/events", func(w http.ResponseWriter, r *http.Request) {
		serveEvents(w, r, state, period)
	})
	return mux
}

// serveEvents streams state every period until the client goes away.
func serveEvents(w http.ResponseWriter, r *http.Request, state func() tracker.DashboardState, period time.Duration) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Tell the browser to reconnect quickly after a tracker restart.
	if _, err := w.Write([]byte("retry: 2000\n\n")); err != nil {
		return
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		b, err := json.Marshal(state())
		if err != nil {
			return
		}
		if _, err := w.Write(append(append([]byte("event: state\ndata: "), b...), '\n', '\n')); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}
