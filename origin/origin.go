package origin

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/internal/wire"
	"github.com/swarmtv/swarmtv/tracker"
)

// Config configures an Origin. Zero values take the defaults noted.
type Config struct {
	Channel string // required
	// Source is the live stream (required).
	Source Source
	// Tracker is the tracker's base URL, e.g. http://127.0.0.1:7000
	// (required).
	Tracker string
	// Listen is the UDP address of the origin's QUIC socket (default
	// "127.0.0.1:0").
	Listen string
	// Advertise is the address peers dial, registered with the tracker
	// (default: the bound address, with 127.0.0.1 for an unspecified IP).
	Advertise string
	// Key signs the channel's chunks (required).
	Key ed25519.PrivateKey
	// Stripes is K (default 1).
	Stripes int
	// SliceDuration is the target slice length (default 100ms).
	SliceDuration time.Duration
	// SliceCap closes a slice over SliceCap × the mean slice size early,
	// its rest continuing at the same capture (ChunkerConfig.SliceCap):
	// 0 selects DefaultSliceCap, negative never.
	SliceCap float64
	// Capacity is how many peers the origin feeds directly (default 4).
	Capacity int
	// Window is how long chunks are kept for fallback (default 10s).
	Window time.Duration
	// FetchKbps, when positive, is the upload (kbit/s) fallback fetches
	// are served with, kept apart from the pushes to the children: the
	// answers wait their turn nearest deadline first (a fetch names when
	// its slice is due), a fetch that cannot leave before its deadline is
	// answered "missing" at once, one without a deadline when it would
	// wait more than transport.FetchBacklog, and a fetch its asker
	// cancels while it waits is dropped (the simulator's origin does the
	// same). 0: unlimited.
	FetchKbps int64
	// Logger receives the origin's logs (default: discard).
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if err := validChannel(c.Channel); err != nil {
		return err
	}
	if c.Source == nil {
		return errors.New("origin: no source: give --source testclip, --source rtsp://… or --listen ADDR")
	}
	if c.Tracker == "" {
		return errors.New("origin: no tracker URL: give --tracker http://HOST:PORT")
	}
	if len(c.Key) != ed25519.PrivateKeySize {
		return errors.New("origin: no channel key")
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.Stripes == 0 {
		c.Stripes = 1
	}
	if c.Stripes < 1 || c.Stripes > wire.MaxStripes {
		return fmt.Errorf("origin: stripes must be 1..%d, not %d", wire.MaxStripes, c.Stripes)
	}
	if c.SliceDuration == 0 {
		c.SliceDuration = 100 * time.Millisecond
	}
	if c.SliceDuration < 10*time.Millisecond || c.SliceDuration > 10*time.Second {
		return fmt.Errorf("origin: slice duration must be 10ms..10s, not %v", c.SliceDuration)
	}
	if c.SliceCap == 0 {
		c.SliceCap = DefaultSliceCap
	}
	if c.SliceCap > MaxSliceCap || c.SliceCap > 0 && c.SliceCap < 0.25 || math.IsNaN(c.SliceCap) {
		return fmt.Errorf("origin: slice cap must be 0.25..%d times the mean slice (negative: none), not %v", MaxSliceCap, c.SliceCap)
	}
	if c.Capacity == 0 {
		c.Capacity = 4
	}
	if c.Capacity < 1 || c.Capacity > tracker.MaxOriginCapacity {
		return fmt.Errorf("origin: capacity must be 1..%d, not %d", tracker.MaxOriginCapacity, c.Capacity)
	}
	if c.Window == 0 {
		c.Window = 10 * time.Second
	}
	if c.FetchKbps < 0 || c.FetchKbps > tracker.MaxUploadBPS/1000 {
		return fmt.Errorf("origin: fetch budget must be 0..%d kbit/s, not %d", int64(tracker.MaxUploadBPS/1000), c.FetchKbps)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func validChannel(name string) error {
	if len(name) == 0 || len(name) > wire.MaxChannelLen {
		return ErrBadChannel
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return ErrBadChannel
		}
	}
	return nil
}

// Origin is a channel's origin: it ingests the source, cuts and signs
// chunks, registers the channel with the tracker, pushes chunks to the
// peers placed under it and serves fallback fetches.
type Origin struct {
	cfg      Config
	log      *slog.Logger
	id       *transport.Identity
	ep       *transport.Endpoint
	driver   *transport.Driver
	node     *swarm.Node
	tracker  *tracker.Client
	register chan tracker.RegisterRequest

	mu         sync.Mutex
	sdp        []byte // guarded by mu; nil until the source described itself
	chunks     uint64 // guarded by mu: chunks made
	chunkBytes uint64 // guarded by mu: bytes of the signed chunks made
	dropped    int    // guarded by mu: packets the chunker dropped
	capped     int    // guarded by mu: slices the chunker's size cap closed
}

// New binds the origin's socket. Run starts it.
func New(cfg Config) (*Origin, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	id, err := transport.NewIdentity()
	if err != nil {
		return nil, err
	}
	ep, err := transport.Listen(cfg.Listen, id, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("origin: listening on %s: %w", cfg.Listen, err)
	}
	o := &Origin{
		cfg:      cfg,
		log:      cfg.Logger,
		id:       id,
		ep:       ep,
		tracker:  &tracker.Client{BaseURL: cfg.Tracker},
		register: make(chan tracker.RegisterRequest, 1),
	}
	node, err := swarm.New(swarm.Config{
		Channel:       cfg.Channel,
		PublicKey:     cfg.Key.Public().(ed25519.PublicKey),
		Stripes:       cfg.Stripes,
		Origin:        id.ID(),
		Source:        true,
		MaxChildren:   cfg.Capacity * cfg.Stripes, // the tracker deals Capacity × Stripes stripe feeds
		SliceDuration: cfg.SliceDuration,
		Window:        cfg.Window,
	})
	if err != nil {
		ep.Close()
		return nil, err
	}
	o.node = node
	o.driver, err = transport.NewDriver(transport.DriverConfig{
		Node:     node,
		Endpoint: ep,
		Channel:  cfg.Channel,
		Logger:   cfg.Logger.With("role", "origin"),
		FetchBPS: cfg.FetchKbps * 1000,
	})
	if err != nil {
		ep.Close()
		return nil, err
	}
	return o, nil
}

// ID is the origin's node ID.
func (o *Origin) ID() swarm.NodeID { return o.id.ID() }

// Addr is the address peers dial.
func (o *Origin) Addr() string {
	return o.ep.Advertised(o.cfg.Advertise)
}

// Run ingests, publishes and serves until ctx ends or the source fails.
// It closes the origin's socket before returning.
func (o *Origin) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer o.ep.Close()

	driverErr := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		driverErr <- o.driver.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		o.trackerLoop(ctx)
	}()

	var chunker *Chunker
	onDesc := func(desc *description.Session) error {
		sdp, err := desc.Marshal()
		if err != nil {
			return fmt.Errorf("origin: describing the stream: %w", err)
		}
		c, err := NewChunker(ChunkerConfig{Channel: o.cfg.Channel, Stripes: o.cfg.Stripes, SliceDuration: o.cfg.SliceDuration, SliceCap: o.cfg.SliceCap}, desc)
		if err != nil {
			return err
		}
		chunker = c
		o.mu.Lock()
		o.sdp = sdp
		o.mu.Unlock()
		pub := o.cfg.Key.Public().(ed25519.PublicKey)
		req := tracker.RegisterRequest{
			Channel: tracker.ChannelInfo{
				Name:      o.cfg.Channel,
				SDP:       string(sdp),
				PublicKey: base64.StdEncoding.EncodeToString(pub),
				Origin:    tracker.NodeInfo{ID: string(o.ID()), Addr: o.Addr()},
				Stripes:   o.cfg.Stripes,
				SliceMS:   int(o.cfg.SliceDuration / time.Millisecond),
			},
			Capacity:    o.cfg.Capacity,
			HeartbeatMS: int(originHeartbeat / time.Millisecond),
		}
		if h, ok := o.cfg.Source.(RateHinter); ok {
			req.Channel.StreamBPS = h.StreamBPS()
		}
		select {
		case <-o.register:
		default:
		}
		o.register <- req
		o.log.Info("stream described", "channel", o.cfg.Channel, "medias", len(desc.Medias))
		return nil
	}
	dropped, capped := 0, 0
	emit := func(p Packet) {
		for _, c := range chunker.Push(p) {
			o.publish(c)
		}
		if n := chunker.Dropped(); n != dropped {
			dropped = n
			o.mu.Lock()
			o.dropped = n
			o.mu.Unlock()
		}
		if n := chunker.Capped(); n != capped {
			capped = n
			o.mu.Lock()
			o.capped = n
			o.mu.Unlock()
		}
	}
	srcErr := o.cfg.Source.Run(ctx, onDesc, emit)
	if chunker != nil {
		for _, c := range chunker.Flush() {
			o.publish(c)
		}
	}
	cancel()
	o.driver.Close()
	if err := <-driverErr; err != nil && !errors.Is(err, context.Canceled) {
		o.log.Warn("driver stopped", "err", err)
	}
	if srcErr != nil && !errors.Is(srcErr, context.Canceled) {
		return srcErr
	}
	return nil
}

