package swarm

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// NodeID names a node: the hex fingerprint of its TLS key.
type NodeID string

// Errors.
var (
	ErrBadChunk     = errors.New("swarm: chunk failed verification")
	ErrWrongChannel = errors.New("swarm: chunk or hello for another channel")
	ErrFull         = errors.New("swarm: no capacity for another child")
	ErrCycle        = errors.New("swarm: the subscriber is this node's parent on a stripe it asks for")
	ErrConfig       = errors.New("swarm: invalid configuration")
)

// Config configures a Node. Zero durations take the defaults noted.
type Config struct {
	Channel string
	// PublicKey is the channel key chunks are verified with. Required
	// unless Verify is set.
	PublicKey ed25519.PublicKey
	// Verify, when not nil, replaces the Ed25519 check of a chunk's
	// signature against PublicKey: it gets a chunk's encoding and returns
	// an error when the chunk must be rejected. The simulator plugs in a
	// cheap check of the chunks its origin made; a real node leaves it
	// nil.
	Verify func(raw []byte) error
	// Parse, when not nil, replaces wire.ParseChunk in HandleChunk. It
	// must return what parsing raw would (or an error); the node keeps
	// the chunk and never modifies it, so one parse may be shared by
	// every node. The simulator hands its nodes the chunks its origin
	// made instead of a parse per node; a real node leaves it nil.
	Parse func(raw []byte) (*wire.Chunk, error)
	// NoMerge hands played slices to the driver as their chunks only
	// (Slice.Chunks), leaving Slice.Packets nil: for a driver that does
	// not feed a player. The node checks that the chunks merge either
	// way (a slice that does not is lost), so its decisions do not
	// change. The simulator, which checks what its nodes play against
	// the chunks its origin made, sets it; a real node leaves it false.
	NoMerge bool
	Stripes int // K, 1..wire.MaxStripes
	// Origin is the origin's node ID; chunks from it count as origin bytes.
	Origin NodeID
	// Source makes this node the channel's origin: it publishes chunks
	// and does not play out.
	Source bool
	// MaxChildren bounds the children pushed to (0 = none; a leaf).
	MaxChildren int
	// Capacity is how many stripe feeds the node's upload carries (0:
	// not known). While the tracker is away and the swarm has upload to
	// spare, the node takes no more (see SetEstimates).
	Capacity int
	// SliceDuration is the nominal slice length (default 100ms); used to
	// predict when slices not yet seen are due.
	SliceDuration time.Duration
	// Window is how long chunks are kept for children and fetches
	// (default 10s).
	Window time.Duration
	// PlayoutDelay is how far behind its start slice's arrival playout
	// runs (default 300ms): a switch costs the new parent little upload; the node fetches what it misses at the margin.
	PlayoutDelay time.Duration
	// StartMargin, when positive, makes a node start at once: it plays
	// its start slice (the first keyframe slice it holds complete) as
	// soon as it is complete when it holds this much of the stream
	// beyond it, else that much later, and playout then converges to
	// PlayoutDelay behind the slices' arrival, up to CatchUp slower or
	// faster than the stream (see catchUp). 0 (the default): the start
	// slice plays PlayoutDelay after its first chunk arrived, and
	// playout only ever catches up.
	StartMargin time.Duration
	// StartHeldRun makes StartMargin count only the slices after the
	// start slice held complete and without a gap, not any newer slice
	// held. A node whose parents send live chunks ahead of a new child's
	// backlog (transport.DriverConfig.LiveFirst) needs it: the live
	// slices come before the rest of the start's group, and a start on
	// them played the start slice and then stalled on, or fetched from
	// the origin, the slices after it (simulator with a 2 s parent
	// timeout, 2,000 viewers x 60 s, seed 1, live first: stalls 437 ->
	// 72, continuity 0.9996 -> 0.9999, startup p95 1,857 -> 1,982 ms).
	// Without live first it cost startup (1,953 -> 2,110 ms) for fewer
	// stalls (506 -> 93), so the real peer, without live first, leaves it
	// off; the simulator sets it with --live-first.
	StartHeldRun bool
	// StartFetch: before playout starts, a chunk of the start picture
	// (the newest keyframe slice held and the slices that continue it)
	// still missing this long after the keyframe slice's first chunk
	// arrived is fetched from the origin (default ParentTimeout); the
	// rest of its group of pictures waits ParentTimeout for the
	// parents. A new node's parents are often new themselves: a short
	// StartFetch does not wait for a slow parent's copy of the picture.
	// Measured in the simulator (1,000 peers joining in 10 s, 20 s, seed
	// 1): 200 ms cut startup p95 2,020 → 1,822 ms, but the rest of the
	// older group then came late (lag p95 1,805 → 3,096 ms, continuity
	// 0.994 → 0.989). With today's starts (chandelier-steady-10k.yaml,
	// 60 s), 300 ms gave 2,000 viewers startup p95 1,292/1,249 →
	// 1,278/1,222 ms (seeds 1/2; lag and continuity unchanged), but
	// 10,000 viewers (seed 1) only 1,565 → 1,549 ms for stalls 2,731 →
	// 2,982 (continuity 0.9995 → 0.9994; the flash crowd's origin
	// refuses most start fetches), so viewers keep the default.
	StartFetch time.Duration
	// StartPull: before playout starts, a chunk of the start picture (the
	// newest keyframe slice held and its continuations) still missing
	// this long after the picture's first chunk arrived is pulled from a
	// partner whose map shows it; at once when its stripe has no parent
	// or the parent went past it (default DefaultStartPull; negative:
	// no pulls before playout starts). See scanStartPulls.
	StartPull time.Duration
	// FetchMargin: a chunk still missing this long before its slice is
	// due is fetched from the origin (default 400ms).
	FetchMargin time.Duration
	// PushedMargin replaces FetchMargin (for the origin and for pulls
	// from partners) for a chunk its stripe's parent is evidently still
	// pushing: the parent pushed a chunk of that stripe within the last
	// two slice durations and none at or after it (see pushing). Such a
	// chunk is mostly queued at the parent and comes moments later, so a
	// fetch at FetchMargin mostly answered a chunk the node had by then,
	// and took the origin's fetch budget from the viewers that needed
	// it. When the stripe stops flowing, the chunk is asked for at once
	// (default DefaultPushedMargin; negative or above FetchMargin:
	// FetchMargin).
	PushedMargin time.Duration
	// ParentTimeout: a parent that is up (ParentUp, or a chunk from it)
	// and delivered no chunk at all, on any of its stripes, for this long
	// while the stream evidently goes on is lost (default 600ms). While a
	// parent is silent for more than half of it, the node fetches one
	// chunk of its stripes per half ParentTimeout and forwards it (see
	// the package doc: no lost-parent cascade). With Alives on
	// (AliveInterval), one that sent nothing at all, not even an Alive,
	// for four Alive intervals is lost sooner (see silenceLimit).
	ParentTimeout time.Duration
	// ParentConnectTimeout: a parent that is not up this long after
	// SetParent named it is lost (default 3s). It is also the grace a
	// node that has received nothing waits, on a stripe without a
	// parent, before it asks the origin for its newest keyframe slice.
	ParentConnectTimeout time.Duration
	// StallLimit: how long playout waits for a missing slice before
	// skipping it (default 2s).
	StallLimit time.Duration
	// FetchRetry: a fetch not answered with the chunk is asked again
	// after this long (default 200ms).
	FetchRetry time.Duration
	// MaxFetches bounds the fetches outstanding at once (default 64).
	MaxFetches int
	// CatchUp: while playout runs later than the recently played slices
	// needed (each completed more than PlayoutDelay before it was due),
	// it plays up to this fraction faster than the stream until it is
	// back to PlayoutDelay behind the slowest recent arrival (default
	// 0.25; negative: never). Stalls and a start on an old group of
	// pictures so do not leave a viewer behind live for good.
	CatchUp float64
	// KeyframeWait: a new child that holds nothing is sent only live
	// chunks, and waits for the next keyframe to start, when that
	// keyframe is expected within this (judged from the interval between
	// the two newest keyframes held) and the stream flows; otherwise it
	// is sent the group of pictures from the newest keyframe. 0 (the
	// default) always sends the group: its parents may judge differently
	// (they hold different slices), and a child whose parents disagree
	// completes its start keyframe only by fetching it from the origin;
	// catch-up (CatchUp) takes back the group's age instead.
	KeyframeWait time.Duration
	// StartAge: a node that holds nothing yet asks each new parent
	// (wire.Hello.Start) for the backlog from the first keyframe
	// captured at most StartAge before its first hello — the same for
	// every stripe's parent, so all
	// stripes start at one keyframe, where each parent judging by what
	// it holds itself (KeyframeWait) sends some stripes an older
	// keyframe's group and others only live chunks, and the node then
	// waits for the next keyframe. A parent that does not hold that
	// keyframe yet sends live chunks, which bring it (see HelloStart
	// for how long the start is kept). 0 (the default): hellos carry no
	// start and parents use KeyframeWait.
	StartAge time.Duration
	// MaxBacklog bounds the backlog a child that asks from a slice
	// (wire.Hello.From) is sent: nothing captured more than this before
	// the newest slice held (default 1s). Older chunks would reach the
	// child too late and hold up the live ones behind them; it fetches
	// what it misses at the margin.
	MaxBacklog time.Duration
	// LagSlices: a parent (other than the origin) that delivers its
	// chunks of this many slices in a row only after the node fetched
	// them from the origin — they were still missing at their deadline
	// minus FetchMargin — has fallen behind and is lost, like a failed
	// one, so the node switches to a backup. A chunk in time resets the
	// count. Keep it well above a parent's own repair time (ParentTimeout
	// and a switch), or a parent's repair makes its children leave it. 0
	// (the default) never judges a parent by its lag.
	LagSlices int
	// PullMargin: a chunk of a stripe whose new parent is still
	// connecting, missing this long before its slice is due, is pulled
	// from a partner that holds it (a stripe without a parent pulls at
	// once; see SetPartners; default DefaultPullMargin). Keep it above
	// FetchMargin: the origin is asked FetchMargin before the slice is
	// due.
	PullMargin time.Duration
	// PullTimeout: a pull not answered this long counts against its
	// partner and is asked elsewhere, or of the origin (default
	// DefaultPullTimeout); maxPartnerMisses in a row drop the partner.
	PullTimeout time.Duration
	// MapInterval: the node asks its partners for their buffer maps at
	// most once per MapInterval, when it has a chunk to pull that their
	// maps do not show (default DefaultMapInterval; see mesh.go).
	MapInterval time.Duration
	// MaxWatchers bounds the nodes that may make this node their partner
	// (default DefaultMaxWatchers).
	MaxWatchers int
	// AliveInterval: a child none of whose stripes had a chunk pushed
	// for this long is sent an Alive, so that it can tell a parent
	// starved by its own upstream from a dead one (default
	// DefaultAliveInterval; negative: never). Keep it well below the
	// children's ParentTimeout.
	AliveInterval time.Duration
}

