package proxy

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/swarmtv/swarmtv/chandelier"
	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/overlay"
	"github.com/swarmtv/swarmtv/tracker"
)

// PeerConfig configures a viewer's Peer. Zero values take the defaults
// noted.
type PeerConfig struct {
	Channel string // required
	// Tracker is the tracker's base URL (required).
	Tracker string
	// Listen is the UDP address of the peer's QUIC socket (default
	// "127.0.0.1:0").
	Listen string
	// Advertise is the address other peers dial (default: the bound
	// address, with 127.0.0.1 for an unspecified IP).
	Advertise string
	// RTSP is the address players connect to (default "127.0.0.1:8554").
	RTSP string
	// Capacity is how many children this peer feeds (default 2).
	Capacity int
	// MaxUploadBPS caps the upload capacity the peer reports, in bit/s
	// (0: no cap). The capacity itself is measured, not configured: a
	// timed upload to the tracker at start (tracker.ProbePath), raised by
	// the peak rate the peer forwards at while its children wait.
	MaxUploadBPS int64
	// NoProbe skips the upload probe at start (the forwarding rate is
	// still measured).
	NoProbe bool
	// PlayoutDelay is how far behind the slowest recent slice's arrival
	// playout runs once it has converged (default DefaultPlayoutDelay); the peer starts playing its start
	// keyframe slice at once, with swarm.ViewerStartMargin, and slows
	// down or catches up to it.
	PlayoutDelay time.Duration
	// Logger receives the peer's logs (default: discard).
	Logger *slog.Logger
	// NAT tunes NAT traversal (see nat.go).
	NAT NATConfig
	// Parent, when set, pins every stripe's parent to this node whatever
	// the tracker assigns (tests and diagnostics: `swarmtv loadtest
	// natmatrix` makes pairs with it).
	Parent tracker.NodeInfo
	// Bootstrap is a running peer's host:port: the peer joins the
	// channel's overlay through it, and, when the tracker is unreachable
	// at start, takes the channel from it and joins the tracker later
	// (see overlay.go). Empty: the tracker's peers only.
	Bootstrap string
	// StateDir is a folder for the peer's state: the cache of ring
	// members seen before (peercache.go), through which it rejoins when
	// neither the tracker nor Bootstrap answers. Empty: no cache.
	StateDir string
}

// DefaultPlayoutDelay is PeerConfig.PlayoutDelay's default.
const DefaultPlayoutDelay = swarm.ViewerPlayoutDelay

