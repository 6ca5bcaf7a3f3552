package tracker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/swarmtv/swarmtv/chandelier"
)

// Defaults and bounds of [Config].
const (
	DefaultHeartbeatInterval = time.Second
	MinHeartbeatInterval     = 10 * time.Millisecond
	MaxHeartbeatInterval     = time.Minute
	// ExpiryIntervals is how many heartbeat intervals a peer may stay
	// silent before it is removed.
	ExpiryIntervals = 3
	// MaxRejoinWindow bounds Config.RejoinWindow: every rejoin it holds
	// waits that long for its answer (the peers keep streaming meanwhile).
	MaxRejoinWindow = time.Minute
)

// DefaultRoundInterval is how often the placement runs a round.
const DefaultRoundInterval = time.Second

// Config configures a [Tracker]. The zero value is usable.
type Config struct {
	// HeartbeatInterval is how often peers must heartbeat (told to them in
	// JoinResponse). A peer silent for ExpiryIntervals intervals is
	// removed. Default DefaultHeartbeatInterval; must lie within
	// [MinHeartbeatInterval, MaxHeartbeatInterval].
	HeartbeatInterval time.Duration
	// RoundInterval is how often Run runs a placement round for every
	// channel (joins and unrepaired losses run one at once). Default
	// DefaultRoundInterval.
	RoundInterval time.Duration
	// Logger receives the tracker's logs. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now; tests inject their own.
	Now func() time.Time
	// JoinWindow, when positive, lets the joins of a channel that arrive
	// within it of the first share one placement round: each waits at
	// most this long for its answer. 0 (the default) runs a round per
	// join: about 0.3 ms at 1,000 peers, 1.4 ms at 10,000 and 180 ms at
	// 100,000 on a 2-core machine (BenchmarkJoin*), so large swarms want
	// a window of tens of milliseconds.
	JoinWindow time.Duration
	// Placer names the placement: PlacerChandelier (default) or
	// PlacerBaseline.
	Placer string
	// Seed seeds the baseline placer's random choices.
	Seed uint64
	// Relay tells the placement that the peers can reach a relay
	// (swarmtv tracker --relay): a peer no free slot can reach directly
	// is then given a parent through the relay as a last resort
	// (StripeAssignment.Relayed) instead of waiting on the origin.
	Relay bool
	// RejoinWindow is how long after the tracker learns of a channel
	// (its registration: a new channel, or any channel after a tracker
	// restart) the joins that report the peer's current place
	// (JoinRequest.Current) are held, to be placed together by one seed
	// round that keeps their valid links: a restarted tracker then
	// rebuilds the swarm's trees as they stand instead of re-placing
	// every stripe. Default 2 × HeartbeatInterval (every peer's next
	// heartbeat finds the tracker back within one interval); negative
	// disables it (rejoins are then placed one round at a time, their
	// links kept as switches when the parent is known).
	RejoinWindow time.Duration
	// ISPs maps peers' addresses to ISPs for the HTTP join (nil: every
	// peer is in one unknown ISP, unless it joins in-process with ISP
	// set).
	ISPs *ISPTable
	// StartAge and CrowdStartAge are the start ages a join answer
	// (JoinResponse.StartAgeMS) tells a new peer (swarm.Config.StartAge:
	// every stripe from the first keyframe captured at most that long
	// before its first hello): StartAge into a settled swarm, whose
	// parents hold the newest group of pictures, so the peer starts on it
	// at once; CrowdStartAge during a flash crowd (see crowded), whose
	// new parents do not hold an older keyframe and whose uploads carry
	// many new children's backlogs, so a shorter one keeps those small.
	// Defaults DefaultStartAge and DefaultCrowdStartAge; negative: the
	// answer names none (the peer keeps its own).
	StartAge, CrowdStartAge time.Duration
}

// Defaults of Config.StartAge and Config.CrowdStartAge. Measured in the
// simulator (2,000 viewers, 10 s flash crowd, seed 1): a start age of
// 1 s starts the viewers joining a settled swarm (10 % churn per minute)
// at p50/p95 540/819 ms against 763/1,280 ms with 600 ms, at the same
// lag; in the flash crowd itself 1 s cost lag (p95 1,953 against
// 1,511 ms over 60 s) and continuity (0.9983 against 0.9995).
const (
	DefaultStartAge      = time.Second
	DefaultCrowdStartAge = 600 * time.Millisecond
)

