package origin

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// rtspTimeout bounds every RTSP request and the silence tolerated from the
// server once playing.
const rtspTimeout = 10 * time.Second

// RTSPSource pulls a live stream from an RTSP server (a camera, an encoder,
// mediamtx, another origin). It does not reconnect: Run returns when the
// stream ends and may be called again to retry.
type RTSPSource struct {
	url       *base.URL
	protocol  *gortsplib.Protocol // nil: UDP first, then TCP
	log       *slog.Logger
	now       func() time.Time
	transport string
}

// NewRTSPSource returns a source that pulls rawURL (rtsp:// or rtsps://)
// over transport "tcp", "udp" or "" (try UDP, fall back to TCP). It checks
// the URL and transport only; connection errors come from Run.
func NewRTSPSource(rawURL, transport string, log *slog.Logger) (*RTSPSource, error) {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v (want rtsp://host[:port]/path)", ErrBadURL, rawURL, err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w %q: no host (want rtsp://host[:port]/path)", ErrBadURL, rawURL)
	}
	s := &RTSPSource{url: u, log: log, now: time.Now, transport: transport}
	switch transport {
	case "tcp":
		p := gortsplib.ProtocolTCP
		s.protocol = &p
	case "udp":
		p := gortsplib.ProtocolUDP
		s.protocol = &p
	case "":
	default:
		return nil, fmt.Errorf("%w, got %q", ErrBadTransport, transport)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("url", u.CloneWithoutCredentials().String())
	return s, nil
}

// Run implements Source.
func (s *RTSPSource) Run(ctx context.Context, onDesc func(*description.Session) error, emit func(Packet)) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &gortsplib.Client{
		Scheme:       s.url.Scheme,
		Host:         s.url.Host,
		Protocol:     s.protocol,
		ReadTimeout:  rtspTimeout,
		WriteTimeout: rtspTimeout,
		OnTransportSwitch: func(err error) {
			s.log.Warn("RTSP transport switched", "reason", err)
		},
		OnPacketsLost: func(lost uint64) {
			s.log.Warn("RTP packets lost", "count", lost)
		},
		OnDecodeError: func(err error) {
			s.log.Warn("RTSP decode error", "err", err)
		},
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("%w: %v", ErrSourceFailed, err)
	}
	em := &serialEmitter{now: s.now, emit: emit}
	stopWatch := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			c.Close()
		case <-stopWatch:
		}
	}()
	defer func() {
		close(stopWatch)
		c.Close()
		wg.Wait()
		em.close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
	}()

	fail := func(step string, err error) error {
		return fmt.Errorf("%w: %s %s: %v", ErrSourceFailed, step, s.url.CloneWithoutCredentials(), err)
	}
	desc, _, err := c.Describe(s.url)
	if err != nil {
		return fail("DESCRIBE", err)
	}
	if len(desc.Medias) == 0 {
		return fmt.Errorf("%w at %s", ErrNoMedia, s.url.CloneWithoutCredentials())
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return fail("SETUP", err)
	}
	index := make(map[*description.Media]int, len(desc.Medias))
	for i, m := range desc.Medias {
		index[m] = i
	}
	if err := onDesc(desc); err != nil {
		return err
	}
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		if i, ok := index[m]; ok {
			em.packet(i, pkt)
		}
	})
	if _, err := c.Play(nil); err != nil {
		return fail("PLAY", err)
	}
	if t := c.Transport(); t != nil && t.Session != nil {
		s.log.Info("pulling RTSP stream", "medias", len(desc.Medias), "transport", t.Session.Protocol)
	}
	return fail("stream", c.Wait())
}
