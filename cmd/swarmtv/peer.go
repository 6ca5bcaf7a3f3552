package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/swarmtv/swarmtv/proxy"
	"github.com/swarmtv/swarmtv/tracker"
)

func runPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("peer", "peer --channel NAME [--tracker URL] [--rtsp ADDR] [flags]", `
The peer is a viewer's local proxy. It joins the channel through the
tracker, receives the stream from its parent in the swarm (falling back to
the origin for anything late), verifies every chunk's signature, forwards
chunks to its own children, and serves the stream to an unmodified media
player over RTSP:

  ffplay rtsp://127.0.0.1:8554/<channel>
  ffmpeg -rtsp_transport tcp -i rtsp://127.0.0.1:8554/<channel> -f null -
  vlc rtsp://127.0.0.1:8554/<channel>

The player sees the broadcaster's own tracks, starting at the newest
keyframe the peer holds.`, stderr)
	channel := fs.String("channel", "live", "channel `name` to watch")
	trackerURL := fs.String("tracker", "http://127.0.0.1:7000", "tracker `URL`")
	rtspAddr := fs.String("rtsp", "127.0.0.1:8554", "`address` players connect to (path /<channel>)")
	quic := fs.String("quic", "127.0.0.1:0", "UDP `address` of the peer's QUIC socket (0.0.0.0:PORT to serve peers on other machines)")
	advertise := fs.String("advertise", "", "`host:port` other peers dial to reach this one (default: the --quic address)")
	capacity := fs.Int("capacity", 2, "children this peer accepts, each fed one or more stripes; with 4 stripes, 4 children of its interior stripe cost one stream of upload (0: receive only)")
	maxUpload := fs.Int64("max-upload-kbps", 0, "cap, in `kbit/s`, on the upload capacity reported to the tracker (0: none); the capacity itself is measured (a timed upload to the tracker, then the forwarding rate)")
	delay := fs.Duration("playout-delay", proxy.DefaultPlayoutDelay, "how far behind the slowest recent slice's arrival playout runs (it starts at once and converges to it)")
	statusAddr := fs.String("status", "", "serve this peer's status page at http://`ADDR`/ (and /api/v1/peer, /status JSON, /metrics); off when empty")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	bootstrap := fs.String("bootstrap", "", "a running peer's `HOST:PORT` (its QUIC address): join the channel's overlay through it, and if the tracker is unreachable take the channel from it and join the tracker once it is back")
	stateDir := fs.String("state-dir", defaultStateDir(), "`folder` for the peer's state: the overlay peers it has seen, to rejoin through when neither the tracker nor --bootstrap answers (empty: keep none)")
	natFlags := addPeerNATFlags(fs)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	if *natFlags.check {
		return runNATCheck(ctx, natFlags, *trackerURL, *quic, stdout, log)
	}
	pin, err := natFlags.pinned()
	if err != nil {
		return err
	}
	if *maxUpload < 0 || *maxUpload > tracker.MaxUploadBPS/1000 {
		return fmt.Errorf("peer: --max-upload-kbps must be 0..%d, not %d", int64(tracker.MaxUploadBPS/1000), *maxUpload)
	}
	p, err := proxy.NewPeer(proxy.PeerConfig{
		Channel:      *channel,
		Tracker:      *trackerURL,
		Listen:       *quic,
		Advertise:    *advertise,
		RTSP:         *rtspAddr,
		Capacity:     *capacity,
		MaxUploadBPS: *maxUpload * 1000,
		PlayoutDelay: *delay,
		Logger:       log,
		NAT:          natFlags.config(),
		Parent:       pin,
		Bootstrap:    *bootstrap,
		StateDir:     *stateDir,
	})
	if err != nil {
		return err
	}
	if *statusAddr != "" {
		bound, stop, err := serveBackground("status", *statusAddr, proxy.StatusHandler(p))
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(stdout, "status: http://%s/\n", bound)
	}
	fmt.Fprintf(stdout, "watch: %s\n", p.URL())
	err = p.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// defaultStateDir is the peer's default state folder: swarmtv in the
// user's cache folder ("" when there is none).
func defaultStateDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "swarmtv")
}