func (o *Origin) publish(c *wire.Chunk) {
	raw, err := c.Sign(nil, o.cfg.Key)
	if err != nil {
		o.log.Error("signing a chunk", "seq", c.Seq, "err", err)
		return
	}
	o.mu.Lock()
	o.chunks++
	o.chunkBytes += uint64(len(raw))
	o.mu.Unlock()
	o.driver.Publish(c, raw)
}

// Stats are the origin's counters.
type Stats struct {
	Chunks uint64
	// EgressBytes is every chunk byte sent: pushed to children and served
	// to fallback fetches.
	EgressBytes uint64
	PushBytes   uint64
	FetchBytes  uint64
	// FetchesRefused counts fetches answered "missing" because the
	// fetch budget (Config.FetchKbps) was booked.
	FetchesRefused uint64
	// FetchesCanceled counts fetches their askers canceled while they
	// waited in the fetch budget (they got the chunk from a peer first).
	FetchesCanceled uint64
	Children        int
	// CappedSlices counts the slices the chunker's size cap closed
	// early (Config.SliceCap), each continued by the next.
	CappedSlices uint64
}

// Stats returns the origin's counters.
func (o *Origin) Stats() Stats {
	ds := o.driver.Stats()
	fetch := o.driver.FetchBytesServed()
	o.mu.Lock()
	defer o.mu.Unlock()
	return Stats{
		Chunks:          o.chunks,
		PushBytes:       ds.BytesForwarded,
		FetchBytes:      fetch,
		EgressBytes:     ds.BytesForwarded + fetch,
		FetchesRefused:  o.driver.FetchesRefused(),
		FetchesCanceled: o.driver.FetchesCanceled(),
		Children:        len(o.driver.Children()),
		CappedSlices:    uint64(o.capped),
	}
}

// SDP returns the stream's SDP once the source has described it.
func (o *Origin) SDP() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sdp
}
