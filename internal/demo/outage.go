package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmtv/swarmtv/proxy"
	"github.com/swarmtv/swarmtv/tracker"
	"github.com/swarmtv/swarmtv/web"
)

// A tracker outage in the demo (Config.KillTrackerAt, RestartTrackerAt):
// the tracker "process" — the tracker, its telemetry and its HTTP server
// on the dashboard address — is stopped (connections are refused, its
// state is gone) and later an empty one starts on the same address.
// Meanwhile the viewers keep playing over their links, and one more
// viewer joins with peer 0's address as its --bootstrap: it takes the
// channel from that peer and plays. After the restart every peer's
// heartbeat is refused as unknown and it joins again, so the new
// tracker's view is the swarm's again (TrackerView).

// trackerProc is one run of the tracker.
type trackerProc struct {
	t      *tracker.Tracker
	tel    *tracker.Telemetry
	rv     *tracker.Rendezvous
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startTracker starts a tracker serving on ln (which it closes when
// stopped). Run goroutine only.
func (d *Demo) startTracker(ctx context.Context, ln net.Listener) (*trackerProc, error) {
	t, err := tracker.New(tracker.Config{Logger: d.cfg.Logger.With("role", "tracker"), ISPs: d.cfg.ISPs})
	if err != nil {
		return nil, err
	}
	// The rendezvous tells peers where the STUN service is (they probe
	// their NAT class: open on loopback) and collects their connection
	// outcomes, as a real tracker does.
	rv := tracker.NewRendezvous(t, tracker.RendezvousConfig{STUN: d.stun, Logger: d.cfg.Logger.With("role", "tracker")})
	tel := tracker.NewTelemetry(t, tracker.TelemetryConfig{Rendezvous: rv})
	var registered []prometheus.Collector
	for _, c := range []prometheus.Collector{t, tel, rv} {
		if err := d.reg.Register(c); err != nil {
			for _, r := range registered {
				d.reg.Unregister(r)
			}
			return nil, err
		}
		registered = append(registered, c)
	}
	mux := http.NewServeMux()
	mux.Handle("/", web.TrackerHandler(rv.Wrap(d.countBytes(tracker.NewReportLimiter(t).Wrap(t.Handler()))), tel, d.reg))
	mux.HandleFunc("/peers/{i}/", d.servePeerStatus)
	ctx, cancel := context.WithCancel(ctx)
	tp := &trackerProc{t: t, tel: tel, rv: rv, cancel: cancel,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
			BaseContext: func(net.Listener) context.Context { return ctx }}}
	tp.wg.Go(func() { tp.srv.Serve(ln) })
	tp.wg.Go(func() { t.Run(ctx) })
	tp.wg.Go(func() { tel.Run(ctx) })
	d.tracker, d.rv, d.trUp = t, rv, true
	return tp, nil
}

// stopTracker kills a tracker run (nil: none running).
func (d *Demo) stopTracker(tp *trackerProc) {
	if tp == nil {
		return
	}
	d.trUp = false
	tp.srv.Close()
	tp.cancel()
	tp.wg.Wait()
	d.reg.Unregister(tp.t)
	d.reg.Unregister(tp.tel)
	d.reg.Unregister(tp.rv)
}

// outage holds the timers of a tracker outage; nil channels never fire.
type outage struct {
	killC, joinC, restartC <-chan time.Time
	timers                 []*time.Timer
}

func (d *Demo) newOutage() *outage {
	o := &outage{}
	at := func(t time.Duration) <-chan time.Time {
		tm := time.NewTimer(max(t-time.Since(d.start), 0))
		o.timers = append(o.timers, tm)
		return tm.C
	}
	if k := d.cfg.KillTrackerAt; k > 0 {
		o.killC = at(k)
		// The newcomer comes a little into the outage (the viewers'
		// heartbeats have failed by then), before any restart.
		join := k + 2*time.Second
		if r := d.cfg.RestartTrackerAt; r > 0 {
			join = min(join, k+(r-k)/2)
		}
		o.joinC = at(join)
	}
	if r := d.cfg.RestartTrackerAt; r > 0 {
		o.restartC = at(r)
	}
	return o
}

func (o *outage) stop() {
	for _, t := range o.timers {
		t.Stop()
	}
}

// joinDuringOutage starts one more viewer with peer 0's QUIC address as
// its bootstrap.
func (d *Demo) joinDuringOutage(ctx context.Context, wg *sync.WaitGroup, errc chan error) error {
	i := len(d.peers)
	p, err := proxy.NewPeer(proxy.PeerConfig{
		Channel:   Channel,
		Tracker:   d.url,
		RTSP:      fmt.Sprintf("127.0.0.1:%d", d.cfg.RTSPPort+i),
		Capacity:  d.cfg.PeerCapacity * d.cfg.Stripes,
		Bootstrap: d.peers[0].Addr(),
		NoProbe:   true, // the probe goes to the tracker, which is away
		Logger:    d.cfg.Logger.With("role", "peer", "peer", i),
	})
	if err != nil {
		return fmt.Errorf("demo: bootstrap peer %d: %w", i, err)
	}
	d.startPeer(ctx, wg, errc, p)
	fmt.Fprintf(d.cfg.Out, "[%5.0fs] peer %d joins through peer 0 (--bootstrap %s) while the tracker is away: %s\n",
		time.Since(d.start).Seconds(), i, d.peers[0].Addr(), p.URL())
	return nil
}

// TrackerView returns how many of the demo's peers the tracker knows, and
// how many peers there are.
func (d *Demo) TrackerView() (known, peers int) {
	tv, err := d.tracker.Tree(Channel)
	if err != nil {
		return 0, len(d.peers)
	}
	ids := make(map[string]bool, len(tv.Nodes))
	for _, n := range tv.Nodes {
		ids[n.ID] = true
	}
	for _, p := range d.peers {
		if ids[string(p.ID())] {
			known++
		}
	}
	return known, len(d.peers)
}

// TreeMismatch compares the tracker's stripe trees with the parents the
// peers actually use (after their own repairs) and describes each
// (peer, stripe) on which they differ; empty when the tracker's view is
// the swarm's.
func (d *Demo) TreeMismatch() []string {
	tv, err := d.tracker.Tree(Channel)
	if err != nil {
		return []string{"tracker: " + err.Error()}
	}
	byID := make(map[string]tracker.TreeNode, len(tv.Nodes))
	for _, n := range tv.Nodes {
		byID[n.ID] = n
	}
	var out []string
	for i, p := range d.peers {
		n, ok := byID[string(p.ID())]
		if !ok {
			out = append(out, fmt.Sprintf("peer %d: unknown to the tracker", i))
			continue
		}
		for st, a := range p.Status().Stripes {
			if st >= len(n.Stripes) || n.Stripes[st].Parent != a.Parent.ID {
				tp := ""
				if st < len(n.Stripes) {
					tp = n.Stripes[st].Parent
				}
				out = append(out, fmt.Sprintf("peer %d stripe %d: the tracker says %.8s, the peer uses %.8s", i, st, tp, a.Parent.ID))
			}
		}
	}
	return out
}

// outageStatus is the status line's tracker part when an outage is
// configured.
func (d *Demo) outageStatus() string {
	if d.cfg.KillTrackerAt <= 0 {
		return ""
	}
	if !d.trUp {
		return " | tracker DOWN"
	}
	known, n := d.TrackerView()
	return fmt.Sprintf(" | tracker knows %d/%d peers", known, n)
}
