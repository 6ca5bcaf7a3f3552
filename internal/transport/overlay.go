package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
	"github.com/swarmtv/swarmtv/overlay"
)

// The overlay driver runs an overlay.Node on an Endpoint, the way Driver
// runs a swarm.Node: one goroutine owns the core; stream readers, senders,
// public methods and one timer from Node.NextDeadline hand it work.
//
// A ring member's overlay.Peer is its ID (OverlayID of its key
// fingerprint, so a member cannot claim a place it does not own) and the
// address "nodeid@host:port" (OverlayAddr). Messages to a member go over
// one stream per member opened with an OverlayHello, on a connection the
// member opened to us if there is one (that is how a member behind a NAT
// is reached), else on one the driver dials. A member whose dial or
// stream fails, or whose connection dies (QUIC liveness: keep-alives every
// KeepAlivePeriod, idle timeout MaxIdleTimeout), is reported to the core
// with NodeFailed. A sender of malformed overlay frames, or of a hello
// whose ID is not its key's, is cut off (CodeProtocol).

// Overlay timing and limits.
const (
	DefaultOverlayQueue = 256              // messages waiting per member
	overlayDialTimeout  = 3 * time.Second  // dial and stream open
	overlayIdle         = 30 * time.Second // an unused stream (and dialed connection) closes
	overlayIdleReason   = "overlay idle"   // close reason that is no failure
)

// ErrOverlayAddr is returned for an overlay address that is not
// "nodeid@host:port".
var ErrOverlayAddr = errors.New("transport: overlay address must be nodeid@host:port")

// OverlayID is the ring position of the node with key fingerprint id: its
// first 64 bits. It is 0 for an ID that is not hex.
func OverlayID(id swarm.NodeID) overlay.ID {
	s := string(id)
	if len(s) > 16 {
		s = s[:16]
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0
	}
	return overlay.ID(v)
}

// OverlayPeer is the ring member for the node id reachable at hostport.
func OverlayPeer(id swarm.NodeID, hostport string) overlay.Peer {
	return overlay.Peer{ID: OverlayID(id), Addr: string(id) + "@" + hostport}
}

// ParseOverlayPeer splits a member's address into the transport Peer to
// dial, and checks that its ring ID is the one its key gives.
func ParseOverlayPeer(p overlay.Peer) (Peer, error) {
	id, hostport, ok := strings.Cut(p.Addr, "@")
	if !ok || id == "" || hostport == "" {
		return Peer{}, fmt.Errorf("%w: %q", ErrOverlayAddr, p.Addr)
	}
	if OverlayID(swarm.NodeID(id)) != p.ID {
		return Peer{}, fmt.Errorf("%w: %q does not match ring ID %v", ErrOverlayAddr, p.Addr, p.ID)
	}
	return Peer{ID: swarm.NodeID(id), Addr: hostport}, nil
}

// OverlayConfig configures an Overlay driver.
type OverlayConfig struct {
	// Node is the core the driver owns from NewOverlay on. Its Self must
	// be OverlayPeer(Endpoint.ID(), the advertised address). Required.
	Node *overlay.Node
	// Endpoint carries the connections. Required; the caller closes it
	// after the driver.
	Endpoint *Endpoint
	// Channel names the overlay (one per channel). Required.
	Channel string
	// Logger receives the driver's logs. Required.
	Logger *slog.Logger
	// Now is the clock fed to the core; nil means time.Now.
	Now func() time.Time
	// Accept makes the driver accept the Endpoint's incoming connections
	// itself: set it when no Driver runs on the Endpoint. Otherwise give
	// the Overlay to DriverConfig.Overlay, which hands it overlay streams.
	Accept bool
	// OnEvent is called from the owner goroutine for every event of the
	// core (after the driver's own handling); nil drops them. It must not
	// call the Overlay's blocking methods.
	OnEvent func(overlay.Event)
	// Info returns the channel's description for a newcomer that asks
	// (FetchChannelInfo: a viewer bootstrapping while the tracker is
	// unreachable); nil, or a nil result, refuses. Called from stream
	// goroutines: it must be safe for concurrent use.
	Info func() []byte
	// Queue is the per-member send queue in messages (default
	// DefaultOverlayQueue); messages beyond it are dropped (the overlay
	// tolerates loss).
	Queue int
}

