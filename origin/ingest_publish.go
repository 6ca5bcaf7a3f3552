package origin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

var channelName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// PublishSource is an RTSP server that accepts a broadcaster's stream
// (ANNOUNCE, SETUP, RECORD over TCP, as ffmpeg -f rtsp -rtsp_transport tcp
// and OBS send it) at rtsp://<listen>/<channel>. One publisher is accepted
// at a time; when it leaves, the next one may publish, provided its stream
// has the same medias and codec parameters as the first one's.
//
// The server listens from NewPublishSource until Close. Run forwards the
// publisher's stream; publishers are refused while no Run is active.
//
// Only TCP (interleaved) transport is offered: a publisher that asks for
// UDP gets 461 Unsupported Transport, and ffmpeg then retries over TCP by
// itself. To publish an MPEG-TS file with ffmpeg 5.1, re-encode its AAC
// (copying ADTS audio into RTSP fails with "AAC with no global headers"):
//
//	ffmpeg -re -i in.ts -c:v copy -c:a aac -f rtsp -rtsp_transport tcp rtsp://127.0.0.1:8554/<channel>
type PublishSource struct {
	log     *slog.Logger
	channel string
	now     func() time.Time
	server  *gortsplib.Server
	// serverDone is closed when the server has stopped; serverErr is
	// written before that and read only after.
	serverDone chan struct{}
	serverErr  error

	mu sync.Mutex
	// The fields below are guarded by mu.
	desc      *description.Session // the first publisher's stream; nil before it
	run       *publishRun          // the active Run, or nil
	publisher *gortsplib.ServerSession
	index     map[*description.Media]int // publisher's medias → indices in desc
	closed    bool
}

// publishRun is the state of one call of Run.
type publishRun struct {
	onDesc   func(*description.Session) error
	em       *serialEmitter
	descSent bool       // onDesc has been called
	failed   chan error // buffered; the first failure ends Run
}

func (r *publishRun) fail(err error) {
	select {
	case r.failed <- err:
	default:
	}
}

// NewPublishSource starts an RTSP server on listen (host:port; port 0
// picks a free one, see Addr) that accepts one publisher at a time at the
// path /<channel>. Call Close to stop it.
func NewPublishSource(listen, channel string, log *slog.Logger) (*PublishSource, error) {
	if !channelName.MatchString(channel) {
		return nil, fmt.Errorf("%w, got %q", ErrBadChannel, channel)
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return nil, fmt.Errorf("origin: RTSP listen address %q: %v (want host:port, e.g. :8554)", listen, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &PublishSource{log: log.With("channel", channel), channel: channel, now: time.Now}
	s.server = &gortsplib.Server{
		Handler:      (*publishHandler)(s),
		RTSPAddress:  listen,
		ReadTimeout:  rtspTimeout,
		WriteTimeout: rtspTimeout,
	}
	if err := s.server.Start(); err != nil {
		return nil, fmt.Errorf("origin: cannot start the RTSP publish server on %s: %w", listen, err)
	}
	s.serverDone = make(chan struct{})
	go func() { // owned by s; ends when the server does, which Close waits for
		s.serverErr = s.server.Wait()
		close(s.serverDone)
	}()
	s.log.Info("waiting for an RTSP publisher", "url", "rtsp://"+s.Addr().String()+"/"+channel)
	return s, nil
}

// Addr is the address the server listens on.
func (s *PublishSource) Addr() net.Addr { return s.server.NetListener().Addr() }

// URL is where a publisher sends the stream, e.g. rtsp://127.0.0.1:8554/live.
func (s *PublishSource) URL() string {
	return "rtsp://" + s.Addr().String() + "/" + s.channel
}

// Close disconnects any publisher and stops the server. It is safe to
// call more than once.
func (s *PublishSource) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.server.Close()
	<-s.serverDone
}

// Run implements Source. It waits for a publisher, calls onDesc with the
// stream's description when the first one announces it, and emits its
// packets and those of later publishers until ctx ends, the server fails,
// or a publisher announces a different stream (ErrDescriptionChanged).
func (s *PublishSource) Run(ctx context.Context, onDesc func(*description.Session) error, emit func(Packet)) error {
	r := &publishRun{
		onDesc: onDesc,
		em:     &serialEmitter{now: s.now, emit: emit},
		failed: make(chan error, 1),
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return fmt.Errorf("%w: the publish server is closed", ErrSourceFailed)
	case s.run != nil:
		s.mu.Unlock()
		return ErrRunning
	}
	s.run = r
	s.mu.Unlock()

	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case err = <-r.failed:
	case <-s.serverDone:
		err = fmt.Errorf("%w: RTSP publish server stopped: %v", ErrSourceFailed, s.serverErr)
	}

	s.mu.Lock()
	s.run = nil
	pub := s.publisher
	s.publisher, s.index = nil, nil
	s.mu.Unlock()
	r.em.close()
	if pub != nil {
		pub.Close()
	}
	return err
}