func (c *PeerConfig) validate() error {
	if c.Channel == "" {
		return errors.New("peer: no channel: give --channel NAME")
	}
	if c.Tracker == "" {
		return errors.New("peer: no tracker URL: give --tracker http://HOST:PORT")
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.RTSP == "" {
		c.RTSP = "127.0.0.1:8554"
	}
	if c.Capacity == 0 {
		c.Capacity = 2
	}
	if c.Capacity < 0 || c.Capacity > tracker.MaxPeerCapacity {
		return fmt.Errorf("peer: capacity must be 0..%d, not %d", tracker.MaxPeerCapacity, c.Capacity)
	}
	if c.MaxUploadBPS < 0 || c.MaxUploadBPS > tracker.MaxUploadBPS {
		return fmt.Errorf("peer: the upload cap must be 0..%d bit/s, not %d", int64(tracker.MaxUploadBPS), c.MaxUploadBPS)
	}
	if c.PlayoutDelay == 0 {
		c.PlayoutDelay = DefaultPlayoutDelay
	}
	if c.Bootstrap != "" {
		if _, _, err := net.SplitHostPort(c.Bootstrap); err != nil {
			return fmt.Errorf("peer: --bootstrap wants a running peer's HOST:PORT, not %q: %w", c.Bootstrap, err)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Peer is a viewer's local proxy: it joins the channel through the
// tracker, receives, verifies and forwards chunks in the swarm, plays
// them out on its own clock and serves that playout to players over RTSP.
type Peer struct {
	cfg     PeerConfig
	log     *slog.Logger
	id      *transport.Identity
	ep      *transport.Endpoint
	tracker *tracker.Client
	rtsp    *RTSPServer
	lost    chan lostReport // local repairs to report to the tracker
	nat     *natAgent

	mu      sync.Mutex
	channel tracker.ChannelInfo // guarded by mu
	driver  *transport.Driver   // guarded by mu; nil before Run joined
	ov      *transport.Overlay  // guarded by mu; nil before Run joined
	// candidates are ring members, parents of last resort while the
	// tracker is away (trackerAway); both guarded by mu (overlay.go).
	candidates  []tracker.NodeInfo
	trackerAway bool
	// ringRanks are the candidates' places in the stripe trees and
	// ringSelf this peer's, from the tracker's latest tree view;
	// ringSelf.depth never grows while the tracker is away (the ring
	// rule, overlay.go). Guarded by mu.
	ringRanks map[string]ringRank
	ringSelf  ringRank
	// parentDepth is, per stripe, this peer's depth as its parent last
	// told it (the parent's plus one; 1 under the origin; 0 not heard),
	// as of the last ringEvery; it overrides the tree view's depth in
	// ringSelf. Guarded by mu.
	parentDepth []int
	// estimates are the ring's gossip estimates as the repair policy
	// reads them (chandelier.RepairWith), as of the last ring round.
	// Guarded by mu.
	estimates chandelier.Estimates
	// health is this peer's recent playout continuity as given to the
	// gossip, with the core's played and due slices when it was figured
	// (recentHealth). Guarded by mu.
	health       float64
	healthPlayed uint64
	healthDue    uint64
	// parentTold carries the members that told their depth (overlay
	// Told): the ring loop takes this peer's depth at once when one is a
	// parent. Set by newOverlay; guarded by mu.
	parentTold chan overlay.ID
	// childIDs lists this peer's children for passing on a depth change;
	// nil means the driver's (tests set it). Guarded by mu.
	childIDs func() []swarm.NodeID
	// ringOffers are, per stripe, the offers of room the ring's partner
	// discovery found (overlay.Offers), best first, as of the last
	// ringEvery; candidates beyond the members in the ring tables, and
	// the depths members advertise themselves. Guarded by mu.
	ringOffers [][]overlay.Offer
	// ringOffersAt is when ringOffers were taken (their ages count from
	// then); awaySince when the tracker last went away. Guarded by mu.
	ringOffersAt, awaySince time.Time
	// stripes is, per stripe, the parent in use (after local repairs)
	// and the tracker's ranked backups; guarded by mu, nil before Run
	// joined. The driver's parents are set under mu, so they follow it.
	stripes  []tracker.StripeAssignment
	failed   map[string]time.Time // guarded by mu: parents lost recently → when
	losses   map[string]int       // guarded by mu: times each parent in failed was lost in a row
	probed   int64                // guarded by mu: upload probe result, bit/s (0: none)
	lagMS    int64                // guarded by mu: latest capture-to-playout lag
	lags     []time.Duration      // guarded by mu: lag samples (bounded)
	joinedAt time.Time            // guarded by mu
	played   bool                 // guarded by mu
	startup  time.Duration        // guarded by mu: join to first slice played
	watched  time.Duration        // guarded by mu: media time played out
}

// maxLagSamples bounds the lag samples a peer keeps for reports.
const maxLagSamples = 1 << 16

// NewPeer binds the peer's sockets (QUIC and RTSP). Run joins and serves.
func NewPeer(cfg PeerConfig) (*Peer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	id, err := transport.NewIdentity()
	if err != nil {
		return nil, err
	}
	ep, err := transport.Listen(cfg.Listen, id, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("peer: listening on %s: %w", cfg.Listen, err)
	}
	rtsp, err := NewRTSPServer(RTSPConfig{Addr: cfg.RTSP, Channel: cfg.Channel, Logger: cfg.Logger})
	if err != nil {
		ep.Close()
		return nil, err
	}
	if err := rtsp.Start(); err != nil {
		ep.Close()
		return nil, fmt.Errorf("peer: serving RTSP on %s: %w", cfg.RTSP, err)
	}
	return &Peer{
		cfg:     cfg,
		log:     cfg.Logger,
		id:      id,
		ep:      ep,
		tracker: &tracker.Client{BaseURL: cfg.Tracker},
		rtsp:    rtsp,
		lost:    make(chan lostReport, 64),
		failed:  make(map[string]time.Time),
		losses:  make(map[string]int),
		nat:     newNATAgent(cfg.NAT, ep, &tracker.Client{BaseURL: cfg.Tracker}, cfg.Channel, cfg.Logger),
	}, nil
}

// ID is the peer's node ID.
func (p *Peer) ID() swarm.NodeID { return p.id.ID() }

// URL is the RTSP URL a player opens.
func (p *Peer) URL() string { return p.rtsp.URL() }

// Addr is the address other peers dial.
func (p *Peer) Addr() string {
	return p.ep.Advertised(p.cfg.Advertise)
}

// ErrUnknownChannel: the tracker does not know the channel.
var ErrUnknownChannel = errors.New("peer: the tracker does not know this channel (is its origin running and registered?)")

// Run joins the channel and serves until ctx ends. It leaves the channel
// and closes the peer's sockets before returning.
func (p *Peer) Run(ctx context.Context) error {
	defer p.rtsp.Close()
	defer p.ep.Close()
	p.nat.start(ctx)
	defer p.nat.close()

	if !p.cfg.NoProbe {
		p.probeUpload(ctx)
	}
	jr, err := p.join(ctx)
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrUnknownChannel) {
		trackerErr := err
		if p.cfg.Bootstrap != "" {
			jr, err = p.joinBootstrap(ctx, trackerErr)
		}
		if err != nil && p.cfg.StateDir != "" && ctx.Err() == nil {
			jr, err = p.joinCached(ctx, trackerErr) // peers seen before
		}
	}
	if err != nil {
		return err
	}
	p.nat.setOrigin(jr.Channel.Origin.ID)
	pub, err := base64.StdEncoding.DecodeString(jr.Channel.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("peer: the tracker gave a bad channel key for %q", p.cfg.Channel)
	}
	if err := p.rtsp.SetDescription([]byte(jr.Channel.SDP)); err != nil {
		return fmt.Errorf("peer: the channel's SDP: %w", err)
	}
	node, err := swarm.New(swarm.Config{
		Channel:       p.cfg.Channel,
		PublicKey:     ed25519.PublicKey(pub),
		Stripes:       jr.Channel.Stripes,
		Origin:        swarm.NodeID(jr.Channel.Origin.ID),
		MaxChildren:   tracker.AcceptLimit(p.cfg.Capacity), // a moved child leaves late
		SliceDuration: time.Duration(jr.Channel.SliceMS) * time.Millisecond,
		PlayoutDelay:  p.cfg.PlayoutDelay,
		StartMargin:   min(swarm.ViewerStartMargin, p.cfg.PlayoutDelay),
		KeyframeWait:  swarm.ViewerKeyframeWait,
		StartAge:      startAge(jr.StartAgeMS), // every stripe from one keyframe
		// A parent that delivers 2 s of slices in a row only after the
		// origin's fallback did has fallen behind: switch to a backup.
		// (Longer than a parent's own repair, so no cascade.)
		LagSlices: lagSlices(jr.Channel.SliceMS),
	})
	if err != nil {
		return err
	}
	ov, err := p.newOverlay()
	if err != nil {
		return err
	}
	driver, err := transport.NewDriver(transport.DriverConfig{
		Overlay:  ov,
		Node:     node,
		Endpoint: p.ep,
		Channel:  p.cfg.Channel,
		Origin:   transport.Peer{ID: swarm.NodeID(jr.Channel.Origin.ID), Addr: jr.Channel.Origin.Addr},
		Logger:   p.log,
		OnPlay:   p.onPlay,
		OnLost:   p.onLost,
	})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.channel = jr.Channel
	p.driver = driver
	p.ov = ov
	p.joinedAt = time.Now()
	p.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	driverErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		driverErr <- driver.Run(ctx)
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		ov.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		p.ringLoop(ctx, ov, jr)
	}()
	p.applyStripes(jr.Stripes, jr.Parent, time.Time{})
	p.log.Info("joined", "channel", p.cfg.Channel, "id", p.ID(), "parent", jr.Parent.ID, "rtsp", p.URL())

	p.control(ctx, time.Duration(jr.HeartbeatMS)*time.Millisecond)

	driver.Close()
	ov.Close()
	wg.Wait()
	lctx, lcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer lcancel()
	if err := p.tracker.Leave(lctx, p.cfg.Channel, string(p.ID())); err != nil {
		p.log.Debug("leaving the channel", "err", err)
	}
	if err := <-driverErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// join joins the channel, waiting while the swarm has no free slot.
func (p *Peer) join(ctx context.Context) (tracker.JoinResponse, error) {
	for {
		req := tracker.JoinRequest{ID: string(p.ID()), Addr: p.Addr(), Capacity: p.cfg.Capacity, UploadBPS: p.UploadBPS()}
		req.NAT, req.Candidates = p.nat.report()
		req.Current = p.currentPlace()
		jctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		jr, err := p.tracker.Join(jctx, p.cfg.Channel, req)
		cancel()
		if !errors.Is(err, tracker.ErrNoCapacity) {
			return jr, p.joinError(err)
		}
		p.log.Warn("the swarm has no free slot yet; waiting", "channel", p.cfg.Channel)
		select {
		case <-ctx.Done():
			return jr, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// currentPlace is what a rejoining peer reports of its place: the
// parent it uses per stripe (after its own repairs) and its depth there
// (the ring rule's, which never grows while the tracker is away); nil
// before the first join or with no parent at all, so that the tracker
// places it afresh.
func (p *Peer) currentPlace() *tracker.CurrentPlace {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.ContainsFunc(p.stripes, func(a tracker.StripeAssignment) bool { return !a.Parent.IsZero() }) {
		return nil
	}
	cp := &tracker.CurrentPlace{Version: tracker.PlaceVersion, Stripes: make([]tracker.CurrentStripe, len(p.stripes))}
	for st, a := range p.stripes {
		cp.Stripes[st].Parent = tracker.NodeInfo{ID: a.Parent.ID, Addr: a.Parent.Addr}
		if d := p.ringDepthLocked(st); !a.Parent.IsZero() && d > 0 && d <= tracker.MaxDepth {
			cp.Stripes[st].Depth = d
		}
	}
	return cp
}

func (p *Peer) joinError(err error) error {
	if errors.Is(err, tracker.ErrUnknownChannel) {
		return fmt.Errorf("%w: channel %q at %s", ErrUnknownChannel, p.cfg.Channel, p.cfg.Tracker)
	}
	if err != nil {
		return fmt.Errorf("peer: joining %q at tracker %s: %w", p.cfg.Channel, p.cfg.Tracker, err)
	}
	return nil
}

// control runs the heartbeat and parent-repair loop until ctx ends.
func (p *Peer) control(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-p.lost:
			p.reportLost(ctx, r)
		case <-t.C:
			// Losses first: a heartbeat sent before they are reported
			// would bring back the lost parents.
			for drained := false; !drained; {
				select {
				case r := <-p.lost:
					p.reportLost(ctx, r)
				default:
					drained = true
				}
			}
			p.heartbeat(ctx)
		}
	}
}

func (p *Peer) heartbeat(ctx context.Context) {
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	sent := time.Now()
	req := tracker.HeartbeatRequest{ID: string(p.ID()), Stats: p.TrackerStats(), UploadBPS: p.UploadBPS()}
	req.NAT, req.Candidates = p.nat.report()
	resp, err := p.tracker.Heartbeat(hctx, p.cfg.Channel, req)
	if errors.Is(err, tracker.ErrUnknownPeer) || errors.Is(err, tracker.ErrUnknownChannel) {
		// The tracker forgot us (it restarted or timed us out): join again.
		jr, jerr := p.join(ctx)
		if jerr != nil {
			p.log.Warn("re-joining", "err", jerr)
			return
		}
		p.applyStripes(jr.Stripes, jr.Parent, sent)
		return
	}
	if err != nil {
		p.log.Debug("heartbeat", "err", err)
		return
	}
	p.applyStripes(resp.Stripes, resp.Parent, sent)
}

// onPlay runs on the driver's goroutine for every slice played out.
func (p *Peer) onPlay(sl swarm.Slice) {
	p.rtsp.WriteSlice(sl)
	now := time.Now()
	lag := now.Sub(sl.Capture)
	p.mu.Lock()
	if !p.played {
		p.played = true
		p.startup = now.Sub(p.joinedAt)
	}
	p.lagMS = lag.Milliseconds()
	p.watched += sl.Duration
	if len(p.lags) < maxLagSamples {
		p.lags = append(p.lags, lag)
	}
	p.mu.Unlock()
}

// Status is what a peer knows about itself.
type Status struct {
	ID      swarm.NodeID
	Channel string
	// Parent is stripe 0's parent (see Stripes).
	Parent tracker.NodeInfo
	// Stripes is, per stripe, the parent in use and the ranked backups.
	Stripes []tracker.StripeAssignment
	// UploadBPS is the upload capacity reported to the tracker (0:
	// unmeasured).
	UploadBPS int64
	URL       string
	Swarm     swarm.Stats
	RTSP      RTSPStats
	// Startup is join to first slice played (0 before).
	Startup time.Duration
	// Lag is the latest slice's capture-to-playout lag.
	Lag time.Duration
	// Watched is the media time played out.
	Watched time.Duration
}

// Status returns the peer's current status.
func (p *Peer) Status() Status {
	stripes := p.Stripes()
	p.mu.Lock()
	d := p.driver
	st := Status{
		ID:      p.ID(),
		Channel: p.cfg.Channel,
		Stripes: stripes,
		URL:     p.URL(),
		Startup: p.startup,
		Lag:     time.Duration(p.lagMS) * time.Millisecond,
		Watched: p.watched,
	}
	p.mu.Unlock()
	if len(stripes) > 0 {
		st.Parent = stripes[0].Parent
	}
	st.UploadBPS = p.UploadBPS()
	if d != nil {
		st.Swarm = d.Stats()
	}
	st.RTSP = p.rtsp.Stats()
	return st
}

// Lags returns the capture-to-playout lag of every slice played (up to a
// bound), for reports.
func (p *Peer) Lags() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Duration(nil), p.lags...)
}

// TrackerStats are the counters reported with each heartbeat.
func (p *Peer) TrackerStats() tracker.PeerStats {
	st := p.Status()
	s := st.Swarm
	return tracker.PeerStats{
		PlayedSlices:   int64(s.PlayedSlices),
		LateSlices:     int64(s.LateSlices),
		LostSlices:     int64(s.LostSlices),
		Stalls:         int64(s.Stalls),
		StallMS:        s.StallTime.Milliseconds(),
		PlayerBytes:    int64(s.PlayerBytes),
		P2PBytesIn:     int64(s.P2PBytesIn),
		OriginBytesIn:  int64(s.OriginBytesIn),
		BytesForwarded: int64(s.BytesForwarded),
		BadChunks:      int64(s.BadChunks),
		StartupMS:      st.Startup.Milliseconds(),
		LagMS:          max(st.Lag.Milliseconds(), 0),
		Repairs:        int64(s.Repairs),
	}
}

// lagSlices is swarm.Config.LagSlices for a channel's slice length: 2 s.
func lagSlices(sliceMS int) int {
	if sliceMS <= 0 {
		return 20
	}
	return max(2000/sliceMS, 2)
}

// startAge is the start age the tracker's join answer names (shorter
// during a flash crowd), or swarm.ViewerStartAge when it names none.
func startAge(ms int64) time.Duration {
	if ms <= 0 {
		return swarm.ViewerStartAge
	}
	return time.Duration(ms) * time.Millisecond
}