func (c *OverlayConfig) validate() error {
	switch {
	case c.Node == nil:
		return errors.New("transport: OverlayConfig.Node is nil")
	case c.Endpoint == nil:
		return errors.New("transport: OverlayConfig.Endpoint is nil")
	case c.Logger == nil:
		return errors.New("transport: OverlayConfig.Logger is nil")
	case c.Channel == "" || len(c.Channel) > wire.MaxChannelLen:
		return fmt.Errorf("transport: OverlayConfig.Channel %q: want 1..%d bytes", c.Channel, wire.MaxChannelLen)
	case c.Queue < 0:
		return fmt.Errorf("transport: OverlayConfig.Queue %d is negative", c.Queue)
	}
	self := c.Node.Self()
	p, err := ParseOverlayPeer(self)
	if err != nil {
		return fmt.Errorf("transport: overlay node's Self: %w", err)
	}
	if p.ID != c.Endpoint.ID() {
		return fmt.Errorf("transport: overlay node's Self names %s, the endpoint is %s", p.ID, c.Endpoint.ID())
	}
	return nil
}

// Overlay runs an overlay.Node on an Endpoint. See the comment above
// OverlayConfig.
type Overlay struct {
	cfg  OverlayConfig
	ep   *Endpoint
	log  *slog.Logger
	now  func() time.Time
	self overlay.Peer

	ctx    context.Context
	cancel context.CancelFunc
	ops    chan func()
	wg     sync.WaitGroup

	// Owned by the Run goroutine.
	node    *overlay.Node
	senders map[overlay.ID]*ovSender
	lookups map[uint64]chan overlay.LookupDone

	mu      sync.Mutex
	running bool
	stopped bool
	runDone chan struct{}
	conns   map[swarm.NodeID]*Conn // a live connection per node usable for overlay streams (guarded by mu)
	dialed  map[*Conn]bool         // connections this driver dialed (guarded by mu)
	sent    uint64                 // messages handed to a stream (guarded by mu)
	dropped uint64                 // messages dropped: queue full or member unreachable (guarded by mu)
}

// ovSender writes the messages for one member. Its queue is written only
// by the Run goroutine.
type ovSender struct {
	peer overlay.Peer
	to   Peer
	q    chan []byte
}

