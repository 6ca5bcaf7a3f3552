package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/tracker"
)

// ErrConfig marks an unusable configuration or scenario file.
var ErrConfig = errors.New("sim: invalid configuration")

// Config is one simulation run. Zero values are not defaults: start from
// DefaultConfig (or a scenario file, which starts from it) and change
// fields. Every field is also an option (see Options) so that a run can be
// replayed from its command line.
type Config struct {
	Scenario   string        // name written to the report
	Peers      int           // viewers at the start (and the churn population)
	Duration   time.Duration // simulated time
	Seed       uint64        // the one seed every random stream derives from
	StreamKbps float64       // stream bitrate
	Slice      time.Duration // slice duration
	Stripes    int           // K
	Keyframe   time.Duration // keyframe interval

	UploadRatio float64 // mean peer upload ÷ stream rate (log-normal spread)
	UploadSigma float64 // log-normal sigma of the upload spread
	ISPs        int     // ISPs peers are spread over
	ISPSkew     float64 // Zipf exponent of the ISP sizes (0: equal)
	Regions     int     // regions ISPs are spread over
	NATMix      NATMix
	Relay       bool    // pairs that cannot punch use a relay (else they fail)
	Loss        float64 // packet loss probability (costs a retransmission)

	OriginCapacity  int     // children the origin feeds
	OriginUploadMul float64 // origin upload ÷ (capacity × stream rate)
	Headroom        float64 // upload per child ÷ stream rate when sizing capacity

	Churn      float64       // fraction of peers leaving (and as many joining) per minute
	CrashShare float64       // share of leavers that vanish without a word
	FlashCrowd time.Duration // every initial peer joins within this
	Heartbeat  time.Duration // tracker heartbeat interval

	KillTrackerAt    time.Duration // 0: never
	RestartTrackerAt time.Duration // 0: never
	// RejoinAfresh makes rejoining peers report no current place
	// (tracker.JoinRequest.Current), as older peers do: the restarted
	// tracker then places every stripe anew. For comparison.
	RejoinAfresh bool
	PartitionAt  time.Duration // 0: never; cuts the network in two halves (see overlay.go)
	HealAt       time.Duration // 0: never
	ChurnStopAt  time.Duration // 0: never; churn ends at this time

	// Overlay runs the structured overlay core (package overlay) on
	// every viewer; see overlay.go.
	Overlay     bool
	MergeFanout int           // overlay.Config.MergeFanout (0: the core's default)
	LookupEvery time.Duration // each member starts a lookup of a random key this often
	// Media false runs no stream and no tracker: only the overlay (for
	// ring figures at scales the media simulation cannot reach quickly).
	Media bool

	CheckEvery time.Duration // invariant checks and samples

	// MeasureFrom is when the report's steady phase begins (its steady
	// block: report.Phase), after the warm-up (0: no steady block).
	MeasureFrom time.Duration

	// LinkUpReset tells a child's core its parent is up
	// (swarm.Node.ParentUp) when the parent accepted the hello, as the
	// real driver (internal/transport) does once the hello is written;
	// the dial then counts against ParentConnectTimeout, not
	// ParentTimeout. false leaves it to the parent's first chunk.
	LinkUpReset bool

	// LiveFirst makes a parent other than the origin send live chunks
	// ahead of a new child's backlog (backlog.go), as the real driver
	// does with transport.DriverConfig.LiveFirst, and viewers then start
	// on a held run of their group (swarm.Config.StartHeldRun). Off by
	// default, as in the real peer (see transport.DriverConfig.LiveFirst:
	// its gate fails on a loaded machine).
	LiveFirst bool

	// Estimates hands each viewer's swarm core the overlay's gossip
	// estimates and whether it reaches the tracker (swarm.SetEstimates:
	// the accept limit while the tracker is away, more playout margin
	// while the swarm's health is poor), as the real peer takes the
	// estimates (the real peer sets no feed capacity, so it has no
	// accept limit). With Overlay only; false gives the cores none.
	Estimates bool

	// QueueLimit bounds how long a chunk may wait in a parent's queue
	// to one child: a push that would wait longer is dropped (the child
	// pulls or fetches it), as the real driver's writer drops chunks
	// queued longer than transport.DriverConfig.MaxQueueDelay (0: no
	// bound, queues grow with the parent's overload).
	QueueLimit time.Duration

	// Verify is how chunks are verified: "fast" (the default) checks
	// that a chunk is one the simulated origin signed, by identity of
	// its encoding (see stream.verify) — cheap, and it still rejects any
	// tampered copy; "ed25519" checks the signature as real nodes do.
	Verify string

	// Placer is the tracker's placement: "chandelier" or "baseline".
	Placer string

	// The swarm core's levers (0: the core's default).
	ParentTimeout time.Duration
	LagSlices     int // swarm.Config.LagSlices (0: parents are not judged by their lag)
	PlayoutDelay  time.Duration
	FetchMargin   time.Duration
	// PushedMargin is the fetch and pull margin for a chunk whose
	// stripe's parent still pushes the stripe (swarm.Config.PushedMargin;
	// 0: the core's default; at or above the fetch margin: none).
	PushedMargin  time.Duration
	MaxBacklog    time.Duration // swarm.Config.MaxBacklog
	KeyframeWait  time.Duration // swarm.Config.KeyframeWait
	StartAge      time.Duration // tracker.Config.StartAge, told viewers joining a settled swarm (0: hellos carry no start)
	CrowdStartAge time.Duration // tracker.Config.CrowdStartAge, told viewers joining during a flash crowd
	StartMargin   time.Duration // swarm.Config.StartMargin (0: start PlayoutDelay after the first chunk)
	StartFetch    time.Duration // swarm.Config.StartFetch (0: the core's default)
	StartPull     time.Duration // swarm.Config.StartPull (0: the core's default; negative: no pulls before playout starts)
	CatchUp       float64       // swarm.Config.CatchUp (negative: off)

	// The partner mesh and parent liveness (internal/sim/mesh.go).
	//
	// Partners is how many partners each viewer pulls from, taken from
	// the tracker's backups (0: no mesh; missing chunks go to the origin
	// only). PullMargin and MapInterval are the core's levers (0: the
	// core's defaults). AliveInterval is how long a parent leaves a child
	// without anything before it sends an Alive (0: no Alives).
	Partners   int
	PullMargin time.Duration
	// Misses accounts for every chunk a stalled viewer lacked (see
	// misses.go) and adds the account to the notes. It costs memory and
	// time: a diagnostic for runs of a few thousand peers.
	Misses bool
	// Workers is how many goroutines run the viewers' parts
	// (parts.go): 1 or 2, the same run either way; 0 (the default): 2
	// when GOMAXPROCS allows two, else 1. The overlay, Misses and
	// JoinSequential run with one (their handlers read other peers).
	Workers       int
	MapInterval   time.Duration
	AliveInterval time.Duration

	// Settings that model `swarmtv demo` (see scenarios/demo-*.yaml).
	//
	// PeerFeeds, when positive, is the stripe feeds every viewer
	// accepts, as a real peer's --capacity sets them (0: from its drawn
	// upload ÷ headroom).
	PeerFeeds int
	// DelayScale multiplies every network delay of the model (1: the
	// internet of the model; 0.01 makes it loopback-like).
	DelayScale float64
	// DownloadRatio, when positive, is every viewer's download ÷ stream
	// rate (0: drawn).
	DownloadRatio float64
	// JoinSequential makes the initial viewers join one after another,
	// each when the one before has played its first slice, as the demo
	// starts its peers (FlashCrowd is then ignored for them).
	JoinSequential bool
	// SliceCap, when positive, cuts a slice larger than SliceCap × the
	// mean slice size into parts of at most that size (a keyframe's
	// slice, three times another's), as origin.ChunkerConfig.SliceCap
	// does: the parts pipeline through the trees instead of one big
	// chunk per hop (see stream). 0: never.
	SliceCap float64
	// KeyframeFirst makes the stream's first slice a keyframe, as the
	// demo's clip (and an encoder's first picture) is; else the first
	// keyframe comes a keyframe interval in.
	KeyframeFirst bool
	// Warmup is how long the stream has been live when the run starts:
	// the origin holds the slices captured in it (published at time 0,
	// before any viewer joins), as a real origin has been streaming
	// before its viewers arrive. 0: the stream starts with the run, so a
	// viewer joining in its first keyframe interval waits for the first
	// keyframe.
	Warmup time.Duration
}