// Defaults for the zero fields of Config.
const (
	DefaultSliceDuration = 100 * time.Millisecond
	DefaultWindow        = 10 * time.Second
	DefaultPlayoutDelay  = time.Second
	DefaultFetchMargin   = 400 * time.Millisecond
	DefaultPushedMargin  = 200 * time.Millisecond
	DefaultParentTimeout = 600 * time.Millisecond
	// DefaultParentConnectTimeout covers a dial: hole punching through
	// the tracker, the QUIC handshake and the hello.
	DefaultParentConnectTimeout = 3 * time.Second
	DefaultStallLimit           = 2 * time.Second
	DefaultFetchRetry           = 200 * time.Millisecond
	DefaultMaxFetches           = 64
	DefaultCatchUp              = 0.25
	DefaultMaxBacklog           = time.Second
	// DefaultStartPull: a chunk of the start picture comes a slice or
	// so after the picture's first (2,000 viewers joining in 10 s: the
	// median 105 ms, p90 150 ms).
	DefaultStartPull = 200 * time.Millisecond
)

// minSliceDuration keeps slice-count arithmetic (SliceDuration divided
// into the window) bounded.
const minSliceDuration = time.Millisecond

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.SliceDuration, DefaultSliceDuration)
	setDur(&c.Window, DefaultWindow)
	setDur(&c.PlayoutDelay, DefaultPlayoutDelay)
	setDur(&c.FetchMargin, DefaultFetchMargin)
	setDur(&c.PushedMargin, DefaultPushedMargin)
	if c.PushedMargin < 0 || c.PushedMargin > c.FetchMargin {
		c.PushedMargin = c.FetchMargin
	}
	setDur(&c.ParentTimeout, DefaultParentTimeout)
	setDur(&c.ParentConnectTimeout, DefaultParentConnectTimeout)
	setDur(&c.StallLimit, DefaultStallLimit)
	setDur(&c.FetchRetry, DefaultFetchRetry)
	setDur(&c.MaxBacklog, DefaultMaxBacklog)
	setDur(&c.StartFetch, c.ParentTimeout)
	setDur(&c.StartPull, DefaultStartPull)
	setDur(&c.PullMargin, DefaultPullMargin)
	setDur(&c.MapInterval, DefaultMapInterval)
	setDur(&c.PullTimeout, DefaultPullTimeout)
	setDur(&c.AliveInterval, DefaultAliveInterval)
	if c.MaxWatchers == 0 {
		c.MaxWatchers = DefaultMaxWatchers
	}
	if c.CatchUp == 0 {
		c.CatchUp = DefaultCatchUp
	}
	if c.MaxFetches == 0 {
		c.MaxFetches = DefaultMaxFetches
	}
	return c
}

