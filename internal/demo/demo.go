// Package demo runs swarmtv's zero-setup main job: an origin looping the
// bundled clip, a tracker and N viewer peers, all in this process on
// loopback, with a status line every few seconds and the
// swarmtv.report/v1 report at the end.
package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmtv/swarmtv/internal/report"
	"github.com/swarmtv/swarmtv/origin"
	"github.com/swarmtv/swarmtv/proxy"
	"github.com/swarmtv/swarmtv/tracker"
)

// Channel is the demo's channel name.
const Channel = "demo"

// DefaultDashboardAddr is where the demo serves the dashboard unless told
// otherwise.
const DefaultDashboardAddr = "127.0.0.1:8080"

// Config configures a demo run.
type Config struct {
	Peers    int           // viewers (default 3)
	Duration time.Duration // 0: until ctx ends
	RTSPPort int           // peer i serves rtsp://127.0.0.1:(RTSPPort+i)/demo (default 8554)
	// DashboardAddr is the tracker's HTTP address: its API, the dashboard
	// at /, /metrics (tracker, swarm telemetry and origin) and every
	// peer's status page at /peers/<i>/. Empty means DefaultDashboardAddr,
	// or a free port if that one is taken.
	DashboardAddr string
	// OriginCapacity and PeerCapacity shape the trees, in whole streams
	// (defaults 1 and 2: the origin sends one stream's worth of stripes,
	// each peer forwards up to two); a peer accepts PeerCapacity ×
	// Stripes stripe feeds.
	OriginCapacity int
	PeerCapacity   int
	// Stripes is K, the stripe trees of the channel (default 4, or the
	// number of peers when fewer).
	Stripes int
	// StatusEvery is the status line period (default 3s; <0 disables).
	StatusEvery time.Duration
	Out         io.Writer    // status lines (default io.Discard)
	Logger      *slog.Logger // component logs (default: discard)
	// KillTrackerAt and RestartTrackerAt (after the start; 0: never)
	// stop the tracker — its HTTP server closes, its state is lost — and
	// start an empty one on the same address. During the outage one more
	// viewer joins through peer 0's address (--bootstrap); see outage.go.
	KillTrackerAt    time.Duration
	RestartTrackerAt time.Duration
	// ISPs maps the peers' addresses to ISPs for the tracker (nil: every
	// peer in ISP unknown). On loopback every peer shares one address,
	// so a table naming 127.0.0.0/8 puts them all in one ISP.
	ISPs *tracker.ISPTable

	afterRun func(*Demo) // tests: look at the demo before it stops
}

