package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/swarmtv/swarmtv/origin"
	"github.com/swarmtv/swarmtv/web"
)

func runOrigin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("origin", "origin --channel NAME (--source testclip | --source rtsp://… | --listen ADDR) [flags]", `
The origin is the broadcaster's side. It takes a live stream from one of:
  --source testclip        the bundled H.264 + AAC clip, looped as a live stream
  --source rtsp://HOST/…   pulls a camera's or encoder's RTSP stream (TCP or UDP)
  --listen ADDR            accepts a publisher's RTSP ANNOUNCE/RECORD, e.g.
                           ffmpeg -re -i in.mp4 -c:v copy -c:a aac -f rtsp rtsp://ADDR/<channel>
It cuts the stream into signed chunks, registers the channel with the
tracker, pushes chunks to the peers placed under it and serves any chunk of
the last seconds to a peer that missed it.

The channel key (Ed25519) is created at first start and kept in --key;
peers trust only chunks signed by it, so keep the file to restart the
origin without losing viewers.`, stderr)
	channel := fs.String("channel", "live", "channel `name` (letters, digits, '-', '_', '.')")
	source := fs.String("source", "", "stream to ingest: testclip or rtsp://HOST:PORT/PATH")
	transport := fs.String("rtsp-transport", "auto", "for --source rtsp://…: tcp, udp or auto")
	listen := fs.String("listen", "", "accept an RTSP publisher at this `address` instead of --source (e.g. 0.0.0.0:8550)")
	trackerURL := fs.String("tracker", "http://127.0.0.1:7000", "tracker `URL`")
	quic := fs.String("quic", "127.0.0.1:7001", "UDP `address` of the origin's QUIC socket (0.0.0.0:7001 to serve other machines)")
	advertise := fs.String("advertise", "", "`host:port` peers dial to reach the origin (default: the --quic address)")
	keyFile := fs.String("key", "", "channel key `file` (default: the user config folder, swarmtv/<channel>.key)")
	stripes := fs.Int("stripes", 1, "number of stripes a slice is dealt into")
	slice := fs.Duration("slice", 100*time.Millisecond, "target slice duration")
	sliceCap := fs.Float64("slice-cap", origin.DefaultSliceCap, "a slice that would grow over this many times the mean slice size (a keyframe's) closes early and the next continues it at the same capture, so big pictures cross each hop in smaller chunks (negative: never)")
	capacity := fs.Int("capacity", 4, "peers the origin feeds directly")
	fetchKbps := fs.Int64("fetch-kbps", 0, "upload `kbit/s` for peers' fallback fetches, kept apart from the pushes to its children; answers go nearest deadline first, a fetch that cannot leave before its deadline (one without a deadline: that would wait over 150 ms) is refused at once (0: unlimited)")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (off when empty)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	var src origin.Source
	switch {
	case *source != "" && *listen != "":
		return fmt.Errorf("give either --source or --listen, not both")
	case *source == "testclip":
		src = origin.NewClipSource(log, nil)
	case strings.HasPrefix(*source, "rtsp://") || strings.HasPrefix(*source, "rtsps://"):
		t := *transport
		if t == "auto" {
			t = ""
		}
		src, err = origin.NewRTSPSource(*source, t, log)
	case *source != "":
		return fmt.Errorf("--source %q: want testclip or an rtsp:// URL", *source)
	case *listen != "":
		var ps *origin.PublishSource
		ps, err = origin.NewPublishSource(*listen, *channel, log)
		if err == nil {
			log.Info("waiting for a publisher", "url", "rtsp://"+ps.Addr().String()+"/"+*channel)
			src = ps
		}
	default:
		return fmt.Errorf("no stream: give --source testclip, --source rtsp://… or --listen ADDR (see --help)")
	}
	if err != nil {
		return err
	}
	path := *keyFile
	if path == "" {
		path = origin.DefaultKeyPath(*channel)
	}
	key, err := origin.LoadOrCreateKey(path)
	if err != nil {
		return err
	}
	o, err := origin.New(origin.Config{
		Channel:       *channel,
		Source:        src,
		Tracker:       *trackerURL,
		Listen:        *quic,
		Advertise:     *advertise,
		Key:           key,
		Stripes:       *stripes,
		SliceDuration: *slice,
		SliceCap:      *sliceCap,
		Capacity:      *capacity,
		FetchKbps:     *fetchKbps,
		Logger:        log,
	})
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(o, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", web.MetricsHandler(reg))
		bound, stop, err := serveBackground("metrics", *metricsAddr, mux)
		if err != nil {
			return err
		}
		defer stop()
		log.Info("metrics", "url", "http://"+bound+"/metrics")
	}
	log.Info("origin running", "channel", *channel, "quic", o.Addr(), "tracker", *trackerURL, "key", path)
	return o.Run(ctx)
}
