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
)

// Defaults and bounds of [Config].
const (
	DefaultHeartbeatInterval = time.Second
	MinHeartbeatInterval     = 10 * time.Millisecond
	MaxHeartbeatInterval     = time.Minute
	// ExpiryIntervals is how many heartbeat intervals a peer may stay
	// silent before it is removed.
	ExpiryIntervals = 3
)

// Config configures a [Tracker]. The zero value is usable.
type Config struct {
	// HeartbeatInterval is how often peers must heartbeat (told to them in
	// JoinResponse). A peer silent for ExpiryIntervals intervals is
	// removed. Default DefaultHeartbeatInterval; must lie within
	// [MinHeartbeatInterval, MaxHeartbeatInterval].
	HeartbeatInterval time.Duration
	// Logger receives the tracker's logs. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now; tests inject their own.
	Now func() time.Time
	// Placer decides where peers attach. Nil means [Shallowest].
	Placer Placer
}

func (c *Config) setDefaults() {
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Placer == nil {
		c.Placer = Shallowest{}
	}
}

func (c *Config) validate() error {
	if c.HeartbeatInterval < MinHeartbeatInterval || c.HeartbeatInterval > MaxHeartbeatInterval {
		return fmt.Errorf("tracker: heartbeat interval %v is out of range [%v, %v]",
			c.HeartbeatInterval, MinHeartbeatInterval, MaxHeartbeatInterval)
	}
	return nil
}

// Tracker is the tracker service: channels and their trees. It is safe
// for concurrent use.
type Tracker struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler

	mu       sync.Mutex
	channels map[string]*channel // guarded by mu
	events   map[string]uint64   // event counts for metrics; guarded by mu
}

// channel is one registered channel. Guarded by Tracker.mu.
type channel struct {
	info ChannelInfo
	key  []byte // decoded public key
	tree *tree
}

// stripes is the assignment of a peer whose parent p feeds every stripe.
func (ch *channel) stripes(p NodeInfo) []StripeAssignment {
	as := make([]StripeAssignment, ch.info.Stripes)
	for i := range as {
		as[i] = StripeAssignment{Parent: p, Backups: []NodeInfo{}}
	}
	return as
}

// New returns a Tracker for cfg, after filling in defaults.
func New(cfg Config) (*Tracker, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Tracker{cfg: cfg, log: cfg.Logger, channels: map[string]*channel{}, events: map[string]uint64{}}
	t.handler = t.newHandler()
	return t, nil
}

// Handler returns the HTTP API handler.
func (t *Tracker) Handler() http.Handler { return t.handler }

// Run sweeps out silent peers every half heartbeat interval until ctx is
// done, then returns nil. Run it once, in a goroutine the caller waits for.
func (t *Tracker) Run(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.HeartbeatInterval / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			t.sweep()
		}
	}
}

// sweep expires silent peers in every channel.
func (t *Tracker) sweep() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	for _, name := range t.channelNamesLocked() {
		t.expireLocked(name, t.channels[name], now)
	}
}

func (t *Tracker) expireLocked(name string, ch *channel, now time.Time) {
	for _, id := range ch.tree.expire(now, ExpiryIntervals*t.cfg.HeartbeatInterval) {
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
		t.channels[name] = &channel{
			info: req.Channel,
			key:  key,
			tree: newTree(req.Channel.Origin, req.Capacity, t.cfg.Placer),
		}
		t.log.Info("channel registered", "channel", name, "origin", req.Channel.Origin.ID,
			"addr", req.Channel.Origin.Addr, "capacity", req.Capacity)
		return true, nil
	}
	if !bytes.Equal(ch.key, key) {
		return false, fmt.Errorf("%w: %q", ErrKeyMismatch, name)
	}
	if _, taken := ch.tree.nodes[req.Channel.Origin.ID]; taken {
		return false, fmt.Errorf("%w: %s is a peer of %q", ErrIDConflict, req.Channel.Origin.ID, name)
	}
	t.expireLocked(name, ch, now)
	ch.info = req.Channel
	ch.tree.setOrigin(req.Channel.Origin, req.Capacity, now)
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
		list.Channels = append(list.Channels, ChannelSummary{Name: name, Viewers: ch.tree.peers()})
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

// Join places a peer in a channel's tree.
func (t *Tracker) Join(name string, req JoinRequest) (JoinResponse, error) {
	if err := req.validate(); err != nil {
		return JoinResponse{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	ch, err := t.channelLocked(name, now)
	if err != nil {
		return JoinResponse{}, err
	}
	parent, err := ch.tree.join(req.ID, req.Addr, req.Capacity, now)
	if err != nil {
		t.events[eventRefused]++
		t.log.Warn("join refused", "channel", name, "peer", req.ID, "err", err)
		return JoinResponse{}, err
	}
	t.events[eventJoin]++
	p := ch.tree.info(parent)
	t.log.Info("peer joined", "channel", name, "peer", req.ID, "addr", req.Addr,
		"capacity", req.Capacity, "parent", p.ID)
	return JoinResponse{
		Channel:     ch.info,
		Parent:      p,
		Stripes:     ch.stripes(p),
		HeartbeatMS: int(t.cfg.HeartbeatInterval / time.Millisecond),
	}, nil
}

// Heartbeat records a peer's heartbeat and returns its place in the tree.
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
	parent, kids, err := ch.tree.heartbeat(req.ID, req.Stats, now)
	if err != nil {
		return HeartbeatResponse{}, fmt.Errorf("%w: %s in %q", err, req.ID, name)
	}
	p := ch.tree.info(parent)
	resp := HeartbeatResponse{Parent: p, Stripes: ch.stripes(p), Children: make([]NodeInfo, 0, len(kids))}
	for _, k := range kids {
		resp.Children = append(resp.Children, ch.tree.info(k))
	}
	return resp, nil
}

// Leave removes a peer from a channel; leaving twice is not an error.
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
	if ch.tree.leave(req.ID, now) {
		t.events[eventLeave]++
		t.log.Info("peer left", "channel", name, "peer", req.ID)
	}
	return nil
}

// ParentLost handles a peer's report that it lost its parent and returns
// its new parent.
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
	parent, removed, err := ch.tree.parentLost(req.ID, req.Parent, now, t.cfg.HeartbeatInterval)
	t.events[eventParentLost]++
	if removed {
		t.events[eventLostRemoved]++
		t.log.Info("silent parent removed on a child's report", "channel", name, "peer", req.Parent, "reporter", req.ID)
	}
	if err != nil {
		if err == ErrUnknownPeer {
			err = fmt.Errorf("%w: %s in %q", err, req.ID, name)
		}
		t.log.Warn("parent lost, no new parent", "channel", name, "peer", req.ID, "lost", req.Parent, "err", err)
		return ParentLostResponse{}, err
	}
	p := ch.tree.info(parent)
	t.log.Info("parent lost", "channel", name, "peer", req.ID, "lost", req.Parent, "parent", p.ID)
	return ParentLostResponse{Parent: p, Stripes: ch.stripes(p)}, nil
}

// Tree returns a snapshot of a channel's tree.
func (t *Tracker) Tree(name string) (TreeView, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, err := t.channelLocked(name, t.cfg.Now())
	if err != nil {
		return TreeView{}, err
	}
	r := ch.tree.root()
	return TreeView{
		Channel:        name,
		Origin:         NodeInfo{ID: r.id, Addr: r.addr},
		OriginCapacity: r.capacity,
		Nodes:          ch.tree.view(),
	}, nil
}