func (c *Config) defaults() error {
	if c.Peers == 0 {
		c.Peers = 3
	}
	if c.Peers < 1 || c.Peers > 200 {
		return fmt.Errorf("demo: --peers must be 1..200, not %d", c.Peers)
	}
	if c.Duration < 0 {
		return fmt.Errorf("demo: --duration must not be negative")
	}
	if c.RTSPPort == 0 {
		c.RTSPPort = 8554
	}
	if c.RTSPPort < 1 || c.RTSPPort+c.Peers > 65535 {
		return fmt.Errorf("demo: --rtsp-port %d leaves no room for %d peers", c.RTSPPort, c.Peers)
	}
	if c.OriginCapacity == 0 {
		c.OriginCapacity = 1
	}
	if c.PeerCapacity == 0 {
		c.PeerCapacity = 2
	}
	if c.Stripes == 0 {
		// A peer forwards in one stripe tree at most: with fewer peers
		// than stripes, some stripe would have no forwarder and every
		// peer would take it from the origin.
		c.Stripes = min(4, c.Peers)
	}
	if c.Stripes < 1 || c.Stripes > tracker.MaxStripes || c.PeerCapacity*c.Stripes > tracker.MaxPeerCapacity {
		return fmt.Errorf("demo: %d stripes × peer capacity %d: want 1..%d stripes and at most %d stripe feeds per peer",
			c.Stripes, c.PeerCapacity, tracker.MaxStripes, tracker.MaxPeerCapacity)
	}
	if c.KillTrackerAt < 0 || c.RestartTrackerAt < 0 || c.RestartTrackerAt > 0 && c.RestartTrackerAt <= c.KillTrackerAt {
		return fmt.Errorf("demo: --restart-tracker-at (%v) must come after --kill-tracker-at (%v)", c.RestartTrackerAt, c.KillTrackerAt)
	}
	if c.StatusEvery == 0 {
		c.StatusEvery = 3 * time.Second
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Demo is a running demo.
type Demo struct {
	cfg     Config
	tracker *tracker.Tracker    // the running one, or the last one killed
	rv      *tracker.Rendezvous // its rendezvous (connection outcomes)
	trUp    bool                // the tracker runs (Run goroutine only)
	reg     *prometheus.Registry
	stun    *tracker.STUNServer // the tracker's STUN service; kept across tracker restarts
	url     string              // tracker base URL
	origin  *origin.Origin
	peers   []*proxy.Peer
	ctrl    atomic.Int64 // control bytes: tracker HTTP requests and responses
	start   time.Time

	statusMu sync.Mutex
	status   []http.Handler // peer i's status page handler; guarded by statusMu
}

// Run starts the demo, prints the URLs and status lines to cfg.Out, and
// returns the report when ctx ends or cfg.Duration passes.
func Run(ctx context.Context, cfg Config) (*report.Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d := &Demo{cfg: cfg, start: time.Now()}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Peers+2)
	defer wg.Wait()
	defer cancel()

	// Tracker, its telemetry, the dashboard and /metrics on one address.
	ln, err := listenDashboard(cfg.DashboardAddr)
	if err != nil {
		return nil, err
	}
	d.url = "http://" + ln.Addr().String()
	reg := prometheus.NewRegistry()
	d.reg = reg
	stun, err := tracker.ListenSTUN(tracker.STUNConfig{Primary: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)},
		cfg.Logger.With("role", "stun"))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("demo: STUN service: %w", err)
	}
	defer func() { // after the peers stopped (they watch their mapping)
		cancel()
		wg.Wait()
		stun.Close()
	}()
	d.stun = stun
	tp, err := d.startTracker(ctx, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	defer func() { d.stopTracker(tp) }()

	// Origin with a throwaway channel key.
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	o, err := origin.New(origin.Config{
		Channel:  Channel,
		Source:   origin.NewClipSource(cfg.Logger, nil),
		Tracker:  d.url,
		Key:      key,
		Capacity: cfg.OriginCapacity,
		Stripes:  cfg.Stripes,
		Logger:   cfg.Logger.With("role", "origin"),
	})
	if err != nil {
		return nil, err
	}
	d.origin = o
	reg.MustRegister(o)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := o.Run(ctx); err != nil {
			errc <- fmt.Errorf("demo: origin: %w", err)
		}
	}()
	if err := d.waitChannel(ctx); err != nil {
		return nil, err
	}

	// Peers, one after another so the tree fills level by level.
	for i := range cfg.Peers {
		p, err := proxy.NewPeer(proxy.PeerConfig{
			Channel:  Channel,
			Tracker:  d.url,
			RTSP:     fmt.Sprintf("127.0.0.1:%d", cfg.RTSPPort+i),
			Capacity: cfg.PeerCapacity * cfg.Stripes,
			Logger:   cfg.Logger.With("role", "peer", "peer", i),
		})
		if err != nil {
			return nil, fmt.Errorf("demo: peer %d: %w", i, err)
		}
		d.startPeer(ctx, &wg, errc, p)
		if err := d.waitJoined(ctx, p); err != nil {
			return nil, err
		}
	}

	fmt.Fprintf(cfg.Out, "swarmtv demo: origin + tracker + %d peers; tracker %s\n", cfg.Peers, d.url)
	fmt.Fprintf(cfg.Out, "dashboard: %s/   metrics: %s/metrics\n", d.url, d.url)
	for i, p := range d.peers {
		fmt.Fprintf(cfg.Out, "  peer %d: %s   status %s/peers/%d/\n", i, p.URL(), d.url, i)
	}
	fmt.Fprintf(cfg.Out, "open one with: ffplay %s   (Ctrl-C stops the demo)\n", d.peers[0].URL())

	var deadline <-chan time.Time
	if cfg.Duration > 0 {
		timer := time.NewTimer(cfg.Duration)
		defer timer.Stop()
		deadline = timer.C
	}
	var tick <-chan time.Time
	if cfg.StatusEvery > 0 {
		ticker := time.NewTicker(cfg.StatusEvery)
		defer ticker.Stop()
		tick = ticker.C
	}
	out := d.newOutage()
	defer out.stop()
	var runErr error
loop:
	for {
		select {
		case <-out.killC:
			d.stopTracker(tp)
			tp = nil
			fmt.Fprintf(cfg.Out, "[%5.0fs] tracker killed\n", time.Since(d.start).Seconds())
		case <-out.joinC:
			if err := d.joinDuringOutage(ctx, &wg, errc); err != nil {
				runErr = err
				break loop
			}
		case <-out.restartC:
			ln, err := net.Listen("tcp", strings.TrimPrefix(d.url, "http://"))
			if err == nil {
				tp, err = d.startTracker(ctx, ln)
			}
			if err != nil {
				runErr = fmt.Errorf("demo: restarting the tracker: %w", err)
				break loop
			}
			fmt.Fprintf(cfg.Out, "[%5.0fs] tracker restarted, empty\n", time.Since(d.start).Seconds())
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case err := <-errc:
			runErr = err
			break loop
		case <-tick:
			fmt.Fprintln(cfg.Out, d.StatusLine())
		}
	}
	r := d.Report()
	if cfg.afterRun != nil {
		cfg.afterRun(d)
	}
	return r, runErr
}

