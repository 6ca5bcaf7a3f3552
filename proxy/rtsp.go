package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/sdpunmarshaler"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// DefaultRTSPAddr is the address an RTSPServer listens on by default.
const DefaultRTSPAddr = "127.0.0.1:8554"

// Limits of the server. The write queue of each reader holds
// writeQueueSize packets; the held GOP is bounded so that it always fits
// into a new reader's queue with room to spare for the live slices.
const (
	writeQueueSize  = 4096 // power of two (gortsplib)
	maxHeldPackets  = writeQueueSize * 3 / 4
	maxHeldDuration = 10 * time.Second
	maxPacketSize   = 1472 // gortsplib's limit for one RTP packet
	maxStartupKept  = 1024 // startup samples kept (oldest dropped)
	maxChannelLen   = 64   // as wire.MaxChannelLen
)

// Errors.
var (
	// ErrRTSPConfig wraps every error NewRTSPServer returns.
	ErrRTSPConfig = errors.New("proxy: invalid RTSP server configuration")
	// ErrDescription wraps the errors SetDescription returns.
	ErrDescription = errors.New("proxy: unusable stream description")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("proxy: RTSP server closed")
)

// RTSPConfig configures an RTSPServer. Zero values take the defaults
// noted.
type RTSPConfig struct {
	// Addr is the RTSP (TCP) listen address. Default DefaultRTSPAddr. A
	// port of 0 picks a free port; Addr and URL report it.
	Addr string
	// Channel is served at path "/<Channel>" (1 to 64 bytes, no '/',
	// '?', '#', spaces or control characters). Required.
	Channel string
	// Logger receives the server's logs. Default: discard.
	Logger *slog.Logger
	// DisableUDP serves SETUP over TCP (interleaved) only.
	DisableUDP bool
	// UDPRTPAddress and UDPRTCPAddress are the UDP addresses RTP and RTCP
	// are sent from: an even port and the next one. Set both or neither.
	// Default: on Addr's host, the first even port above the RTSP port
	// (8556 and 8557 for 8554) if free, else a free pair.
	UDPRTPAddress  string
	UDPRTCPAddress string
}

func (c *RTSPConfig) validate() error {
	if c.Addr == "" {
		c.Addr = DefaultRTSPAddr
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: address %q: %v", ErrRTSPConfig, c.Addr, err)
	}
	if err := validChannel(c.Channel); err != nil {
		return fmt.Errorf("%w: %v", ErrRTSPConfig, err)
	}
	if (c.UDPRTPAddress == "") != (c.UDPRTCPAddress == "") {
		return fmt.Errorf("%w: set both UDPRTPAddress and UDPRTCPAddress, or neither", ErrRTSPConfig)
	}
	if c.UDPRTPAddress != "" {
		rtp, err1 := addrPort(c.UDPRTPAddress)
		rtcp, err2 := addrPort(c.UDPRTCPAddress)
		switch {
		case err1 != nil || err2 != nil:
			return fmt.Errorf("%w: UDP addresses %q, %q: want host:port", ErrRTSPConfig, c.UDPRTPAddress, c.UDPRTCPAddress)
		case rtp%2 != 0 || rtcp != rtp+1:
			return fmt.Errorf("%w: the UDP RTP port must be even and the RTCP port the next one, got %d and %d", ErrRTSPConfig, rtp, rtcp)
		}
	}
	return nil
}

func validChannel(ch string) error {
	if ch == "" || len(ch) > maxChannelLen {
		return fmt.Errorf("channel name must be 1 to %d bytes, got %q", maxChannelLen, ch)
	}
	for _, r := range ch {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("/?#%", r) {
			return fmt.Errorf("channel name %q: %q is not allowed in an RTSP path", ch, r)
		}
	}
	return nil
}

