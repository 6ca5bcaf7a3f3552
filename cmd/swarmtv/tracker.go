package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/swarmtv/swarmtv/tracker"
)

func runTracker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tracker", "tracker [--listen ADDR]", `
The tracker is the operator's service: origins register their channels
with it (SDP and the channel's public key), viewers' peers join through it
and send heartbeats, and it places every peer under the origin or under
another peer with spare capacity. Peers whose heartbeats stop are removed
and their children placed elsewhere.

Its HTTP JSON API lives under /v1 (see the README).`, stderr)
	listen := fs.String("listen", "127.0.0.1:7000", "HTTP `address` of the API (use 0.0.0.0:7000 to serve other machines)")
	heartbeat := fs.Duration("heartbeat", time.Second, "how often peers send heartbeats; a peer silent for 3 intervals is removed")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	t, err := tracker.New(tracker.Config{HeartbeatInterval: *heartbeat, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	log.Info("tracker listening", "url", "http://"+ln.Addr().String())
	return serveTracker(ctx, t, ln)
}

// serveTracker serves t's API on ln until ctx ends.
func serveTracker(ctx context.Context, t *tracker.Tracker, ln net.Listener) error {
	srv := &http.Server{Handler: t.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 2)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { errc <- t.Run(ctx) }()
	go func() { errc <- srv.Serve(ln) }()
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	srv.Shutdown(sctx)
	for range 2 {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return nil
}