// Chunk verification modes (Config.Verify).
const (
	VerifyFast    = "fast"
	VerifyEd25519 = "ed25519"
)

// defaultQueueLimit is the real driver's
// transport.DefaultMaxQueueDelay (internal/sim does not import the
// driver).
const defaultQueueLimit = 500 * time.Millisecond

// defaultSliceCap is the real origin's origin.DefaultSliceCap
// (internal/sim does not import the origin; a test checks they agree).
const defaultSliceCap = 1.5

// DefaultConfig returns the defaults of every option.
func DefaultConfig() Config {
	return Config{
		Scenario:        "custom",
		Peers:           100,
		Duration:        60 * time.Second,
		Seed:            1,
		StreamKbps:      4000,
		Slice:           100 * time.Millisecond,
		Stripes:         4,
		Keyframe:        time.Second,
		UploadRatio:     2,
		Estimates:       true,
		UploadSigma:     0.7,
		ISPs:            4,
		Regions:         2,
		NATMix:          DefaultNATMix,
		Relay:           true,
		Loss:            0.001,
		OriginCapacity:  8,
		OriginUploadMul: 2,
		Headroom:        1.25,
		CrashShare:      0.5,
		FlashCrowd:      10 * time.Second,
		Heartbeat:       time.Second,
		CheckEvery:      time.Second,
		LinkUpReset:     true,
		Verify:          VerifyFast,
		Placer:          tracker.PlacerChandelier,
		// The real peer's parent liveness (proxy.Peer): the core's
		// ParentTimeout (600 ms) and a parent lost after 2 s of slices
		// in a row that came only after the origin's fallback. Before
		// queues were bounded (QueueLimit) a congested parent's chunks
		// queued behind its upload for seconds, and the sim kept 2 s
		// (300 peers, churn 20 %/min: 0.989 at 2 s, 0.65 at 600 ms).
		LagSlices:     int(2 * time.Second / (100 * time.Millisecond)),
		QueueLimit:    defaultQueueLimit,
		AliveInterval: 150 * time.Millisecond,
		Partners:      4,
		// The real peer's start and playout (see swarm.ViewerPlayoutDelay).
		PlayoutDelay:  swarm.ViewerPlayoutDelay,
		StartMargin:   swarm.ViewerStartMargin,
		KeyframeWait:  swarm.ViewerKeyframeWait,
		StartAge:      tracker.DefaultStartAge,
		CrowdStartAge: tracker.DefaultCrowdStartAge,
		// The origin's default size cap (origin.DefaultSliceCap).
		SliceCap: defaultSliceCap,
		// A live stream is on the air before its viewers arrive.
		Warmup:      2 * time.Second,
		LookupEvery: 10 * time.Second,
		Media:       true,
		DelayScale:  1,
	}
}