func addrPort(a string) (int, error) {
	_, p, err := net.SplitHostPort(a)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// RTSPStats are an RTSPServer's counters since it started.
type RTSPStats struct {
	Readers        int    // players playing now
	ReadersTotal   uint64 // players that started playing
	ReadersDropped uint64 // players disconnected for being too slow
	BytesServed    uint64 // RTP bytes queued to players
	PacketsServed  uint64 // RTP packets queued to players
	// PacketsUnusable counts packets of played slices that could not be
	// served to anyone: malformed, of an unknown media or payload type,
	// or larger than an RTP packet may be here (1472 bytes).
	PacketsUnusable uint64
	// StartupMS are recent samples (oldest dropped) of a player's PLAY to
	// the first keyframe queued to it, in milliseconds.
	StartupMS []float64
}

// RTSPServer is the RTSP server players open. See the package
// documentation.
type RTSPServer struct {
	cfg  RTSPConfig
	log  *slog.Logger
	path string // "/" + channel

	srv *gortsplib.Server // set by Start
	udp *udpPair          // pre-bound UDP sockets until gortsplib takes them

	// setupMu serializes SETUP requests across connections: gortsplib
	// v5.6.4 reads the other sessions' transport and medias while adding
	// a UDP reader, unsynchronized with their own SETUPs. Locked in
	// OnRequest and unlocked in OnResponse, both on the requesting
	// connection's goroutine, with gortsplib's handling in between.
	setupMu     sync.Mutex
	setupHolder *gortsplib.ServerConn // guarded by mu

	mu      sync.Mutex
	started bool
	closed  bool
	sdp     []byte                               // guarded by mu; nil until SetDescription
	st      *streamState                         // guarded by mu; nil until SetDescription
	readers map[*gortsplib.ServerSession]*reader // guarded by mu; playing sessions
	stats   RTSPStats                            // guarded by mu; Readers and StartupMS kept separately
	startup []float64                            // guarded by mu; ring of startup samples
	startAt int                                  // guarded by mu; next slot of startup once full
}

// NewRTSPServer validates cfg and returns a server; Start opens its
// sockets.
func NewRTSPServer(cfg RTSPConfig) (*RTSPServer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &RTSPServer{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "rtsp", "channel", cfg.Channel),
		path:    "/" + cfg.Channel,
		readers: make(map[*gortsplib.ServerSession]*reader),
	}, nil
}

// Start opens the listeners and starts serving.
func (s *RTSPServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.started:
		return errors.New("proxy: RTSP server already started")
	}

	srv := &gortsplib.Server{
		Handler:        &rtspHandler{s},
		RTSPAddress:    s.cfg.Addr,
		WriteQueueSize: writeQueueSize,
		MaxPacketSize:  maxPacketSize,
		// Readers send their own, exact and in order (see reader).
		DisableRTCPSenderReports: true,
	}
	if !s.cfg.DisableUDP {
		if s.cfg.UDPRTPAddress != "" {
			srv.UDPRTPAddress, srv.UDPRTCPAddress = s.cfg.UDPRTPAddress, s.cfg.UDPRTCPAddress
		} else {
			host, port, _ := net.SplitHostPort(s.cfg.Addr)
			p, _ := strconv.Atoi(port)
			pair, err := listenUDPPair(host, p)
			if err != nil {
				return fmt.Errorf("proxy: RTSP server: UDP ports: %w", err)
			}
			s.udp = pair
			srv.UDPRTPAddress, srv.UDPRTCPAddress = pair.rtpAddr, pair.rtcpAddr
			srv.ListenPacket = pair.listenPacket
		}
	}
	if err := srv.Start(); err != nil {
		if s.udp != nil {
			s.udp.closeUntaken()
		}
		return fmt.Errorf("proxy: RTSP server on %s: %w", s.cfg.Addr, err)
	}
	s.srv = srv
	s.started = true
	if s.sdp != nil {
		if err := s.openStreamLocked(); err != nil {
			s.log.Error("stream description refused", "err", err)
		}
	}
	s.log.Info("RTSP server listening", "url", s.urlLocked(), "udp", !s.cfg.DisableUDP)
	return nil
}

// Addr returns the address the server listens on ("" before Start).
func (s *RTSPServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrLocked()
}

func (s *RTSPServer) addrLocked() string {
	if s.srv == nil {
		return ""
	}
	return s.srv.NetListener().Addr().String()
}

// URL returns the URL players open, rtsp://127.0.0.1:PORT/<channel>
// ("" before Start).
func (s *RTSPServer) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.urlLocked()
}

func (s *RTSPServer) urlLocked() string {
	a := s.addrLocked()
	if a == "" {
		return ""
	}
	host, port, _ := net.SplitHostPort(a)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "rtsp://" + net.JoinHostPort(host, port) + s.path
}