func (c *Config) setDefaults() {
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.RoundInterval == 0 {
		c.RoundInterval = DefaultRoundInterval
	}
	if c.RejoinWindow == 0 {
		c.RejoinWindow = 2 * c.HeartbeatInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Placer == "" {
		c.Placer = PlacerChandelier
	}
	if c.StartAge == 0 {
		c.StartAge = DefaultStartAge
	}
	if c.CrowdStartAge == 0 {
		c.CrowdStartAge = DefaultCrowdStartAge
	}
}

func (c *Config) validate() error {
	if c.HeartbeatInterval < MinHeartbeatInterval || c.HeartbeatInterval > MaxHeartbeatInterval {
		return fmt.Errorf("tracker: heartbeat interval %v is out of range [%v, %v]",
			c.HeartbeatInterval, MinHeartbeatInterval, MaxHeartbeatInterval)
	}
	if c.RoundInterval < MinHeartbeatInterval || c.RoundInterval > MaxHeartbeatInterval {
		return fmt.Errorf("tracker: round interval %v is out of range [%v, %v]",
			c.RoundInterval, MinHeartbeatInterval, MaxHeartbeatInterval)
	}
	if c.JoinWindow < 0 || c.JoinWindow > time.Second {
		return fmt.Errorf("tracker: join window %v is out of range [0, 1s]", c.JoinWindow)
	}
	if c.RejoinWindow > MaxRejoinWindow {
		return fmt.Errorf("tracker: rejoin window %v is too long (at most %v; negative disables it)", c.RejoinWindow, MaxRejoinWindow)
	}
	if c.Placer != PlacerChandelier && c.Placer != PlacerBaseline {
		return fmt.Errorf("tracker: unknown placer %q (use %q or %q)", c.Placer, PlacerChandelier, PlacerBaseline)
	}
	return nil
}

// Tracker is the tracker service: channels, their peers and their stripe
// trees. It is safe for concurrent use.
type Tracker struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler

	mu       sync.Mutex
	channels map[string]*channel // guarded by mu
	events   map[string]uint64   // event counts for metrics; guarded by mu
	// origins holds the heartbeat state of the channels whose origin
	// promised heartbeats (see origin.go); guarded by mu.
	origins map[string]*originBeat
}

// New returns a Tracker for cfg, after filling in defaults.
func New(cfg Config) (*Tracker, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Tracker{cfg: cfg, log: cfg.Logger, channels: map[string]*channel{}, events: map[string]uint64{}, origins: map[string]*originBeat{}}
	t.handler = t.newHandler()
	return t, nil
}

// Handler returns the HTTP API handler.
func (t *Tracker) Handler() http.Handler { return t.handler }

// Run sweeps out silent peers every half heartbeat interval and runs a
// placement round every round interval until ctx is done, then returns
// nil. Run it once, in a goroutine the caller waits for.
func (t *Tracker) Run(ctx context.Context) error {
	sweep := time.NewTicker(t.cfg.HeartbeatInterval / 2)
	defer sweep.Stop()
	round := time.NewTicker(t.cfg.RoundInterval)
	defer round.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			t.sweep()
		case <-round.C:
			t.Round()
		}
	}
}

// Round expires silent peers and runs one placement round in every
// channel: Run calls it every round interval; the simulator calls it in
// virtual time.
func (t *Tracker) Round() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	t.expireChannelsLocked(now)
	for _, name := range t.channelNamesLocked() {
		ch := t.channels[name]
		t.expireLocked(name, ch, now)
		t.roundLocked(ch, now)
	}
}

// roundLocked runs one round of ch's placer and times it.
func (t *Tracker) roundLocked(ch *channel, now time.Time) chandelier.Plan {
	start := time.Now()
	seeding := !ch.seedAt.IsZero() && !now.Before(ch.seedAt) && len(ch.held) > 0
	plan := ch.round(now)
	d := time.Since(start).Nanoseconds()
	if seeding {
		ch.seedNanos += d
	}
	ch.roundNanos += d
	ch.lastRoundNs = d
	return plan
}

// sweep expires silent peers in every channel.
func (t *Tracker) sweep() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	t.expireChannelsLocked(now)
	for _, name := range t.channelNamesLocked() {
		t.expireLocked(name, t.channels[name], now)
	}
}

