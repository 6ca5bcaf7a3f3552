package origin

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/rtp"

	"github.com/swarmtv/swarmtv/origin/testclip"
)

// Packet is one RTP packet from the broadcaster with its capture time.
type Packet struct {
	// Media is the index of the packet's media in the description's Medias.
	Media int
	// RTP is the packet; the consumer may keep it but must not modify its
	// Payload.
	RTP *rtp.Packet
	// Capture is the origin's wall clock when the packet was ingested.
	Capture time.Time
}

// Source delivers a live stream.
type Source interface {
	// Run calls onDesc once with the stream's description, then emit for
	// every packet, until ctx ends or the source fails. Callbacks are called
	// one at a time, in capture order. If onDesc returns an error, Run stops
	// and returns it. Run returns the reason it stopped (nil or ctx.Err()
	// on cancel) after every goroutine it started has ended.
	Run(ctx context.Context, onDesc func(*description.Session) error, emit func(Packet)) error
}

// Errors the sources return.
var (
	// ErrBadURL: the RTSP URL is unusable.
	ErrBadURL = errors.New("origin: bad RTSP URL")
	// ErrBadTransport: the transport is not "tcp", "udp" or "".
	ErrBadTransport = errors.New(`origin: RTSP transport must be "tcp", "udp" or "" (automatic)`)
	// ErrSourceFailed wraps a failure of the upstream RTSP server or
	// connection.
	ErrSourceFailed = errors.New("origin: stream source failed")
	// ErrDescriptionChanged: a new publisher announced a stream that
	// differs from the first one's.
	ErrDescriptionChanged = errors.New("origin: the new publisher's stream differs from the first one (restart the origin to change codecs)")
	// ErrBadChannel: the channel name cannot be an RTSP path.
	ErrBadChannel = errors.New("origin: channel name must be 1-64 characters of letters, digits, '-', '_' and '.'")
	// ErrNoMedia: the stream describes no media the origin can relay.
	ErrNoMedia = errors.New("origin: the stream has no media")
	// ErrRunning: Run was called while a previous Run is still running.
	ErrRunning = errors.New("origin: source is already running")
)

// ClipSource plays the bundled test clip (package testclip) as a live
// stream, looped forever.
type ClipSource struct {
	log  *slog.Logger
	opts testclip.Options
}

// NewClipSource returns the bundled clip as a live source paced in real
// time; now stamps capture times (nil means time.Now).
func NewClipSource(log *slog.Logger, now func() time.Time) *ClipSource {
	return newClipSource(log, testclip.Options{Now: now})
}

// newClipSource lets tests turn pacing off or stop after some loops.
func newClipSource(log *slog.Logger, opts testclip.Options) *ClipSource {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ClipSource{log: log, opts: opts}
}

// Run implements Source.
func (s *ClipSource) Run(ctx context.Context, onDesc func(*description.Session) error, emit func(Packet)) error {
	clip, err := testclip.Default()
	if err != nil {
		return err
	}
	if err := onDesc(clip.Description()); err != nil {
		return err
	}
	s.log.Info("playing the bundled clip", "period", clip.Period(), "packets_per_loop", clip.PacketsPerLoop())
	return clip.Run(ctx, s.opts, func(p testclip.Packet) {
		emit(Packet{Media: p.Media, RTP: p.RTP, Capture: p.Capture})
	})
}

// StreamBPS is the clip's bit rate (RTP packets), known before it plays:
// the origin registers with it, so the tracker plans with the clip's
// rate from the first join (0 if the clip cannot be loaded).
func (s *ClipSource) StreamBPS() int64 {
	clip, err := testclip.Default()
	if err != nil {
		return 0
	}
	return clip.BitRate()
}

// RateHinter is an optional interface of a Source that knows its bit
// rate before it plays (the bundled clip); other sources' rate is
// measured.
type RateHinter interface {
	StreamBPS() int64
}

// serialEmitter serializes callbacks from several gortsplib goroutines and
// stamps capture times in the order packets are handed on.
type serialEmitter struct {
	mu   sync.Mutex
	now  func() time.Time
	emit func(Packet)
	stop bool // set once Run is returning; guarded by mu
}

func (e *serialEmitter) packet(media int, pkt *rtp.Packet) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stop {
		return
	}
	e.emit(Packet{Media: media, RTP: pkt, Capture: e.now()})
}

func (e *serialEmitter) close() {
	e.mu.Lock()
	e.stop = true
	e.mu.Unlock()
}