// SetDescription sets the origin's session description (SDP). Before it
// is set DESCRIBE answers 503. Setting the same description again does
// nothing; a different one resets the stream: players are disconnected
// (they reconnect and get the new description) and the held GOP is
// dropped.
func (s *RTSPServer) SetDescription(sdp []byte) error {
	desc, err := parseSDP(sdp)
	if err != nil {
		return err
	}
	if _, err := newStreamInfo(desc); err != nil {
		return err
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if bytes.Equal(s.sdp, sdp) {
		s.mu.Unlock()
		return nil
	}
	old := s.st
	s.st = nil
	s.sdp = bytes.Clone(sdp)
	if s.started {
		err = s.openStreamLocked()
	}
	s.mu.Unlock()

	if old != nil {
		s.log.Info("stream description changed; disconnecting players")
		old.stream.Close() // closes the sessions set up on it
	}
	return err
}

// parseSDP parses an SDP into a description.
func parseSDP(b []byte) (*description.Session, error) {
	sd, err := sdpunmarshaler.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDescription, err)
	}
	var desc description.Session
	if err := desc.Unmarshal2(sd); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDescription, err)
	}
	if len(desc.Medias) == 0 || len(desc.Medias) > 256 {
		return nil, fmt.Errorf("%w: %d medias, want 1 to 256", ErrDescription, len(desc.Medias))
	}
	return &desc, nil
}

// openStreamLocked creates the gortsplib stream for s.sdp. The server
// must be started.
func (s *RTSPServer) openStreamLocked() error {
	desc, err := parseSDP(s.sdp)
	if err != nil {
		return err
	}
	st, err := newStreamInfo(desc)
	if err != nil {
		return err
	}
	st.stream = &gortsplib.ServerStream{Server: s.srv, Desc: desc}
	if err := st.stream.Initialize(); err != nil {
		return fmt.Errorf("%w: %v", ErrDescription, err)
	}
	s.st = st
	s.log.Info("stream description set", "medias", len(desc.Medias), "keyframes", st.keyed)
	return nil
}

// WriteSlice serves one played slice to every player. Slices must come in
// playout order. It never blocks on a player.
func (s *RTSPServer) WriteSlice(sl swarm.Slice) {
	var drop []*gortsplib.ServerSession

	s.mu.Lock()
	now := time.Now()
	st := s.st
	if s.closed || st == nil {
		s.mu.Unlock()
		return
	}
	out, unusable := st.prepare(&sl)
	s.stats.PacketsUnusable += uint64(unusable)
	st.hold(out)
	for ss, r := range s.readers {
		if r.st != st {
			continue
		}
		if !r.writeSlice(out, now, s) {
			drop = append(drop, ss)
			delete(s.readers, ss)
			s.stats.ReadersDropped++
		}
	}
	s.stats.Readers = len(s.readers)
	s.mu.Unlock()

	for _, ss := range drop {
		s.log.Warn("player too slow; disconnecting it", "remote", remoteOf(ss))
		ss.Close()
	}
}

// Stats returns the server's counters.
func (s *RTSPServer) Stats() RTSPStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Readers = len(s.readers)
	out.StartupMS = make([]float64, 0, len(s.startup))
	out.StartupMS = append(out.StartupMS, s.startup[s.startAt:]...)
	out.StartupMS = append(out.StartupMS, s.startup[:s.startAt]...)
	return out
}

// addStartupLocked records a startup sample.
func (s *RTSPServer) addStartupLocked(d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	if len(s.startup) < maxStartupKept {
		s.startup = append(s.startup, ms)
		return
	}
	s.startup[s.startAt] = ms
	s.startAt = (s.startAt + 1) % maxStartupKept
}

// Close disconnects every player, closes the listeners and waits for the
// server's goroutines.
func (s *RTSPServer) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	st, srv := s.st, s.srv
	s.st = nil
	s.mu.Unlock()

	if st != nil {
		st.stream.Close()
	}
	if srv != nil {
		srv.Close() // waits; handlers take s.mu, so not held here
	} else if s.udp != nil {
		s.udp.closeUntaken()
	}
	s.mu.Lock()
	clear(s.readers)
	s.mu.Unlock()
}

func remoteOf(ss *gortsplib.ServerSession) string {
	for _, c := range ss.Conns() {
		return c.NetConn().RemoteAddr().String()
	}
	return ""
}

// rtspHandler implements gortsplib's server handler interfaces for s.
type rtspHandler struct{ s *RTSPServer }

func status(code base.StatusCode, msg string) *base.Response {
	return &base.Response{StatusCode: code, StatusMessage: msg}
}