// NewOverlay checks cfg and makes an Overlay; Run starts it.
func NewOverlay(cfg OverlayConfig) (*Overlay, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Queue == 0 {
		cfg.Queue = DefaultOverlayQueue
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Overlay{
		cfg:     cfg,
		ep:      cfg.Endpoint,
		log:     cfg.Logger.With("node", cfg.Endpoint.ID(), "ring", cfg.Node.Self().ID),
		now:     now,
		self:    cfg.Node.Self(),
		ctx:     ctx,
		cancel:  cancel,
		ops:     make(chan func(), 256),
		node:    cfg.Node,
		senders: make(map[overlay.ID]*ovSender),
		lookups: make(map[uint64]chan overlay.LookupDone),
		runDone: make(chan struct{}),
		conns:   make(map[swarm.NodeID]*Conn),
		dialed:  make(map[*Conn]bool),
	}, nil
}

// Self returns the node's ring member.
func (o *Overlay) Self() overlay.Peer { return o.self }

// Run runs the core until ctx ends or Close is called; like Driver.Run,
// every goroutine it started has ended when it returns.
func (o *Overlay) Run(ctx context.Context) error {
	o.mu.Lock()
	if o.stopped {
		o.mu.Unlock()
		return ErrClosed
	}
	if o.running {
		o.mu.Unlock()
		return errors.New("transport: Overlay.Run called twice")
	}
	o.running = true
	o.mu.Unlock()
	defer close(o.runDone)
	stop := context.AfterFunc(ctx, o.cancel)
	defer stop()
	defer o.shutdown()

	if o.cfg.Accept {
		o.wg.Go(o.acceptLoop)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	o.node.Tick(o.now())
	o.process()
	o.arm(timer)
	for {
		select {
		case <-o.ctx.Done():
			return ctx.Err()
		case op := <-o.ops:
			op()
		case <-timer.C:
			o.node.Tick(o.now())
		}
		o.process()
		o.arm(timer)
	}
}

func (o *Overlay) arm(t *time.Timer) {
	dl := o.node.NextDeadline()
	if dl.IsZero() {
		t.Stop()
		return
	}
	t.Reset(max(dl.Sub(o.now()), 0))
}

// Close stops the driver and waits for Run to return. The Endpoint stays
// open.
func (o *Overlay) Close() error {
	o.mu.Lock()
	o.stopped = true
	running := o.running
	o.mu.Unlock()
	o.cancel()
	if running {
		<-o.runDone
	}
	return nil
}

func (o *Overlay) shutdown() {
	o.cancel()
	o.mu.Lock()
	var mine []*Conn
	for c := range o.dialed {
		mine = append(mine, c)
	}
	o.mu.Unlock()
	for _, c := range mine {
		c.CloseWithError(CodeNormal, "shutting down")
	}
	o.wg.Wait()
	for _, ch := range o.lookups {
		close(ch)
	}
	o.lookups = nil
	o.mu.Lock()
	o.stopped = true
	o.mu.Unlock()
}

// do hands f to the Run goroutine; false when the driver is stopping.
func (o *Overlay) do(f func()) bool {
	select {
	case o.ops <- f:
		return true
	case <-o.ctx.Done():
		return false
	}
}

// call runs f on the Run goroutine and waits for it; false when the
// driver stopped first.
func (o *Overlay) call(f func()) bool {
	done := make(chan struct{})
	if !o.do(func() { f(); close(done) }) {
		return false
	}
	select {
	case <-done:
		return true
	case <-o.ctx.Done():
		return false
	}
}

// process acts on what the core has ready. Run goroutine only.
func (o *Overlay) process() {
	for o.node.HasReady() {
		rd := o.node.Ready()
		for _, env := range rd.Messages {
			o.send(env)
		}
		for _, ev := range rd.Events {
			switch ev := ev.(type) {
			case overlay.LookupDone:
				if ch := o.lookups[ev.Req]; ch != nil {
					ch <- ev
					delete(o.lookups, ev.Req)
				}
			case overlay.Joined:
				o.log.Info("overlay joined", "succ", ev.Succ.String())
			case overlay.JoinFailed:
				o.log.Warn("overlay join failed", "via", ev.Via.String())
			case overlay.MemberFailed:
				o.log.Info("overlay member failed", "member", ev.Peer.String())
			case overlay.RingMerge:
				o.log.Info("overlay rings merging", "contact", ev.Contact.String(), "succ", ev.Succ.String())
			}
			if o.cfg.OnEvent != nil {
				o.cfg.OnEvent(ev)
			}
		}
	}
}

// send queues one message for its member, starting its sender.
func (o *Overlay) send(env overlay.Envelope) {
	if env.To.ID == o.self.ID {
		o.node.Step(o.now(), o.self, env.Msg)
		return
	}
	b, err := wire.AppendOverlay(nil, env.Msg)
	if err != nil {
		o.log.Warn("overlay message not encodable; dropped", "to", env.To.String(), "err", err)
		return
	}
	s := o.senders[env.To.ID]
	if s == nil || s.peer != env.To {
		to, err := ParseOverlayPeer(env.To)
		if err != nil {
			o.log.Info("overlay member with a bad address", "member", env.To.String(), "err", err)
			o.node.NodeFailed(o.now(), env.To.ID)
			return
		}
		if s != nil {
			close(s.q) // the member moved: its old sender ends
		}
		s = &ovSender{peer: env.To, to: to, q: make(chan []byte, o.cfg.Queue)}
		o.senders[env.To.ID] = s
		o.wg.Go(func() { o.runSender(s) })
	}
	select {
	case s.q <- b:
	default:
		o.count(0, 1)
	}
}

func (o *Overlay) count(sent, dropped uint64) {
	o.mu.Lock()
	o.sent += sent
	o.dropped += dropped
	o.mu.Unlock()
}

// runSender opens a stream to the member and writes its queue, until the
// queue closes, the stream has been idle for overlayIdle, or it fails.
func (o *Overlay) runSender(s *ovSender) {
	err := o.sendLoop(s)
	if o.ctx.Err() != nil {
		return
	}
	o.do(func() {
		if o.senders[s.peer.ID] != s {
			return // replaced
		}
		delete(o.senders, s.peer.ID)
		if n := len(s.q); n > 0 {
			o.count(0, uint64(n))
		}
		if err != nil {
			o.log.Info("overlay member unreachable", "member", s.peer.String(), "err", err)
			o.node.NodeFailed(o.now(), s.peer.ID)
		}
	})
}

// sendLoop returns nil when the sender ended without a failure.
func (o *Overlay) sendLoop(s *ovSender) error {
	var (
		c  *Conn
		st *quic.Stream
	)
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	idle := time.NewTimer(overlayIdle)
	defer idle.Stop()
	for {
		var b []byte
		select {
		case <-o.ctx.Done():
			return nil
		case m, ok := <-s.q:
			if !ok {
				return nil
			}
			b = m
		case <-idle.C:
			// Idle: hand back unless a message raced in.
			keep := false
			if !o.call(func() {
				keep = len(s.q) > 0 || o.senders[s.peer.ID] != s
				if !keep {
					delete(o.senders, s.peer.ID)
				}
			}) {
				return nil
			}
			if keep {
				idle.Reset(overlayIdle)
				continue
			}
			if c != nil {
				o.closeIfIdle(c)
			}
			return nil
		}
		if st == nil || c.Context().Err() != nil {
			var err error
			c, st, err = o.openStream(s.to)
			if err != nil {
				if gracefulClose(err) {
					return nil
				}
				return err
			}
		}
		if err := wire.WriteFrame(st, wire.FrameOverlay, b); err != nil {
			st = nil
			if c.Context().Err() != nil && gracefulClose(context.Cause(c.Context())) {
				return nil
			}
			return fmt.Errorf("write: %w", err)
		}
		o.count(1, 0)
		idle.Reset(overlayIdle)
	}
}

// gracefulClose reports whether err is a connection closed by its remote
// for idleness (no failure of the member).
func gracefulClose(err error) bool {
	var ae *quic.ApplicationError
	return errors.As(err, &ae) && ae.Remote && ae.ErrorMessage == overlayIdleReason
}

// openStream finds or dials a connection to p and opens an overlay stream.
func (o *Overlay) openStream(p Peer) (*Conn, *quic.Stream, error) {
	ctx, cancel := context.WithTimeout(o.ctx, overlayDialTimeout)
	defer cancel()
	c, err := o.conn(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("open stream: %w", err)
	}
	hello := wire.OverlayHello{Channel: o.cfg.Channel, From: o.self}
	if err := wire.WriteFrame(st, wire.FrameOverlayHello, hello.Append(nil)); err != nil {
		st.CancelWrite(quic.StreamErrorCode(CodeNormal))
		return nil, nil, fmt.Errorf("write hello: %w", err)
	}
	st.CancelRead(quic.StreamErrorCode(CodeNormal)) // nothing comes back on it
	return c, st, nil
}

// conn returns a live connection to p: one the node opened to us or we
// dialed before, else a new one.
func (o *Overlay) conn(ctx context.Context, p Peer) (*Conn, error) {
	o.mu.Lock()
	if c := o.conns[p.ID]; c != nil && c.Context().Err() == nil {
		o.mu.Unlock()
		return c, nil
	}
	o.mu.Unlock()
	c, err := o.ep.Dial(ctx, p.Addr, p.ID)
	if err != nil {
		return nil, err
	}
	if !o.adopt(c, true) {
		c.CloseWithError(CodeNormal, "shutting down")
		return nil, ErrClosed
	}
	return c, nil
}

// adopt records c as usable for overlay streams to its node. A dialed
// connection is served (its remote may open overlay streams on it) and
// closed by this driver. It reports false when the driver is stopping.
func (o *Overlay) adopt(c *Conn, dialed bool) bool {
	o.mu.Lock()
	if o.ctx.Err() != nil {
		o.mu.Unlock()
		return false
	}
	if old := o.conns[c.Remote()]; old == nil || old.Context().Err() != nil || dialed {
		o.conns[c.Remote()] = c
	}
	if dialed {
		o.dialed[c] = true
	}
	o.mu.Unlock()
	if dialed {
		o.wg.Go(func() { o.serveConn(c) })
	}
	return true
}

// closeIfIdle closes a connection this driver dialed once its sender is
// done with it.
func (o *Overlay) closeIfIdle(c *Conn) {
	o.mu.Lock()
	mine := o.dialed[c]
	if mine {
		delete(o.dialed, c)
		if o.conns[c.Remote()] == c {
			delete(o.conns, c.Remote())
		}
	}
	o.mu.Unlock()
	if mine {
		c.CloseWithError(CodeNormal, overlayIdleReason)
	}
}

// acceptLoop accepts the Endpoint's connections (Accept mode).
func (o *Overlay) acceptLoop() {
	for {
		c, err := o.ep.Accept(o.ctx)
		if err != nil {
			if o.ctx.Err() == nil {
				o.log.Error("overlay accept failed; no more incoming connections", "err", err)
			}
			return
		}
		o.wg.Go(func() { o.serveConn(c) })
	}
}

// serveConn serves the overlay streams c's remote opens, until c closes,
// and reports a connection that died to the core. c is the driver's own
// (dialed, or accepted in Accept mode): it is closed when the driver stops.
func (o *Overlay) serveConn(c *Conn) {
	defer func() {
		if o.ctx.Err() != nil {
			c.CloseWithError(CodeNormal, "shutting down")
		}
		o.connDone(c)
	}()
	for {
		s, err := c.AcceptStream(o.ctx)
		if err != nil {
			return
		}
		o.wg.Go(func() {
			br := bufio.NewReaderSize(s, 4<<10)
			f, err := wire.ReadFrame(br, smallFrameMax)
			if err != nil {
				if isGarbage(err) {
					o.protocolError(c, err)
				}
				s.CancelRead(quic.StreamErrorCode(CodeNormal))
				s.CancelWrite(quic.StreamErrorCode(CodeNormal))
				return
			}
			if f.Type != wire.FrameOverlayHello && f.Type != wire.FrameOverlayInfo {
				o.protocolError(c, fmt.Errorf("%v frame on an overlay-only connection", f.Type))
				return
			}
			o.ServeOverlayStream(c, s, br, f)
		})
	}
}

// connDone forgets a closed connection and, when it died (was not closed
// by either side on purpose), reports its node failed.
func (o *Overlay) connDone(c *Conn) {
	o.mu.Lock()
	delete(o.dialed, c)
	if o.conns[c.Remote()] == c {
		delete(o.conns, c.Remote())
	}
	o.mu.Unlock()
	if o.ctx.Err() != nil {
		return
	}
	cause := context.Cause(c.Context())
	var ae *quic.ApplicationError
	if errors.As(cause, &ae) && (!ae.Remote || ae.ErrorMessage == overlayIdleReason) {
		return // closed on purpose by us, or by the remote for idleness
	}
	id := OverlayID(c.Remote())
	o.do(func() { o.node.NodeFailed(o.now(), id) })
}

func (o *Overlay) protocolError(c *Conn, err error) {
	o.log.Warn("closing connection: overlay protocol error", "peer", c.Remote(), "err", err)
	c.CloseWithError(CodeProtocol, truncate(err.Error(), 200))
}

// ServeOverlayStream serves an overlay stream whose first frame (an
// OverlayHello, or an OverlayInfo request) has been read into first: it checks the hello and hands
// every message to the core until the stream ends. A Driver given this
// Overlay (DriverConfig.Overlay) calls it for the streams it accepts.
func (o *Overlay) ServeOverlayStream(c *Conn, s *quic.Stream, br *bufio.Reader, first wire.Frame) {
	if first.Type == wire.FrameOverlayInfo {
		o.serveInfo(c, s, first)
		return
	}
	stop := context.AfterFunc(o.ctx, func() { s.CancelRead(quic.StreamErrorCode(CodeNormal)) })
	defer stop()
	defer s.CancelRead(quic.StreamErrorCode(CodeNormal))
	s.CancelWrite(quic.StreamErrorCode(CodeNormal)) // nothing goes back on it
	h, err := wire.ParseOverlayHello(first.Payload)
	if err != nil {
		o.protocolError(c, err)
		return
	}
	if h.Channel != o.cfg.Channel {
		o.log.Info("overlay stream for another channel refused", "peer", c.Remote(), "channel", h.Channel)
		return
	}
	from, err := ParseOverlayPeer(h.From)
	if err != nil || from.ID != c.Remote() {
		o.protocolError(c, fmt.Errorf("overlay hello names %q, the connection's key is %s", h.From.Addr, c.Remote()))
		return
	}
	if !o.adopt(c, false) {
		return
	}
	for {
		f, err := wire.ReadFrame(br, wire.MaxOverlayLen)
		if err != nil {
			if isGarbage(err) {
				o.protocolError(c, err)
			}
			return
		}
		if f.Type != wire.FrameOverlay {
			o.protocolError(c, fmt.Errorf("%v frame on an overlay stream", f.Type))
			return
		}
		m, err := wire.ParseOverlay(f.Payload)
		if err != nil {
			o.protocolError(c, err)
			return
		}
		if !o.do(func() { o.node.Step(o.now(), h.From, m) }) {
			return
		}
	}
}

// Join enters the ring via a known member.
func (o *Overlay) Join(via overlay.Peer) {
	o.do(func() { o.node.Join(o.now(), via) })
}

// JoinAddr enters the ring through the node at hostport, whose key is not
// known beforehand (a --bootstrap address): it connects, learns the
// node's ID from the handshake and joins through it. It returns the
// member it joined through.
func (o *Overlay) JoinAddr(ctx context.Context, hostport string) (overlay.Peer, error) {
	ctx, cancel := context.WithTimeout(ctx, overlayDialTimeout)
	defer cancel()
	c, err := o.ep.DialAny(ctx, hostport)
	if err != nil {
		return overlay.Peer{}, err
	}
	if c.Remote() == o.ep.ID() {
		c.CloseWithError(CodeNormal, "")
		return overlay.Peer{}, fmt.Errorf("transport: bootstrap %s is this node", hostport)
	}
	if !o.adopt(c, true) {
		c.CloseWithError(CodeNormal, "shutting down")
		return overlay.Peer{}, ErrClosed
	}
	via := OverlayPeer(c.Remote(), hostport)
	o.Join(via)
	return via, nil
}

// Contact tells the core of a member it may not know (a tracker hint, a
// remembered peer); a member of another ring starts a merge.
func (o *Overlay) Contact(p overlay.Peer) {
	o.do(func() { o.node.Contact(o.now(), p) })
}

// SetLocal sets the node's own figures for the gossip estimates.
func (o *Overlay) SetLocal(upload, health float64) {
	o.do(func() { o.node.SetLocal(upload, health) })
}

// SetOffers sets what the node offers per stripe for partner discovery
// (see overlay.Node.SetOffers).
func (o *Overlay) SetOffers(offers []overlay.Offer) {
	offers = slices.Clone(offers)
	o.do(func() { o.node.SetOffers(offers) })
}

// Offers returns the fresh offers of room the node heard for stripe,
// best first (see overlay.Node.Offers).
func (o *Overlay) Offers(stripe uint8) []overlay.Offer {
	var out []overlay.Offer
	o.call(func() { out = o.node.Offers(o.now(), stripe) })
	return out
}

// Tell sends the node's own offers to p (see overlay.Node.Tell): a child
// tells its parent and hears the parent's depth back (Heard).
func (o *Overlay) Tell(p overlay.Peer) {
	o.do(func() { o.node.Tell(o.now(), p) })
}

// TellID sends the node's own offers at once to member id, when its
// address is known (see overlay.Node.TellID): a parent whose depth
// changed tells its children.
func (o *Overlay) TellID(id overlay.ID) {
	o.do(func() { o.node.TellID(o.now(), id) })
}

// Heard returns the own offers member id last sent the node directly
// (see overlay.Node.Heard).
func (o *Overlay) Heard(id overlay.ID) ([]overlay.Offer, bool) {
	var (
		out []overlay.Offer
		ok  bool
	)
	o.call(func() { out, ok = o.node.Heard(o.now(), id) })
	return out, ok
}

// Lookup finds the member responsible for key.
func (o *Overlay) Lookup(ctx context.Context, key overlay.ID) (overlay.LookupDone, error) {
	ch := make(chan overlay.LookupDone, 1)
	if !o.do(func() { o.lookups[o.node.Lookup(o.now(), key)] = ch }) {
		return overlay.LookupDone{}, ErrClosed
	}
	select {
	case res, ok := <-ch:
		if !ok {
			return overlay.LookupDone{}, ErrClosed
		}
		return res, res.Err
	case <-ctx.Done():
		return overlay.LookupDone{}, ctx.Err()
	case <-o.ctx.Done():
		return overlay.LookupDone{}, ErrClosed
	}
}

// OverlayStatus is a snapshot of the core's tables.
type OverlayStatus struct {
	Self       overlay.Peer
	Joined     bool
	Successors []overlay.Peer
	Pred       overlay.Peer
	HasPred    bool
	Members    []overlay.Peer
	Estimates  overlay.Estimates
	Stats      overlay.Stats
	Sent       uint64 // messages written to streams
	Dropped    uint64 // messages dropped (queue full, member unreachable)
}

// Status returns a snapshot of the core's tables; the zero status once
// stopped.
func (o *Overlay) Status() OverlayStatus {
	var st OverlayStatus
	o.call(func() {
		st.Self = o.self
		st.Joined = o.node.Joined()
		st.Successors = o.node.Successors()
		st.Pred, st.HasPred = o.node.Predecessor()
		st.Members = o.node.Members()
		st.Estimates = o.node.Estimates()
		st.Stats = o.node.Stats()
	})
	o.mu.Lock()
	st.Sent, st.Dropped = o.sent, o.dropped
	o.mu.Unlock()
	return st
}

// Partners returns up to k members for the swarm's partner mesh.
func (o *Overlay) Partners(k int) []overlay.Peer {
	var ps []overlay.Peer
	o.call(func() { ps = o.node.Partners(k) })
	return ps
}