// validate reports what is wrong with a Config that has its defaults
// applied.
func (c *Config) validate() error {
	switch {
	case c.Channel == "" || len(c.Channel) > wire.MaxChannelLen:
		return fmt.Errorf("%w: channel name must be 1..%d bytes, got %d", ErrConfig, wire.MaxChannelLen, len(c.Channel))
	case c.Verify == nil && len(c.PublicKey) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: channel public key must be %d bytes, got %d", ErrConfig, ed25519.PublicKeySize, len(c.PublicKey))
	case c.Stripes < 1 || c.Stripes > wire.MaxStripes:
		return fmt.Errorf("%w: stripes must be 1..%d, got %d", ErrConfig, wire.MaxStripes, c.Stripes)
	case c.MaxChildren < 0:
		return fmt.Errorf("%w: negative MaxChildren %d", ErrConfig, c.MaxChildren)
	case c.Capacity < 0:
		return fmt.Errorf("%w: negative Capacity %d", ErrConfig, c.Capacity)
	case c.CatchUp > 1 || c.CatchUp != c.CatchUp:
		return fmt.Errorf("%w: CatchUp %v is above 1 (twice the stream's speed)", ErrConfig, c.CatchUp)
	case c.LagSlices < 0:
		return fmt.Errorf("%w: negative LagSlices %d", ErrConfig, c.LagSlices)
	case c.MaxWatchers < 0:
		return fmt.Errorf("%w: negative MaxWatchers %d", ErrConfig, c.MaxWatchers)
	case c.MaxFetches < 0:
		return fmt.Errorf("%w: negative MaxFetches %d", ErrConfig, c.MaxFetches)
	case c.SliceDuration < minSliceDuration:
		return fmt.Errorf("%w: SliceDuration %v is below %v", ErrConfig, c.SliceDuration, minSliceDuration)
	case c.Window < c.SliceDuration:
		return fmt.Errorf("%w: Window %v is shorter than a slice (%v)", ErrConfig, c.Window, c.SliceDuration)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"PlayoutDelay", c.PlayoutDelay},
		{"FetchMargin", c.FetchMargin},
		{"ParentTimeout", c.ParentTimeout},
		{"ParentConnectTimeout", c.ParentConnectTimeout},
		{"StallLimit", c.StallLimit},
		{"FetchRetry", c.FetchRetry},
		{"MaxBacklog", c.MaxBacklog},
		{"StartMargin", c.StartMargin},
		{"StartFetch", c.StartFetch},
		{"StartAge", c.StartAge},
		{"PullMargin", c.PullMargin},
		{"MapInterval", c.MapInterval},
		{"PullTimeout", c.PullTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("%w: negative %s %v", ErrConfig, d.name, d.v)
		}
	}
	return nil
}