// streamFor returns the stream to serve at path, or the response refusing
// the request.
func (s *RTSPServer) streamFor(path string) (*streamState, *base.Response) {
	if path != s.path {
		return nil, status(base.StatusNotFound, "Not Found: this proxy serves only "+s.path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return nil, status(base.StatusServiceUnavailable, "Service Unavailable: channel not on air yet, retry shortly")
	}
	return s.st, nil
}

// OnConnOpen implements gortsplib.ServerHandlerOnConnOpen.
func (h *rtspHandler) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	h.s.log.Debug("player connected", "remote", ctx.Conn.NetConn().RemoteAddr().String())
}

// OnConnClose implements gortsplib.ServerHandlerOnConnClose.
func (h *rtspHandler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.s.log.Debug("player disconnected", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "err", ctx.Error)
}

// OnRequest implements gortsplib.ServerHandlerOnRequest.
func (h *rtspHandler) OnRequest(sc *gortsplib.ServerConn, req *base.Request) {
	if req.Method != base.Setup {
		return
	}
	h.s.setupMu.Lock()
	h.s.mu.Lock()
	h.s.setupHolder = sc
	h.s.mu.Unlock()
}

// OnResponse implements gortsplib.ServerHandlerOnResponse.
func (h *rtspHandler) OnResponse(sc *gortsplib.ServerConn, _ *base.Response) {
	h.s.mu.Lock()
	held := h.s.setupHolder == sc
	if held {
		h.s.setupHolder = nil
	}
	h.s.mu.Unlock()
	if held {
		h.s.setupMu.Unlock()
	}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (h *rtspHandler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	st, refuse := h.s.streamFor(ctx.Path)
	if refuse != nil {
		h.s.log.Debug("DESCRIBE refused", "path", ctx.Path, "status", refuse.StatusCode)
		return refuse, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st.stream, nil
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce: publishing to
// a viewer's proxy is refused.
func (h *rtspHandler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	h.s.log.Warn("ANNOUNCE refused: this server only plays", "path", ctx.Path)
	return status(base.StatusMethodNotAllowed, "Method Not Allowed: this server only plays"), nil
}

// OnRecord implements gortsplib.ServerHandlerOnRecord (refused; not
// reachable without ANNOUNCE).
func (h *rtspHandler) OnRecord(*gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	return status(base.StatusMethodNotAllowed, "Method Not Allowed: this server only plays"), nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (h *rtspHandler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	st, refuse := h.s.streamFor(ctx.Path)
	if refuse != nil {
		return refuse, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay. It registers the
// session as a reader and queues the held GOP for it; it runs on the
// session's goroutine, before gortsplib starts the session's writer.
func (h *rtspHandler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	s := h.s
	if _, refuse := s.streamFor(ctx.Path); refuse != nil {
		return refuse, nil
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.readers[ctx.Session]; ok {
		return &base.Response{StatusCode: base.StatusOK}, nil // a second PLAY
	}
	st := s.st
	if st == nil || s.closed || ctx.Session.Stream() != st.stream {
		return status(base.StatusServiceUnavailable, "Service Unavailable: the stream was reset, reconnect"), nil
	}
	r := newReader(ctx.Session, st, now)
	if !r.start(now, s) {
		s.stats.ReadersDropped++
		return status(base.StatusServiceUnavailable, "Service Unavailable: could not queue the stream"), nil
	}
	s.readers[ctx.Session] = r
	s.stats.ReadersTotal++
	s.stats.Readers = len(s.readers)
	s.log.Info("player playing", "remote", ctx.Conn.NetConn().RemoteAddr().String(),
		"transport", ctx.Session.Transport().Protocol.String(), "held_slices", len(st.gop))
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (h *rtspHandler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s := h.s
	s.mu.Lock()
	_, ok := s.readers[ctx.Session]
	delete(s.readers, ctx.Session)
	s.stats.Readers = len(s.readers)
	s.mu.Unlock()
	if ok {
		s.log.Info("player stopped", "err", ctx.Error)
	}
}

// OnStreamWriteError implements gortsplib.ServerHandlerOnStreamWriteError
// (the stream itself is never written to; this keeps gortsplib from
// logging on its own).
func (h *rtspHandler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	h.s.log.Debug("stream write error", "err", ctx.Error)
}

// OnDecodeError implements gortsplib.ServerHandlerOnDecodeError.
func (h *rtspHandler) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	h.s.log.Debug("undecodable packet from player", "err", ctx.Error)
}

// OnPacketsLost implements gortsplib.ServerHandlerOnPacketsLost.
func (h *rtspHandler) OnPacketsLost(ctx *gortsplib.ServerHandlerOnPacketsLostCtx) {
	h.s.log.Debug("packets lost", "lost", ctx.Lost)
}