// Validate reports what is wrong with c, as an error wrapping ErrConfig.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case c.Peers < 1 || c.Peers > 1_000_000:
		return bad("peers must be 1..1000000, got %d", c.Peers)
	case c.Duration <= 0 || c.Duration > 24*time.Hour:
		return bad("duration must be in (0, 24h], got %v", c.Duration)
	case !(c.StreamKbps >= 8 && c.StreamKbps <= 100_000):
		return bad("stream-kbps must be 8..100000, got %v", c.StreamKbps)
	case c.Slice < 10*time.Millisecond || c.Slice > 10*time.Second:
		return bad("slice-ms must be 10..10000, got %v", c.Slice)
	case c.Stripes < 1 || c.Stripes > 16:
		return bad("stripes must be 1..16, got %d", c.Stripes)
	case c.Keyframe < c.Slice:
		return bad("keyframe interval %v is shorter than a slice (%v)", c.Keyframe, c.Slice)
	case !(c.UploadRatio > 0 && c.UploadRatio <= 100):
		return bad("upload-ratio must be in (0, 100], got %v", c.UploadRatio)
	case !(c.UploadSigma >= 0 && c.UploadSigma <= 3):
		return bad("upload-sigma must be in [0, 3], got %v", c.UploadSigma)
	case c.ISPs < 1 || c.ISPs > 64:
		return bad("isps must be 1..64, got %d", c.ISPs)
	case !(c.ISPSkew >= 0 && c.ISPSkew <= 5):
		return bad("isp-skew must be in [0, 5], got %v", c.ISPSkew)
	case c.Regions < 1 || c.Regions > c.ISPs:
		return bad("regions must be 1..isps (%d), got %d", c.ISPs, c.Regions)
	case !(c.Loss >= 0 && c.Loss < 0.5):
		return bad("loss must be in [0, 0.5), got %v", c.Loss)
	case c.OriginCapacity < 1 || c.OriginCapacity > 4096:
		return bad("origin-capacity must be 1..4096, got %d", c.OriginCapacity)
	case !(c.OriginUploadMul >= 1 && c.OriginUploadMul <= 1000):
		return bad("origin-upload-mul must be 1..1000, got %v", c.OriginUploadMul)
	case !(c.Headroom >= 1 && c.Headroom <= 10):
		return bad("headroom must be 1..10, got %v", c.Headroom)
	case !(c.Churn >= 0 && c.Churn <= 1):
		return bad("churn must be in [0, 1] (a fraction per minute), got %v", c.Churn)
	case !(c.CrashShare >= 0 && c.CrashShare <= 1):
		return bad("crash-share must be in [0, 1], got %v", c.CrashShare)
	case c.FlashCrowd < 0:
		return bad("flash-crowd must not be negative, got %v", c.FlashCrowd)
	case c.Warmup < 0 || c.Warmup > keepSigned:
		return bad("warmup must be 0..%v, got %v", keepSigned, c.Warmup)
	case c.MeasureFrom < 0 || c.MeasureFrom >= c.Duration:
		return bad("measure-from must be 0 (no steady block) or less than the duration (%v), got %v", c.Duration, c.MeasureFrom)
	case c.Heartbeat < 10*time.Millisecond || c.Heartbeat > time.Minute:
		return bad("heartbeat must be 10ms..1m, got %v", c.Heartbeat)
	case c.CheckEvery < 10*time.Millisecond:
		return bad("check-every must be at least 10ms, got %v", c.CheckEvery)
	case !(c.CatchUp <= 1):
		return bad("catch-up must be at most 1 (negative: off), got %v", c.CatchUp)
	case c.Verify != VerifyFast && c.Verify != VerifyEd25519:
		return bad("verify must be %q or %q, got %q", VerifyFast, VerifyEd25519, c.Verify)
	case c.Workers < 0 || c.Workers > 2:
		return bad("workers must be 1 or 2 (0: 2 on two cores or more), got %d", c.Workers)
	case c.Partners < 0 || c.Partners > swarm.MaxPartners:
		return bad("partners must be 0..%d, got %d", swarm.MaxPartners, c.Partners)
	case c.LagSlices < 0 || c.LagSlices > 1000:
		return bad("lag-slices must be 0..1000, got %d", c.LagSlices)
	case !(c.SliceCap == 0 || c.SliceCap >= 0.25 && c.SliceCap <= 100):
		return bad("slice-cap must be 0 (off) or 0.25..100, got %v", c.SliceCap)
	case c.PeerFeeds < 0 || c.PeerFeeds > tracker.MaxPeerCapacity:
		return bad("peer-feeds must be 0..%d, got %d", tracker.MaxPeerCapacity, c.PeerFeeds)
	case !(c.DelayScale > 0 && c.DelayScale <= 10):
		return bad("delay-scale must be in (0, 10], got %v", c.DelayScale)
	case !(c.DownloadRatio >= 0 && c.DownloadRatio <= 1000):
		return bad("download-ratio must be 0..1000 (0: drawn), got %v", c.DownloadRatio)
	}
	for _, t := range []struct {
		name string
		v    time.Duration
	}{{"parent-timeout", c.ParentTimeout}, {"playout-delay", c.PlayoutDelay}, {"fetch-margin", c.FetchMargin}, {"pushed-margin", c.PushedMargin}, {"max-backlog", c.MaxBacklog}, {"keyframe-wait", c.KeyframeWait}, {"start-age", c.StartAge}, {"crowd-start-age", c.CrowdStartAge}, {"start-margin", c.StartMargin}, {"start-fetch", c.StartFetch}, {"pull-margin", c.PullMargin}, {"map-interval", c.MapInterval}, {"alive-interval", c.AliveInterval}, {"kill-tracker-at", c.KillTrackerAt}, {"restart-tracker-at", c.RestartTrackerAt}, {"partition-at", c.PartitionAt}, {"heal-at", c.HealAt}, {"churn-stop-at", c.ChurnStopAt}, {"queue-limit", c.QueueLimit}} {
		if t.v < 0 {
			return bad("%s must not be negative, got %v", t.name, t.v)
		}
	}
	if c.RestartTrackerAt > 0 && (c.KillTrackerAt == 0 || c.RestartTrackerAt <= c.KillTrackerAt) {
		return bad("restart-tracker-at (%v) needs an earlier kill-tracker-at (%v)", c.RestartTrackerAt, c.KillTrackerAt)
	}
	if c.HealAt > 0 && (c.PartitionAt == 0 || c.HealAt <= c.PartitionAt) {
		return bad("heal-at (%v) needs an earlier partition-at (%v)", c.HealAt, c.PartitionAt)
	}
	if c.LookupEvery < 100*time.Millisecond {
		return bad("lookup-every must be at least 100ms, got %v", c.LookupEvery)
	}
	if c.MergeFanout < -1 || c.MergeFanout > 64 {
		return bad("merge-fanout must be -1..64 (-1: no spreading, 0: the default), got %d", c.MergeFanout)
	}
	if !c.Media && !c.Overlay {
		return bad("media false needs overlay true: there would be nothing to simulate")
	}
	sum := 0.0
	for _, v := range c.NATMix {
		if v < 0 {
			return bad("nat mix has a negative share: %v", c.NATMix)
		}
		sum += v
	}
	if math.Abs(sum-1) > 0.001 {
		return bad("nat mix shares sum to %.3f, want 1", sum)
	}
	return nil
}