func (t *Tracker) expireLocked(name string, ch *channel, now time.Time) {
	for _, id := range ch.expire(now, ExpiryIntervals*t.cfg.HeartbeatInterval) {
		t.events[eventExpire]++
		t.log.Info("peer expired", "channel", name, "peer", id)
	}
}

func (t *Tracker) channelNamesLocked() []string {
	names := make([]string, 0, len(t.channels))
	for n := range t.channels {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// channelLocked returns the channel name after expiring its silent peers.
func (t *Tracker) channelLocked(name string, now time.Time) (*channel, error) {
	ch, ok := t.channels[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownChannel, truncate(name))
	}
	t.expireLocked(name, ch, now)
	return ch, nil
}

// Register registers a channel or, for a known name with the same public
// key, replaces its origin (an origin restart). It reports whether the
// channel is new.
func (t *Tracker) Register(req RegisterRequest) (created bool, err error) {
	if err := req.validate(); err != nil {
		return false, err
	}
	key, _ := req.Channel.publicKey()
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	name := req.Channel.Name
	ch, ok := t.channels[name]
	if !ok {
		ch, err := newChannel(req, key, t.cfg.Placer, t.cfg.Seed, t.cfg.Relay)
		if err != nil {
			return false, err
		}
		if t.cfg.RejoinWindow > 0 {
			ch.seedAt = now.Add(t.cfg.RejoinWindow)
		}
		t.channels[name] = ch
		t.originRegisteredLocked(name, req, now)
		t.log.Info("channel registered", "channel", name, "origin", req.Channel.Origin.ID,
			"addr", req.Channel.Origin.Addr, "capacity", req.Capacity, "placer", t.cfg.Placer)
		return true, nil
	}
	if !bytes.Equal(ch.key, key) {
		return false, fmt.Errorf("%w: %q", ErrKeyMismatch, name)
	}
	if _, taken := ch.peers[req.Channel.Origin.ID]; taken {
		return false, fmt.Errorf("%w: %s is a peer of %q", ErrIDConflict, req.Channel.Origin.ID, name)
	}
	t.expireLocked(name, ch, now)
	t.originRegisteredLocked(name, req, now)
	old := ch.info
	ch.info = req.Channel
	if !rateChanged(old.StreamBPS, req.Channel.StreamBPS) {
		ch.info.StreamBPS = old.StreamBPS // the rate planned with stays
	}
	if old.Stripes != req.Channel.Stripes || ch.info.StreamBPS != old.StreamBPS || ch.originCap != req.Capacity {
		if err := ch.reset(req.Capacity, &now); err != nil {
			ch.info = old
			return false, err
		}
	}
	t.log.Info("channel origin replaced", "channel", name, "origin", req.Channel.Origin.ID,
		"addr", req.Channel.Origin.Addr, "capacity", req.Capacity)
	return false, nil
}

// Channels lists the channels by name with their viewer counts.
func (t *Tracker) Channels() ChannelList {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	list := ChannelList{Channels: []ChannelSummary{}}
	for _, name := range t.channelNamesLocked() {
		ch := t.channels[name]
		t.expireLocked(name, ch, now)
		list.Channels = append(list.Channels, ChannelSummary{Name: name, Viewers: len(ch.peers)})
	}
	return list
}

// Channel returns a channel's description.
func (t *Tracker) Channel(name string) (ChannelInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, ok := t.channels[name]
	if !ok {
		return ChannelInfo{}, fmt.Errorf("%w: %q", ErrUnknownChannel, truncate(name))
	}
	return ch.info, nil
}

// SetRelay sets Config.Relay once the relay is up (or known to be off);
// channels registered afterwards place by it.
func (t *Tracker) SetRelay(on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cfg.Relay = on
}

// Placement returns a channel's placement counters.
func (t *Tracker) Placement(name string) (PlacementStats, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, ok := t.channels[name]
	if !ok {
		return PlacementStats{}, fmt.Errorf("%w: %q", ErrUnknownChannel, truncate(name))
	}
	return PlacementStats{
		Placer: ch.kind, Rounds: ch.rounds, EdgesChanged: ch.edgesChanged, MaxEdgesChanged: ch.maxMoved,
		Deficit: ch.lastPlan.Deficit, RoundSeconds: float64(ch.roundNanos) / 1e9, Relayed: ch.relayed,
		RelayedEdges: ch.lastPlan.RelayedEdges,
		RejoinLinks:  ch.seeded.Links, RejoinKept: ch.seeded.Kept, SeedSeconds: float64(ch.seedNanos) / 1e9,
	}, nil
}

// Join places a peer in a channel's stripe trees: it runs a placement
// round at once, so the answer carries a parent and backups for every
// stripe that has a free slot. A stripe no peer can feed yet has a zero
// parent: the origin's fallback covers it until a round places it.
//
// With Config.JoinWindow set, the joins arriving within the window share
// one round and Join blocks until it ran.
func (t *Tracker) Join(name string, req JoinRequest) (JoinResponse, error) {
	if t.cfg.JoinWindow <= 0 {
		resps, errs := t.JoinBatch(name, []JoinRequest{req})
		return resps[0], errs[0]
	}
	if err := req.validate(); err != nil {
		return JoinResponse{}, err
	}
	t.mu.Lock()
	now := t.cfg.Now()
	ch, err := t.channelLocked(name, now)
	if err != nil {
		t.mu.Unlock()
		return JoinResponse{}, err
	}
	if req.ID == ch.info.Origin.ID {
		t.events[eventRefused]++
		t.mu.Unlock()
		return JoinResponse{}, fmt.Errorf("%w: %s in %q", ErrIDConflict, req.ID, name)
	}
	ch.join(req, now, ExpiryIntervals*t.cfg.HeartbeatInterval)
	b, leader := ch.batch, false
	if b == nil {
		b, leader = make(chan struct{}), true
		ch.batch = b
	}
	t.mu.Unlock()
	if leader {
		// The first joiner waits out the window and runs the round for
		// everyone who joined meanwhile.
		time.Sleep(t.cfg.JoinWindow)
		t.mu.Lock()
		ch.batch = nil
		t.roundLocked(ch, t.cfg.Now())
		close(b)
		t.mu.Unlock()
	} else {
		<-b
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := ch.peers[req.ID]
	if m == nil { // it left (or expired) before the round
		return JoinResponse{}, fmt.Errorf("%w: %s in %q", ErrUnknownPeer, req.ID, name)
	}
	return t.joinedLocked(name, ch, m, req), nil
}

// joinedLocked counts a join and builds its answer.
func (t *Tracker) joinedLocked(name string, ch *channel, m *member, req JoinRequest) JoinResponse {
	t.events[eventJoin]++
	as := ch.assignments(m)
	t.log.Debug("peer joined", "channel", name, "peer", req.ID, "addr", req.Addr,
		"capacity", req.Capacity, "upload_bps", req.UploadBPS, "nat", req.NAT, "isp", req.ISP,
		"parent", as[0].Parent.ID)
	age := t.cfg.StartAge
	if ch.crowded() {
		age = t.cfg.CrowdStartAge
	}
	return JoinResponse{
		Channel:     ch.info,
		Parent:      as[0].Parent,
		Stripes:     as,
		HeartbeatMS: int(t.cfg.HeartbeatInterval / time.Millisecond),
		StartAgeMS:  max(age, 0).Milliseconds(),
	}
}

// JoinBatch joins several peers with one placement round (the simulator
// gathers the joins that reach the tracker close together). Each request
// gets its own answer or error.
func (t *Tracker) JoinBatch(name string, reqs []JoinRequest) ([]JoinResponse, []error) {
	resps := make([]JoinResponse, len(reqs))
	errs := make([]error, len(reqs))
	valid := false
	for i, req := range reqs {
		if errs[i] = req.validate(); errs[i] == nil {
			valid = true
		}
	}
	if !valid {
		return resps, errs
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	ch, err := t.channelLocked(name, now)
	if err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return resps, errs
	}
	joined := false
	for i, req := range reqs {
		if errs[i] != nil {
			continue
		}
		if req.ID == ch.info.Origin.ID {
			errs[i] = fmt.Errorf("%w: %s in %q", ErrIDConflict, req.ID, name)
			t.events[eventRefused]++
			continue
		}
		ch.join(req, now, ExpiryIntervals*t.cfg.HeartbeatInterval)
		joined = true
	}
	if joined {
		t.roundLocked(ch, now)
	}
	for i, req := range reqs {
		if errs[i] != nil {
			continue
		}
		m := ch.peers[req.ID]
		if m == nil { // the same ID twice in one batch: the later entry won
			errs[i] = fmt.Errorf("%w: %s in %q", ErrUnknownPeer, req.ID, name)
			continue
		}
		resps[i] = t.joinedLocked(name, ch, m, req)
	}
	return resps, errs
}

// Heartbeat records a peer's heartbeat (and its updated measurements)
// and returns its place in the stripe trees.
func (t *Tracker) Heartbeat(name string, req HeartbeatRequest) (HeartbeatResponse, error) {
	if err := req.validate(); err != nil {
		return HeartbeatResponse{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	ch, err := t.channelLocked(name, now)
	if err != nil {
		return HeartbeatResponse{}, err
	}
	m, ok := ch.peers[req.ID]
	if !ok {
		return HeartbeatResponse{}, fmt.Errorf("%w: %s in %q", ErrUnknownPeer, req.ID, name)
	}
	m.lastBeat = now
	m.stats = req.Stats
	changed := false
	if req.UploadBPS != 0 && req.UploadBPS != m.upload {
		m.upload, changed = req.UploadBPS, true
	}
	if req.NAT != "" && req.NAT != m.nat {
		m.nat, changed = req.NAT, true
	}
	if len(req.Candidates) > 0 {
		m.candidates = slices.Clone(req.Candidates)
	}
	if changed {
		ch.pending.Update = append(ch.pending.Update, ch.peerOf(m))
	}
	as := ch.assignments(m)
	resp := HeartbeatResponse{Parent: as[0].Parent, Stripes: as}
	if !req.OmitChildren {
		resp.Children = ch.children(m.id)
	}
	return resp, nil
}

// Leave removes a peer from a channel; leaving twice is not an error.
// Its children are re-placed in the next round.
func (t *Tracker) Leave(name string, req LeaveRequest) error {
	if err := req.validate(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	ch, err := t.channelLocked(name, now)
	if err != nil {
		return err
	}
	if m, ok := ch.peers[req.ID]; ok {
		ch.remove(m)
		t.events[eventLeave]++
		t.log.Debug("peer left", "channel", name, "peer", req.ID)
	}
	return nil
}

// ParentLost handles a peer's report that it lost a parent, with the
// backups it switched to on its own. A lost parent silent for more than a
// heartbeat interval is removed. The switches are kept when valid; a stripe the peer
// could not switch is placed afresh at once. It returns the peer's whole
// assignment.
func (t *Tracker) ParentLost(name string, req ParentLostRequest) (ParentLostResponse, error) {
	if err := req.validate(); err != nil {
		return ParentLostResponse{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	ch, err := t.channelLocked(name, now)
	if err != nil {
		return ParentLostResponse{}, err
	}
	t.events[eventParentLost]++
	m, ok := ch.peers[req.ID]
	if !ok {
		return ParentLostResponse{}, fmt.Errorf("%w: %s in %q", ErrUnknownPeer, req.ID, name)
	}
	lost := req.Parent
	if lost == ch.info.Origin.ID {
		lost = chandelier.Origin
	} else if p, ok := ch.peers[lost]; ok {
		// A refused or slow connection is no proof of death: only a
		// silent parent is removed.
		if now.Sub(p.lastBeat) > t.cfg.HeartbeatInterval {
			ch.remove(p)
			t.events[eventLostRemoved]++
			t.log.Info("silent parent removed on a child's report", "channel", name, "peer", req.Parent, "reporter", req.ID)
		}
	}
	ch.switched(m, req.Switched)
	if ch.dropParent(m, lost) > 0 {
		for s := range m.stripes {
			if m.stripes[s].Parent == "" {
				ch.pending.Switched = append(ch.pending.Switched, chandelier.Switch{Peer: m.id, Stripe: s})
			}
		}
		t.roundLocked(ch, now)
	}
	as := ch.assignments(m)
	t.log.Debug("parent lost", "channel", name, "peer", req.ID, "lost", req.Parent, "parent", as[0].Parent.ID)
	return ParentLostResponse{Parent: as[0].Parent, Stripes: as}, nil
}

// Tree returns a snapshot of a channel's stripe trees.
func (t *Tracker) Tree(name string) (TreeView, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, err := t.channelLocked(name, t.cfg.Now())
	if err != nil {
		return TreeView{}, err
	}
	return TreeView{
		Channel:        name,
		Origin:         ch.info.Origin,
		OriginCapacity: ch.originCap,
		Nodes:          ch.view(),
	}, nil
}