// publishHandler implements gortsplib's server handler interfaces; it is a
// separate type so PublishSource's method set stays small.
type publishHandler PublishSource

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (h *publishHandler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s := (*PublishSource)(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Session == s.publisher {
		s.publisher, s.index = nil, nil
		s.log.Info("publisher left", "reason", ctx.Error)
	}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe: the origin does
// not serve players.
func (h *publishHandler) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusNotFound}, nil,
		errors.New("origin: this RTSP server only accepts publishers; watch through a swarmtv peer")
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce.
func (h *publishHandler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	s := (*PublishSource)(h)
	refuse := func(code base.StatusCode, err error) (*base.Response, error) {
		s.log.Warn("publisher refused", "remote", ctx.Conn.NetConn().RemoteAddr(), "err", err)
		return &base.Response{StatusCode: code}, err
	}
	if ctx.Path != "/"+s.channel && ctx.Path != "/"+s.channel+"/" {
		return refuse(base.StatusNotFound, fmt.Errorf("origin: no channel at %s; publish to /%s", ctx.Path, s.channel))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.run
	switch {
	case r == nil:
		return refuse(base.StatusServiceUnavailable, errors.New("origin: not ready for a publisher yet"))
	case s.publisher != nil:
		return refuse(base.StatusForbidden, errors.New("origin: another publisher is already sending this channel"))
	case len(ctx.Description.Medias) == 0:
		return refuse(base.StatusBadRequest, ErrNoMedia)
	}
	if s.desc == nil {
		s.desc = ctx.Description
	} else if err := sameStream(s.desc, ctx.Description); err != nil {
		err = fmt.Errorf("%w: %v", ErrDescriptionChanged, err)
		r.fail(err)
		return refuse(base.StatusBadRequest, err)
	}
	if !r.descSent {
		r.descSent = true
		r.em.mu.Lock()
		err := r.onDesc(s.desc)
		r.em.mu.Unlock()
		if err != nil {
			r.fail(err)
			return refuse(base.StatusInternalServerError, err)
		}
	}
	s.publisher = ctx.Session
	s.index = make(map[*description.Media]int, len(ctx.Description.Medias))
	for i, m := range ctx.Description.Medias {
		s.index[m] = i
	}
	s.log.Info("publisher announced", "remote", ctx.Conn.NetConn().RemoteAddr(), "medias", len(ctx.Description.Medias))
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup: only the announced
// publisher may set up, and only over TCP.
func (h *publishHandler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	s := (*PublishSource)(h)
	s.mu.Lock()
	ok := ctx.Session == s.publisher
	s.mu.Unlock()
	if !ok {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil,
			errors.New("origin: SETUP without ANNOUNCE; this server only accepts publishers")
	}
	return &base.Response{StatusCode: base.StatusOK}, nil, nil
}

// OnRecord implements gortsplib.ServerHandlerOnRecord.
func (h *publishHandler) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	s := (*PublishSource)(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Session != s.publisher || s.run == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, errors.New("origin: RECORD from a session that is not the publisher")
	}
	index, em := s.index, s.run.em
	ctx.Session.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		if i, ok := index[m]; ok {
			em.packet(i, pkt)
		}
	})
	s.log.Info("publisher recording")
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnPacketsLost implements gortsplib.ServerHandlerOnPacketsLost.
func (h *publishHandler) OnPacketsLost(ctx *gortsplib.ServerHandlerOnPacketsLostCtx) {
	h.log.Warn("RTP packets lost", "count", ctx.Lost)
}

// OnDecodeError implements gortsplib.ServerHandlerOnDecodeError.
func (h *publishHandler) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	h.log.Warn("RTSP decode error", "err", ctx.Error)
}

// sameStream reports how b's medias differ from a's, or nil.
func sameStream(a, b *description.Session) error {
	if len(a.Medias) != len(b.Medias) {
		return fmt.Errorf("%d medias instead of %d", len(b.Medias), len(a.Medias))
	}
	for i, ma := range a.Medias {
		mb := b.Medias[i]
		if ma.Type != mb.Type || len(ma.Formats) != len(mb.Formats) {
			return fmt.Errorf("media %d is %s with %d formats instead of %s with %d", i, mb.Type, len(mb.Formats), ma.Type, len(ma.Formats))
		}
		for j, fa := range ma.Formats {
			fb := mb.Formats[j]
			switch {
			case fa.Codec() != fb.Codec() || fa.ClockRate() != fb.ClockRate() || fa.PayloadType() != fb.PayloadType():
				return fmt.Errorf("media %d is %s/%d (payload type %d) instead of %s/%d (payload type %d)",
					i, fb.Codec(), fb.ClockRate(), fb.PayloadType(), fa.Codec(), fa.ClockRate(), fa.PayloadType())
			case !maps.Equal(fa.FMTP(), fb.FMTP()):
				return fmt.Errorf("media %d (%s) has different codec parameters: %s instead of %s", i, fb.Codec(), fmtp(fb), fmtp(fa))
			}
		}
	}
	return nil
}

func fmtp(f format.Format) string {
	m := f.FMTP()
	keys := slices.Sorted(maps.Keys(m))
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ";"
		}
		out += k + "=" + m[k]
	}
	return out
}