// Option is one setting of Config, settable by name from a flag, an
// environment variable or a scenario file key (the same name with '_' for
// '-').
type Option struct {
	Name  string
	Usage string
	get   func(c *Config) string
	set   func(c *Config, v string) error
}

func intOpt(name, usage string, f func(c *Config) *int) Option {
	return Option{name, usage,
		func(c *Config) string { return strconv.Itoa(*f(c)) },
		func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("want an integer, got %q", v)
			}
			*f(c) = n
			return nil
		}}
}

func floatOpt(name, usage string, f func(c *Config) *float64) Option {
	return Option{name, usage,
		func(c *Config) string { return strconv.FormatFloat(*f(c), 'g', -1, 64) },
		func(c *Config, v string) error {
			x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("want a number, got %q", v)
			}
			*f(c) = x
			return nil
		}}
}

func boolOpt(name, usage string, f func(c *Config) *bool) Option {
	return Option{name, usage,
		func(c *Config) string { return strconv.FormatBool(*f(c)) },
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			*f(c) = b
			return nil
		}}
}

func durOpt(name, usage string, f func(c *Config) *time.Duration) Option {
	return Option{name, usage,
		func(c *Config) string { return f(c).String() },
		func(c *Config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("want a duration such as 90s or 10m, got %q", v)
			}
			*f(c) = d
			return nil
		}}
}