// listenDashboard listens on addr, or on DefaultDashboardAddr, falling
// back to a free loopback port when the default is taken.
func listenDashboard(addr string) (net.Listener, error) {
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("demo: dashboard address: %w", err)
		}
		return ln, nil
	}
	if ln, err := net.Listen("tcp", DefaultDashboardAddr); err == nil {
		return ln, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: dashboard address: %w", err)
	}
	return ln, nil
}

// servePeerStatus serves peer i's status page under /peers/<i>/.
func (d *Demo) servePeerStatus(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(r.PathValue("i"))
	d.statusMu.Lock()
	var h http.Handler
	if err == nil && i >= 0 && i < len(d.status) {
		h = d.status[i]
	}
	d.statusMu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// waitChannel waits until the origin has registered the channel.
func (d *Demo) waitChannel(ctx context.Context) error {
	c := &tracker.Client{BaseURL: d.url}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Channel(ctx, Channel); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("demo: the origin did not register the channel within 15s")
}

// waitJoined waits until p has a parent and has played its first slice,
// so the next peer is placed below it.
func (d *Demo) waitJoined(ctx context.Context, p *proxy.Peer) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		st := p.Status()
		if st.Parent.ID != "" && st.Swarm.PlayedSlices > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("demo: peer %s did not start playing within 15s", p.ID())
}

// countBytes counts the tracker's HTTP traffic as control bytes.
func (d *Demo) countBytes(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == tracker.ProbePath {
			h.ServeHTTP(w, r) // measurement filler, not control traffic
			return
		}
		n := r.ContentLength
		if n < 0 {
			n = 0
		}
		d.ctrl.Add(n + 200) // body plus typical request line and headers
		cw := &countingWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		d.ctrl.Add(cw.n + 150)
	})
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// name returns a short name for a node ID: origin, or the peer's index.
func (d *Demo) name(id string) string {
	if id == string(d.origin.ID()) {
		return "origin"
	}
	for i, p := range d.peers {
		if string(p.ID()) == id {
			return fmt.Sprintf("p%d", i)
		}
	}
	if id == "" {
		return "-"
	}
	return id[:min(8, len(id))]
}

// stripeParents names a peer's parents: one name when every stripe has
// the same parent, else one per stripe joined by "/".
func (d *Demo) stripeParents(as []tracker.StripeAssignment) string {
	names := make([]string, len(as))
	for s, a := range as {
		names[s] = d.name(a.Parent.ID)
	}
	if len(names) == 0 {
		return "-"
	}
	for _, n := range names[1:] {
		if n != names[0] {
			return strings.Join(names, "/")
		}
	}
	return names[0]
}

// StatusLine is the one-line status: peers, savings, each peer's parents
// (per stripe when they differ).
func (d *Demo) StatusLine() string {
	var player int64
	var parents []string
	for i, p := range d.peers {
		st := p.Status()
		player += int64(st.Swarm.PlayerBytes)
		parents = append(parents, fmt.Sprintf("p%d<-%s", i, d.stripeParents(st.Stripes)))
	}
	egress := int64(d.origin.Stats().EgressBytes)
	savings := "n/a"
	if s := report.Savings(egress, player); s != nil {
		savings = fmt.Sprintf("%.1f%%", *s*100)
	}
	return fmt.Sprintf("[%5.0fs] peers %d | savings %s | origin sent %s, players got %s | %s%s",
		time.Since(d.start).Seconds(), len(d.peers), savings, human(egress), human(player), strings.Join(parents, " "), d.outageStatus())
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// startPeer adds p as the demo's next peer (its status page under
// /peers/<i>/) and runs it until ctx ends; an error goes to errc.
func (d *Demo) startPeer(ctx context.Context, wg *sync.WaitGroup, errc chan error, p *proxy.Peer) {
	i := len(d.peers)
	d.peers = append(d.peers, p)
	d.statusMu.Lock()
	d.status = append(d.status, http.StripPrefix(fmt.Sprintf("/peers/%d", i), proxy.StatusHandler(p)))
	d.statusMu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := p.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("demo: peer %d: %w", i, err)
		}
	}()
}