// Send is one chunk to push to a child.
type Send struct {
	To    NodeID
	ID    wire.ID
	Chunk []byte // encoded, signed; shared, never modified
	// Backlog marks a chunk of a new child's backlog (see AddChild; a
	// renewed subscription's catch-up is not marked): the driver sends
	// it after the live chunks queued for any child, so that a new
	// child's backlog delays neither the other children's live chunks
	// nor its own.
	Backlog bool
}

// Slice is one time slice handed to the player, in order.
type Slice struct {
	Seq      uint64
	Capture  time.Time // origin's capture time of the slice
	Duration time.Duration
	Keyframe bool
	Params   []wire.Param
	Packets  []wire.Packet // merged from all stripes, in original order (nil with Config.NoMerge)
	// Chunks are the slice's chunks by stripe (wire.AppendMerge merges
	// them into Packets). Like Packets, they may not be used after the
	// Ready that holds them is recycled.
	Chunks []*wire.Chunk
	// PlayAt is when the slice was due — for a slice that completed
	// during a stall, when it completed — on the node's playout clock
	// (capture + skew + PlayoutDelay). The driver plays it now; PlayAt
	// of consecutive slices advances with their capture times, so it can
	// pace the packets.
	PlayAt time.Time
	// Done is when the node held the slice complete (its last chunk
	// arrived): Done - Capture is the slice's arrival delay, PlayAt -
	// Done the playout margin it had.
	Done time.Time
	// Discontinuity is set when slices before this one were skipped.
	Discontinuity bool
}