// Options lists every option, in the order help prints them.
var Options = []Option{
	{"name", "scenario name written to the report",
		func(c *Config) string { return c.Scenario },
		func(c *Config, v string) error {
			if v == "" || strings.ContainsAny(v, " \t\n'\"") {
				return fmt.Errorf("want a name without spaces or quotes, got %q", v)
			}
			c.Scenario = v
			return nil
		}},
	intOpt("peers", "viewers (also the size of the churning population)", func(c *Config) *int { return &c.Peers }),
	durOpt("duration", "simulated time", func(c *Config) *time.Duration { return &c.Duration }),
	{"seed", "seed of every random stream; same seed and options, same run",
		func(c *Config) string { return strconv.FormatUint(c.Seed, 10) },
		func(c *Config, v string) error {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return fmt.Errorf("want a non-negative integer, got %q", v)
			}
			c.Seed = n
			return nil
		}},
	floatOpt("stream-kbps", "stream bitrate, kbit/s", func(c *Config) *float64 { return &c.StreamKbps }),
	{"slice-ms", "slice duration, milliseconds",
		func(c *Config) string { return strconv.FormatInt(c.Slice.Milliseconds(), 10) },
		func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("want milliseconds, got %q", v)
			}
			c.Slice = time.Duration(n) * time.Millisecond
			return nil
		}},
	intOpt("stripes", "stripes K a slice is dealt into", func(c *Config) *int { return &c.Stripes }),
	durOpt("keyframe", "keyframe interval", func(c *Config) *time.Duration { return &c.Keyframe }),
	floatOpt("upload-ratio", "mean peer upload ÷ stream rate, drawn log-normally", func(c *Config) *float64 { return &c.UploadRatio }),
	floatOpt("upload-sigma", "log-normal sigma of the upload spread", func(c *Config) *float64 { return &c.UploadSigma }),
	intOpt("isps", "ISPs the peers are spread over", func(c *Config) *int { return &c.ISPs }),
	floatOpt("isp-skew", "Zipf exponent of ISP sizes (0: equal sizes)", func(c *Config) *float64 { return &c.ISPSkew }),
	intOpt("regions", "regions the ISPs are spread over", func(c *Config) *int { return &c.Regions }),
	{"nat-mix", "shares of NAT types, e.g. open=0.2,fullcone=0.1,restricted=0.1,portrestricted=0.4,symmetric=0.2",
		func(c *Config) string { return c.NATMix.String() },
		func(c *Config, v string) error {
			m, err := ParseNATMix(v)
			if err != nil {
				return err
			}
			c.NATMix = m
			return nil
		}},
	{"relay", "pairs that cannot punch through their NATs use a relay (false: they fail)",
		func(c *Config) string { return strconv.FormatBool(c.Relay) },
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			c.Relay = b
			return nil
		}},
	floatOpt("loss", "packet loss probability (each loss costs a retransmission)", func(c *Config) *float64 { return &c.Loss }),
	intOpt("origin-capacity", "children the origin feeds directly", func(c *Config) *int { return &c.OriginCapacity }),
	floatOpt("origin-upload-mul", "origin upload ÷ (origin-capacity × stream rate)", func(c *Config) *float64 { return &c.OriginUploadMul }),
	floatOpt("headroom", "upload a peer keeps per child ÷ stream rate", func(c *Config) *float64 { return &c.Headroom }),
	floatOpt("churn", "fraction of peers leaving, and as many joining, per minute", func(c *Config) *float64 { return &c.Churn }),
	floatOpt("crash-share", "share of leaving peers that vanish without a word", func(c *Config) *float64 { return &c.CrashShare }),
	durOpt("flash-crowd", "every initial peer joins within this (0: all at once)", func(c *Config) *time.Duration { return &c.FlashCrowd }),
	durOpt("heartbeat", "tracker heartbeat interval", func(c *Config) *time.Duration { return &c.Heartbeat }),
	durOpt("kill-tracker-at", "the tracker dies at this simulated time (0: never)", func(c *Config) *time.Duration { return &c.KillTrackerAt }),
	durOpt("restart-tracker-at", "the tracker restarts, empty, at this time (0: never)", func(c *Config) *time.Duration { return &c.RestartTrackerAt }),
	durOpt("partition-at", "the network splits in two halves (by region; the origin and tracker in one) at this time (0: never)", func(c *Config) *time.Duration { return &c.PartitionAt }),
	durOpt("heal-at", "the partition heals at this time (0: never)", func(c *Config) *time.Duration { return &c.HealAt }),
	durOpt("churn-stop-at", "churn ends at this time (0: never)", func(c *Config) *time.Duration { return &c.ChurnStopAt }),
	boolOpt("rejoin-afresh", "rejoining peers report no current parents, as older peers do (the restarted tracker places every stripe anew; for comparison)", func(c *Config) *bool { return &c.RejoinAfresh }),
	intOpt("workers", "goroutines running the viewers' 16 parts, in windows of the shortest one-way delay (1 or 2: the same run either way; 0: 2 when GOMAXPROCS is 2 or more; the overlay, --misses and sequential joins always use 1)", func(c *Config) *int { return &c.Workers }),
	boolOpt("misses", "account for every chunk a stalled viewer lacked (its parent, partners, origin fetch, arrival) in the notes: a diagnostic", func(c *Config) *bool { return &c.Misses }),
	boolOpt("overlay", "run the structured overlay on every viewer (ring, lookups, merge after a partition)", func(c *Config) *bool { return &c.Overlay }),
	intOpt("merge-fanout", "overlay merge fanout F, the merge's cost parameter (0: default 2, -1: no spreading)", func(c *Config) *int { return &c.MergeFanout }),
	durOpt("lookup-every", "each overlay member looks up a random key this often", func(c *Config) *time.Duration { return &c.LookupEvery }),
	boolOpt("media", "simulate the stream and the tracker (false: the overlay only)", func(c *Config) *bool { return &c.Media }),
	boolOpt("estimates", "with --overlay, viewers' swarm cores take the gossip estimates: while the tracker is away a parent takes no more stripe feeds than its capacity; while the swarm's health is poor viewers keep half a playout delay more margin (false: the cores get none)", func(c *Config) *bool { return &c.Estimates }),
	boolOpt("live-first", "a parent (not the origin) sends live chunks ahead of a new child's backlog, the backlog only while its upload is free (false: in line)", func(c *Config) *bool { return &c.LiveFirst }),
	{"link-up-reset", "tell a child's core its parent is up when the parent accepts the hello, as internal/transport does (false: at its first chunk)",
		func(c *Config) string { return strconv.FormatBool(c.LinkUpReset) },
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			c.LinkUpReset = b
			return nil
		}},
	{"verify", "chunk verification: fast (the chunk is one the simulated origin signed) or ed25519 (the signature, as real nodes do)",
		func(c *Config) string { return c.Verify },
		func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v != VerifyFast && v != VerifyEd25519 {
				return fmt.Errorf("want %s or %s, got %q", VerifyFast, VerifyEd25519, v)
			}
			c.Verify = v
			return nil
		}},
	durOpt("parent-timeout", "swarm core: a parent that is up and sends nothing on any stripe this long is lost (0: the core's default)", func(c *Config) *time.Duration { return &c.ParentTimeout }),
	intOpt("lag-slices", "swarm core: a parent whose chunks of this many slices in a row arrive only after they were fetched from the origin is lost (0: never)", func(c *Config) *int { return &c.LagSlices }),
	durOpt("queue-limit", "a push that would wait longer than this in its parent's queue to the child is dropped, as the real driver does (0: queues unbounded)", func(c *Config) *time.Duration { return &c.QueueLimit }),
	intOpt("partners", "partner mesh: partners each viewer pulls missing chunks from, taken from its tracker backups (0: none, the origin covers every gap)", func(c *Config) *int { return &c.Partners }),
	durOpt("pull-margin", "partner mesh: a chunk missing this long before it is due is pulled from a partner (0: the core's default)", func(c *Config) *time.Duration { return &c.PullMargin }),
	durOpt("map-interval", "partner mesh: a node asks its partners for their buffer maps at most this often, when it has a chunk to pull that their maps do not show (0: the core's default)", func(c *Config) *time.Duration { return &c.MapInterval }),
	durOpt("alive-interval", "a parent that pushed a child nothing this long sends it an Alive (0: never; then keep parent-timeout near 2s)", func(c *Config) *time.Duration { return &c.AliveInterval }),
	durOpt("playout-delay", "swarm core: playout runs this far behind a start slice's arrival (0: the core's default)", func(c *Config) *time.Duration { return &c.PlayoutDelay }),
	durOpt("fetch-margin", "swarm core: a chunk missing this long before it is due is fetched from the origin (0: the core's default)", func(c *Config) *time.Duration { return &c.FetchMargin }),
	durOpt("pushed-margin", "swarm core: the fetch margin for a chunk whose stripe's parent still pushes the stripe in order (0: the core's default; at or above the fetch margin: the fetch margin)", func(c *Config) *time.Duration { return &c.PushedMargin }),
	durOpt("max-backlog", "swarm core: a child asking from a slice gets no backlog captured more than this before the newest (0: the core's default)", func(c *Config) *time.Duration { return &c.MaxBacklog }),
	durOpt("start-margin", "swarm core: a viewer plays its start keyframe at once when it holds this much beyond it, then converges to the playout delay (0: it starts a playout delay after its first chunk)", func(c *Config) *time.Duration { return &c.StartMargin }),
	durOpt("start-pull", "swarm core: before playout starts, a chunk of the start keyframe picture still missing this long after its first chunk is pulled from a partner whose map shows it, at once when no parent will push it (0: the core's default, 200ms; negative: never)", func(c *Config) *time.Duration { return &c.StartPull }),
	durOpt("start-fetch", "swarm core: before playout starts, a chunk of the start picture (the keyframe slice and its continuations) still missing this long after the picture's first chunk is fetched from the origin (0: the core's default, the parent timeout)", func(c *Config) *time.Duration { return &c.StartFetch }),
	durOpt("start-age", "the tracker tells a viewer joining a settled swarm to ask every parent for the backlog from the first keyframe captured at most this before its first hello, so its stripes start at one keyframe (0: no start named, each parent chooses by keyframe-wait)", func(c *Config) *time.Duration { return &c.StartAge }),
	durOpt("crowd-start-age", "the start age the tracker tells viewers joining during a flash crowd (more joins in 10 s than a tenth of the peers, and over 50)", func(c *Config) *time.Duration { return &c.CrowdStartAge }),
	durOpt("keyframe-wait", "swarm core: a new child gets only live chunks when the next keyframe is this near (0: never; always the group of pictures)", func(c *Config) *time.Duration { return &c.KeyframeWait }),
	floatOpt("catch-up", "swarm core: playout behind the recent arrivals plays up to this fraction faster (0: the core's default, negative: never)", func(c *Config) *float64 { return &c.CatchUp }),
	{"placer", "the tracker's stripe placement: chandelier (topology-aware) or baseline (random parent with spare upload)",
		func(c *Config) string { return c.Placer },
		func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v != tracker.PlacerChandelier && v != tracker.PlacerBaseline {
				return fmt.Errorf("want %s or %s, got %q", tracker.PlacerChandelier, tracker.PlacerBaseline, v)
			}
			c.Placer = v
			return nil
		}},
	durOpt("check-every", "interval of invariant checks and tree samples", func(c *Config) *time.Duration { return &c.CheckEvery }),
	durOpt("measure-from", "the report's steady block holds the figures from this time on, after the warm-up: startups of viewers joining from it, slices played, repairs and bytes sent from it (0: no steady block; the whole-run figures are kept)", func(c *Config) *time.Duration { return &c.MeasureFrom }),
	intOpt("peer-feeds", "stripe feeds every viewer accepts, like a real peer's capacity (0: its drawn upload ÷ headroom)", func(c *Config) *int { return &c.PeerFeeds }),
	floatOpt("delay-scale", "multiplies every network delay (1: the model's internet; 0.01: loopback-like)", func(c *Config) *float64 { return &c.DelayScale }),
	floatOpt("download-ratio", "every viewer's download ÷ stream rate (0: drawn)", func(c *Config) *float64 { return &c.DownloadRatio }),
	durOpt("warmup", "the stream is live this long before the run starts (its slices held at the origin; 0: it starts with the run)", func(c *Config) *time.Duration { return &c.Warmup }),
	floatOpt("slice-cap", "a slice over this many times the mean slice size is cut into parts of at most that size, as the origin's --slice-cap does (0: never)", func(c *Config) *float64 { return &c.SliceCap }),
	boolOpt("keyframe-first", "the stream's first slice is a keyframe, as the demo's clip's is (false: the first comes a keyframe interval in)", func(c *Config) *bool { return &c.KeyframeFirst }),
	boolOpt("join-sequential", "the initial viewers join one after another, each once the one before has played, as swarmtv demo starts its peers", func(c *Config) *bool { return &c.JoinSequential }),
}

