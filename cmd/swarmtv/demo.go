package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/swarmtv/swarmtv/internal/demo"
	"github.com/swarmtv/swarmtv/tracker"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "demo [--peers N] [--duration D] [--rtsp-port P] [--kill-tracker-at D --restart-tracker-at D] [--report FILE]", `
The demo runs a whole swarm on this machine with no setup: an origin
looping the bundled clip, a tracker, and N viewer peers. The origin feeds
one peer; every peer feeds up to two more, so most viewers are fed by
other viewers, not by the origin. Peer i serves its player at
rtsp://127.0.0.1:(P+i)/demo — open one with ffplay, VLC or ffmpeg.

A status line every few seconds shows the peers, the savings (the share
of the players' bytes the origin did not have to send) and each peer's
parent. Ctrl-C (or --duration) stops it and writes the report.

The operator's dashboard (viewers, savings, origin egress, QoE, the live
tree) is served at --dashboard-addr, with the tracker's API, its
Prometheus /metrics and every peer's status page (/peers/<i>/). If the
default address is taken, a free port is used; the URL is printed.`, stderr)
	peers := fs.Int("peers", 3, "number of viewer peers")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	port := fs.Int("rtsp-port", 8554, "RTSP port of peer 0; peer i uses port+i")
	reportFile := fs.String("report", "", "write the swarmtv.report/v1 JSON report to this `file` on exit")
	dashAddr := fs.String("dashboard-addr", demo.DefaultDashboardAddr, "`address` of the dashboard, the tracker's API and /metrics")
	logLevel := fs.String("log-level", "warn", "log level of the components: debug, info, warn or error")
	killTracker := fs.Duration("kill-tracker-at", 0, "kill the tracker this long after the start (0: never); one more viewer then joins through peer 0's address (--bootstrap)")
	restartTracker := fs.Duration("restart-tracker-at", 0, "start an empty tracker on the same address this long after the start (0: never); the peers re-announce themselves to it")
	ispTable := fs.String("isp-table", "", "CSV `file` of \"prefix,isp\" lines for the tracker (see deploy/isp-prefixes.csv); the demo's peers are all on 127.0.0.1")
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
	dash := "" // the default: fall back to a free port if it is taken
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "dashboard-addr" {
			dash = *dashAddr
		}
	})
	r, err := demo.Run(ctx, demo.Config{
		DashboardAddr: dash,
		Peers:         *peers,
		Duration:      *duration,
		RTSPPort:      *port,
		Out:           stdout,
		Logger:        log,

		KillTrackerAt:    *killTracker,
		RestartTrackerAt: *restartTracker,
		ISPs:             isps,
	})
	if r != nil {
		summary(stdout, r.Savings, r.Continuity, r.PlayerBytes, r.OriginEgressBytes)
		if *reportFile != "" {
			if werr := r.WriteFile(*reportFile); werr != nil {
				return werr
			}
			fmt.Fprintf(stdout, "report written to %s\n", *reportFile)
		}
	}
	return err
}

func summary(w io.Writer, savings, continuity *float64, player, origin int64) {
	pct := func(p *float64) string {
		if p == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.2f%%", *p*100)
	}
	fmt.Fprintf(w, "done at %s: savings %s, continuity %s, players got %d bytes, origin sent %d bytes\n",
		time.Now().Format(time.TimeOnly), pct(savings), pct(continuity), player, origin)
}
