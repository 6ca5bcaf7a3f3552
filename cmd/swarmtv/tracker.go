package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/swarmtv/swarmtv/tracker"
	"github.com/swarmtv/swarmtv/web"
)

func runTracker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tracker", "tracker [--listen ADDR]", `
The tracker is the operator's service: origins register their channels
with it (SDP and the channel's public key), viewers' peers join through it
and send heartbeats, and it places every peer in the channel's stripe
trees (a parent and ranked backups per stripe) by measured upload, NAT
class and ISP, about once a second. Peers whose heartbeats stop are
removed and their children placed elsewhere.

The tracker keeps no state on disk: after a restart the running peers
rejoin with the parents they hold, and it rebuilds the trees from them
(--rejoin-window).

Its HTTP JSON API lives under /v1 (see the README). The same address
serves the operator's dashboard at / (live over server-sent events) and
Prometheus metrics at /metrics.`, stderr)
	listen := fs.String("listen", "127.0.0.1:7000", "HTTP `address` of the API (use 0.0.0.0:7000 to serve other machines)")
	heartbeat := fs.Duration("heartbeat", time.Second, "how often peers send heartbeats; a peer silent for 3 intervals is removed")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	natFlags := addTrackerNATFlags(fs)
	placer := fs.String("placer", tracker.PlacerChandelier, "stripe placement: chandelier (topology-aware) or baseline (random, for comparison)")
	joinWindow := fs.Duration("join-window", 0, "joins arriving within this `duration` share one placement round (0: a round per join; tens of ms for 100,000-peer swarms)")
	rejoinWindow := fs.Duration("rejoin-window", 0, "after a restart, hold for this `duration` the joins of peers that report their current parents, then rebuild the trees from them in one round that keeps every valid link (0: 2 heartbeat intervals; negative: place every rejoin afresh, one round at a time; at most 1m)")
	ispTable := fs.String("isp-table", "", "CSV `file` of \"prefix,isp\" lines mapping peers' addresses to ISPs (longest prefix wins; see deploy/isp-prefixes.csv)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	var isps *tracker.ISPTable
	if *ispTable != "" {
		var err error
		if isps, err = tracker.LoadISPTable(*ispTable); err != nil {
			return fmt.Errorf("--isp-table: %w", err)
		}
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	t, err := tracker.New(tracker.Config{HeartbeatInterval: *heartbeat, Logger: log, Placer: *placer, ISPs: isps, JoinWindow: *joinWindow, RejoinWindow: *rejoinWindow})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	ns, err := startNAT(t, natFlags, ln.Addr().String(), log)
	if err != nil {
		ln.Close()
		return err
	}
	defer ns.Close()
	t.SetRelay(ns.relay != nil) // the placement may use it as a last resort
	log.Info("tracker listening", "url", "http://"+ln.Addr().String(),
		"dashboard", "http://"+ln.Addr().String()+"/", "metrics", "http://"+ln.Addr().String()+"/metrics")
	return serveTracker(ctx, t, ln, ns.rv)
}

// trackerRegistry returns a registry with the tracker's own series, the
// swarm-wide telemetry and the Go runtime's and process's series.
func trackerRegistry(t *tracker.Tracker, tel *tracker.Telemetry, rv *tracker.Rendezvous) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(t, tel, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if rv != nil {
		reg.MustRegister(rv)
	}
	return reg
}

// serveTracker serves t's API, the dashboard and /metrics on ln until ctx
// ends, with the rendezvous routes of rv (may be nil).
func serveTracker(ctx context.Context, t *tracker.Tracker, ln net.Listener, rv *tracker.Rendezvous) error {
	tel := tracker.NewTelemetry(t, tracker.TelemetryConfig{Rendezvous: rv})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           web.TrackerHandler(wrapRendezvous(rv, tracker.NewReportLimiter(t).Wrap(t.Handler())), tel, trackerRegistry(t, tel, rv)),
		ReadHeaderTimeout: 5 * time.Second,
		// Requests (the dashboard's event streams) end with ctx.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 3)
	go func() { errc <- t.Run(ctx) }()
	go func() { errc <- tel.Run(ctx) }()
	go func() { errc <- srv.Serve(ln) }()
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	srv.Shutdown(sctx)
	for range 3 {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return nil
}