// option returns the option called name (flag spelling or YAML spelling).
func option(name string) (Option, bool) {
	name = strings.ReplaceAll(name, "_", "-")
	for _, o := range Options {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// Set sets the option called name from its text form.
func (c *Config) Set(name, value string) error {
	o, ok := option(name)
	if !ok {
		return fmt.Errorf("%w: unknown option %q", ErrConfig, name)
	}
	if err := o.set(c, value); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrConfig, o.Name, err)
	}
	return nil
}

// Get returns the text form of the option called name ("" if unknown).
func (c *Config) Get(name string) string {
	o, ok := option(name)
	if !ok {
		return ""
	}
	return o.get(c)
}

// Args returns the flags that reproduce c exactly, for replay commands.
func (c *Config) Args() []string {
	out := make([]string, 0, len(Options))
	for _, o := range Options {
		out = append(out, "--"+o.Name+"="+o.get(c))
	}
	return out
}

// ReplayCommand is the shell command that replays c.
func (c *Config) ReplayCommand() string {
	return "swarmtv sim " + strings.Join(c.Args(), " ")
}

// LoadScenario reads a YAML scenario file: a mapping of option names
// (flag or underscore spelling) to values, applied over DefaultConfig.
// Unknown keys, bad values and an invalid result are errors naming the
// file.
func LoadScenario(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: scenario: %w", ErrConfig, err)
	}
	c, err := ParseScenario(data)
	if err != nil {
		return Config{}, fmt.Errorf("scenario %s: %w", path, err)
	}
	return c, nil
}

// ParseScenario parses a scenario's YAML (see LoadScenario).
func ParseScenario(data []byte) (Config, error) {
	c := DefaultConfig()
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil // an empty file: the defaults
		}
		return c, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if len(root.Content) == 0 {
		return c, nil // an empty file: the defaults
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return c, fmt.Errorf("%w: line %d: a scenario is a mapping of option: value", ErrConfig, m.Line)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return c, fmt.Errorf("%w: line %d: %s must be a single value", ErrConfig, v.Line, k.Value)
		}
		if err := c.Set(k.Value, v.Value); err != nil {
			return c, fmt.Errorf("line %d: %w", k.Line, err)
		}
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}