// Lost reports a parent found failed on a stripe.
type Lost struct {
	Parent NodeID
	Stripe int
}

// Ready holds the outputs accumulated since the last call to Node.Ready.
type Ready struct {
	Sends   []Send
	Fetches []wire.ID // ask the origin for these
	// FetchDue[i] is when Fetches[i]'s slice is due to play, as the
	// playout clock predicts it (zero: not known yet, a start fetch):
	// the deadline a fetch names to the origin (wire.Request.Due).
	FetchDue []time.Time
	Play     []Slice
	CutOff   []NodeID // close these nodes' connections: they misbehaved
	Lost     []Lost   // report to the tracker and find a new parent
	// The partner mesh and parent liveness (see SetPartners).
	Pulls        []Pull      // ask these partners for these chunks
	Maps         []MapSend   // send these buffer maps to watchers
	MapRequests  []NodeID    // ask these partners for their buffer maps
	Alives       []AliveSend // send these Alives to children
	DropPartners []NodeID    // partners given up on: close their streams, name others

	// packets is storage for the next played slice's packets (a Slice's
	// Packets handed back by Recycle), empty and cleared. It travels
	// with the Ready so that Recycle can pass it on (see there).
	packets []wire.Packet
	// chunks is storage for played slices' Chunks, likewise.
	chunks []*wire.Chunk
}

// Stats are a node's counters since it started.
type Stats struct {
	PlayedSlices   uint64 // played complete and on time
	LateSlices     uint64 // played complete after a stall
	LostSlices     uint64 // skipped
	Stalls         uint64
	StallTime      time.Duration
	PlayerBytes    uint64 // RTP bytes played out
	P2PBytesIn     uint64 // chunk bytes received from other peers (new chunks)
	OriginBytesIn  uint64 // chunk bytes received from the origin (push or fetch)
	BytesForwarded uint64 // chunk bytes handed to Sends
	BadChunks      uint64
	Duplicates     uint64
	Fetches        uint64
	Repairs        uint64
	LaggingParents uint64 // parents lost for falling behind (Config.LagSlices)
	// Resyncs counts playout clock restarts after gaps no node can fill
	// any more (older than the Window behind the newest capture).
	Resyncs uint64
	// The partner mesh and parent liveness.
	Pulls           uint64 // chunks asked of partners
	Pulled          uint64 // chunks new to the node that partners sent in answer to pulls
	PullMisses      uint64 // pulls answered Missing or not in time
	PartnersDropped uint64 // partners given up on (silent, or bad maps or chunks)
	MapsSent        uint64
	MapRequests     uint64 // buffer maps asked of partners
	AlivesSent      uint64
	AlivesIn        uint64 // Alives from parents
	// StartupDelay is first-chunk-received to first-slice-played (0 before).
	StartupDelay time.Duration
	// RepairTimes are recent parent-lost → next-chunk-of-that-stripe
	// durations (bounded, oldest dropped).
	RepairTimes []time.Duration
}
