package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// Peer names a node and where to reach it.
type Peer struct {
	ID   swarm.NodeID
	Addr string // host:port of its UDP socket
}

// IsZero reports whether p names no node.
func (p Peer) IsZero() bool { return p.ID == "" }

// DefaultChildQueue is the per-child send queue length, in chunks.
const DefaultChildQueue = 512

// DefaultMaxQueueDelay is how long a live chunk may wait in a child's
// queue before its writer drops it (DriverConfig.MaxQueueDelay).
const DefaultMaxQueueDelay = 500 * time.Millisecond

// DriverConfig configures a Driver.
type DriverConfig struct {
	// Node is the protocol core the driver owns from NewDriver on; nothing
	// else may call it. Required.
	Node *swarm.Node
	// Endpoint carries the driver's connections. Required; the caller
	// closes it after the driver.
	Endpoint *Endpoint
	// Channel is the channel name sent in Hello frames. Required.
	Channel string
	// Stripes is K, the channel's stripe count; a parent is asked for
	// all of them. 0 takes the node's.
	Stripes int
	// Origin is where fallback fetches go; zero in source mode.
	Origin Peer
	// Logger receives the driver's logs. Required.
	Logger *slog.Logger
	// Now is the clock fed to the node; nil means time.Now.
	Now func() time.Time
	// OnPlay is called from the driver goroutine, in order, for each slice
	// played; nil drops them. It must not block long and must not call the
	// Driver's blocking methods (Publish, Stats, Children).
	OnPlay func(swarm.Slice)
	// OnLost is called from the driver goroutine when a parent is found
	// lost, with the stripes it fed (now without a parent); the caller
	// switches them to backups or asks the tracker, and calls
	// SetStripeParent or SetParents (which never block). Same rules as
	// OnPlay.
	OnLost func(Lost)
	// ChildQueue is the per-child send queue in chunks (default
	// DefaultChildQueue); a child whose queue overflows is dropped with
	// Bye Slow.
	ChildQueue int
	// MaxQueueDelay: a live chunk that waited longer than this in a
	// child's queue is dropped by its writer instead of written (default
	// DefaultMaxQueueDelay; negative: never). A parent whose children
	// ask more than its upload carries would otherwise queue without
	// bound and put its whole subtree seconds behind live; the child
	// gets the chunks it misses from a partner or the origin, in time
	// (internal/sim's --queue-limit models it).
	MaxQueueDelay time.Duration
	// LiveFirst makes the node (unless it is the origin) write a new
	// child's backlog (swarm.Send.Backlog) only while no child has a live
	// chunk queued (child.go); the simulator's --live-first models it.
	// Off by default, and the real peer leaves it off: "some child has a
	// live chunk queued" is also true whenever the writers are slow to
	// run, so on a loaded machine (the test suite under -race on two busy
	// cores) a new child's backlog crawls at one chunk per
	// maxBacklogWait, and the child fetches the rest of its start group
	// from the origin at ParentTimeout (cmd/swarmtv's
	// TestChainPlaysThroughPeers failed so in 2 of 3 runs, 3 of 3 passing
	// on main; with a 10 ms fallback it fetched more). A gate on the
	// upload itself (bytes queued on the connections, or how long a live
	// chunk waited) would fix it; a node with it on should also set
	// swarm.Config.StartHeldRun.
	LiveFirst bool
	// Overlay, when set, serves the overlay streams opened on this
	// driver's connections (see Overlay); nil refuses them.
	Overlay *Overlay
	// FetchBPS, when positive, is the upload (bit/s) fetches are served
	// with, all connections together (see fetchService): answers wait
	// their turn nearest deadline first and leave paced at this rate, so
	// the origin keeps its pushes to its children apart from a flood of
	// fallback fetches, as the simulator's origin does. 0: unlimited.
	FetchBPS int64
}

func (c *DriverConfig) validate() error {
	switch {
	case c.Node == nil:
		return errors.New("transport: DriverConfig.Node is nil")
	case c.FetchBPS < 0:
		return fmt.Errorf("transport: DriverConfig.FetchBPS %d is negative", c.FetchBPS)
	case c.Endpoint == nil:
		return errors.New("transport: DriverConfig.Endpoint is nil")
	case c.Logger == nil:
		return errors.New("transport: DriverConfig.Logger is nil")
	case c.Channel == "" || len(c.Channel) > wire.MaxChannelLen:
		return fmt.Errorf("transport: DriverConfig.Channel %q: want 1..%d bytes", c.Channel, wire.MaxChannelLen)
	case c.Stripes < 0 || c.Stripes > wire.MaxStripes:
		return fmt.Errorf("transport: DriverConfig.Stripes %d: want 1..%d", c.Stripes, wire.MaxStripes)
	case c.ChildQueue < 0:
		return fmt.Errorf("transport: DriverConfig.ChildQueue %d is negative", c.ChildQueue)
	case c.Origin.ID != "" && c.Origin.Addr == "":
		return errors.New("transport: DriverConfig.Origin has an ID but no address")
	}
	return nil
}

// Timing of the driver's own retries.
const (
	byeTimeout      = 500 * time.Millisecond // to write a last Bye frame
	fetchBackoffMin = 100 * time.Millisecond
	fetchBackoffMax = 3 * time.Second
	fetchQueue      = 4096 // fetch requests waiting for the origin link
	smallFrameMax   = 1024 // any frame but a chunk
)

// Driver runs a swarm.Node on an Endpoint. See the package doc.
type Driver struct {
	cfg  DriverConfig
	ep   *Endpoint
	log  *slog.Logger
	now  func() time.Time
	self swarm.NodeID

	ctx    context.Context    // cancelled when the driver stops
	cancel context.CancelFunc // cancels ctx
	ops    chan func()        // work for the owner goroutine
	wg     sync.WaitGroup     // every goroutine Run started

	// Owned by the Run goroutine.
	node         *swarm.Node
	children     map[swarm.NodeID]*child
	rejected     map[swarm.NodeID]error        // why a node's chunk was rejected, until it is cut off
	parents      map[swarm.NodeID]*parentLink  // one link per distinct parent
	stripeParent []Peer                        // by stripe: the parent set (zero: none)
	fetch        *fetcher                      // nil in source mode
	watchers     map[swarm.NodeID]*watcher     // nodes pulling from this one (mesh.go)
	partners     map[swarm.NodeID]*partnerLink // nodes this one pulls from
	banned       map[swarm.NodeID]time.Time    // partners dropped, until when

	mu              sync.Mutex
	running         bool                                // Run is running (guarded by mu)
	stopped         bool                                // Close was called or Run returned (guarded by mu)
	runDone         chan struct{}                       // closed when Run returns
	pendingParents  []parentChange                      // parent changes not applied yet (guarded by mu)
	parentCh        chan struct{}                       // signals pendingParents and pendingPartners, cap 1
	pendingPartners []Peer                              // the latest SetPartners (guarded by mu)
	partnersChanged bool                                // SetPartners was called since applied (guarded by mu)
	conns           map[swarm.NodeID]map[*Conn]struct{} // live connections (guarded by mu)
	out             map[swarm.NodeID]*outConn           // shared dialed connections (guarded by mu)
	final           swarm.Stats                         // the node's stats when Run returned (guarded by mu)

	fetchServed   atomic.Uint64 // chunk bytes sent in answer to fetches
	fetchRefused  atomic.Uint64 // fetches answered Missing because the fetch budget was booked
	fetchCanceled atomic.Uint64 // fetches their askers canceled while they waited in the fetch budget
	pullsServed   atomic.Uint64 // pulls answered with a chunk
	pullsRefused  atomic.Uint64 // pulls answered Missing for lack of spare upload
	queueDropped  atomic.Uint64 // live chunks dropped after MaxQueueDelay in a child's queue
	fetchSvc      *fetchService // the FetchBPS budget over every fetch stream
	upload        uploadMeter   // forwarding rate while children are backlogged
	// liveQueued counts the live chunks queued for children and not yet
	// taken by their writers: backlog waits while it is positive
	// (child.go).
	liveQueued atomic.Int64
	// lastBacklog is when a writer last wrote a backlog chunk (Unix ns).
	lastBacklog atomic.Int64
	// source: the node is the channel's origin (its backlogs go in line
	// with its live chunks; child.go).
	source bool
}

// FetchesRefused is the number of fetches this node answered Missing
// because its fetch budget (DriverConfig.FetchBPS) was booked.
func (d *Driver) FetchesRefused() uint64 { return d.fetchRefused.Load() }

// FetchesCanceled is the number of fetches this node answered Missing
// because their askers canceled them (wire.FrameCancel) while they
// waited in its fetch budget.
func (d *Driver) FetchesCanceled() uint64 { return d.fetchCanceled.Load() }

// QueueDropped is the number of live chunks this node's writers dropped
// because they waited longer than DriverConfig.MaxQueueDelay in a
// child's queue.
func (d *Driver) QueueDropped() uint64 { return d.queueDropped.Load() }

// FetchBytesServed is the number of chunk bytes this node sent in answer
// to other nodes' fetches (the origin's fallback traffic).
func (d *Driver) FetchBytesServed() uint64 { return d.fetchServed.Load() }

// NewDriver checks cfg and makes a Driver; Run starts it.
func NewDriver(cfg DriverConfig) (*Driver, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Stripes == 0 {
		cfg.Stripes = cfg.Node.Config().Stripes
	}
	if cfg.ChildQueue == 0 {
		cfg.ChildQueue = DefaultChildQueue
	}
	if cfg.MaxQueueDelay == 0 {
		cfg.MaxQueueDelay = DefaultMaxQueueDelay
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Driver{
		stripeParent: make([]Peer, cfg.Stripes),
		cfg:          cfg,
		ep:           cfg.Endpoint,
		self:         cfg.Endpoint.ID(),
		log:          cfg.Logger.With("node", cfg.Endpoint.ID()),
		now:          now,
		ctx:          ctx,
		cancel:       cancel,
		ops:          make(chan func(), 256),
		node:         cfg.Node,
		source:       cfg.Node.Config().Source,
		children:     make(map[swarm.NodeID]*child),
		rejected:     make(map[swarm.NodeID]error),
		parents:      make(map[swarm.NodeID]*parentLink),
		watchers:     make(map[swarm.NodeID]*watcher),
		partners:     make(map[swarm.NodeID]*partnerLink),
		banned:       make(map[swarm.NodeID]time.Time),
		runDone:      make(chan struct{}),
		parentCh:     make(chan struct{}, 1),
		conns:        make(map[swarm.NodeID]map[*Conn]struct{}),
		out:          make(map[swarm.NodeID]*outConn),
	}
	d.fetchSvc = newFetchService(d, cfg.FetchBPS)
	if !cfg.Origin.IsZero() {
		d.fetch = newFetcher(d, cfg.Origin)
	}
	return d, nil
}

// Run accepts connections and runs the node until ctx ends or Close is
// called. It returns ctx's error when ctx ended, nil after Close, and
// ErrClosed when the driver was already closed. Every goroutine the driver
// started has ended when Run returns.
func (d *Driver) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return ErrClosed
	}
	if d.running {
		d.mu.Unlock()
		return errors.New("transport: Driver.Run called twice")
	}
	d.running = true
	d.mu.Unlock()
	defer close(d.runDone)

	stop := context.AfterFunc(ctx, d.cancel)
	defer stop()
	defer d.shutdown()

	d.wg.Go(d.acceptLoop)
	if d.cfg.FetchBPS > 0 {
		d.wg.Go(d.fetchSvc.run)
	}
	if d.fetch != nil {
		d.wg.Go(d.fetch.run)
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	d.node.Tick(d.now()) // starts the node's clock (its detached grace)
	d.process()
	d.arm(timer)
	for {
		select {
		case <-d.ctx.Done():
			return ctx.Err()
		case op := <-d.ops:
			op()
		case <-d.parentCh:
			d.applyParents()
			d.applyPartners()
		case <-timer.C:
			d.node.Tick(d.now())
		}
		d.process()
		d.arm(timer)
	}
}

// arm sets the timer to the node's next deadline.
func (d *Driver) arm(t *time.Timer) {
	dl := d.node.NextDeadline()
	if dl.IsZero() {
		t.Stop()
		return
	}
	t.Reset(max(dl.Sub(d.now()), 0))
}

// process acts on everything the node has ready. Run goroutine only.
func (d *Driver) process() {
	for d.node.HasReady() {
		rd := d.node.Ready()
		for _, id := range rd.CutOff {
			d.cutOff(id)
		}
		for _, s := range rd.Sends {
			d.send(s)
		}
		for i, id := range rd.Fetches {
			if d.fetch == nil {
				d.log.Debug("fetch without an origin", "seq", id.Seq, "stripe", id.Stripe)
				continue
			}
			d.fetch.enqueue(id, rd.FetchDue[i])
		}
		for _, s := range rd.Play {
			if d.cfg.OnPlay != nil {
				d.cfg.OnPlay(s)
			}
		}
		for _, p := range rd.Pulls {
			d.pull(p)
		}
		for _, m := range rd.Maps {
			d.sendMap(m)
		}
		for _, id := range rd.MapRequests {
			d.askMap(id)
		}
		for _, a := range rd.Alives {
			d.sendAlive(a)
		}
		d.dropPartners(rd.DropPartners)
		// A lost parent's link closes, so setting the same node again
		// dials afresh.
		for _, l := range d.lostParents(rd.Lost) {
			d.log.Info("parent lost", "parent", l.Parent, "stripes", l.Stripes)
			if d.cfg.OnLost != nil {
				d.cfg.OnLost(l)
			}
		}
	}
}

// do hands f to the Run goroutine. It reports false when the driver is
// stopping and f will never run.
func (d *Driver) do(f func()) bool {
	select {
	case d.ops <- f:
		return true
	case <-d.ctx.Done():
		return false
	}
}

// call runs f on the Run goroutine and returns its error; ok is false
// when the driver shut down before f ran or finished.
func (d *Driver) call(f func() error) (ok bool, err error) {
	res := make(chan error, 1)
	if !d.do(func() { res <- f() }) {
		return false, nil
	}
	select {
	case err = <-res:
		return true, err
	case <-d.ctx.Done():
		return false, nil
	}
}

// cancelOnDone cancels both directions of s when ctx ends; defer the
// returned stop.
func cancelOnDone(ctx context.Context, s *quic.Stream) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		s.CancelRead(quic.StreamErrorCode(CodeNormal))
		s.CancelWrite(quic.StreamErrorCode(CodeNormal))
	})
}

// Publish hands a chunk made by this node (source mode) to the core. It
// waits for Run to take it.
func (d *Driver) Publish(c *wire.Chunk, raw []byte) {
	d.do(func() { d.node.Publish(d.now(), c, raw) })
}

// Stats returns the node's counters. It waits for Run; after Run has
// returned it gives the counters as they were then.
func (d *Driver) Stats() swarm.Stats {
	res := make(chan swarm.Stats, 1)
	if d.do(func() { res <- d.node.Stats() }) {
		select {
		case s := <-res:
			return s
		case <-d.ctx.Done():
		}
	}
	<-d.waitStopped()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.final
}

// waitStopped returns a channel closed once the node is no longer owned by
// a running Run.
func (d *Driver) waitStopped() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running {
		return d.runDone
	}
	c := make(chan struct{})
	close(c)
	return c
}

// Children returns the IDs of the node's children; nil once stopped.
func (d *Driver) Children() []swarm.NodeID {
	res := make(chan []swarm.NodeID, 1)
	if !d.do(func() { res <- d.node.Children() }) {
		return nil
	}
	select {
	case c := <-res:
		return c
	case <-d.ctx.Done():
		return nil
	}
}

// Close stops the driver and waits for Run to return. The Endpoint stays
// open.
func (d *Driver) Close() error {
	d.mu.Lock()
	d.stopped = true
	running := d.running
	d.mu.Unlock()
	d.cancel()
	if running {
		<-d.runDone
	}
	return nil
}

// shutdown ends every connection and goroutine. Run goroutine, last.
func (d *Driver) shutdown() {
	d.cancel()
	for _, ch := range d.children {
		d.stopChild(ch, wire.Bye{Code: wire.ByeNormal, Reason: "shutting down"})
	}
	for _, link := range d.parents {
		link.cancel()
	}
	for _, l := range d.partners {
		l.cancel()
	}
	for _, w := range d.watchers {
		d.removeWatcher(w, wire.Bye{Code: wire.ByeNormal, Reason: "shutting down"})
	}
	d.mu.Lock()
	var conns []*Conn
	for _, cs := range d.conns {
		for c := range cs {
			conns = append(conns, c)
		}
	}
	d.mu.Unlock()
	for _, c := range conns {
		c.CloseWithError(CodeNormal, "shutting down")
	}
	d.wg.Wait()
	d.mu.Lock()
	d.stopped = true
	d.final = d.node.Stats()
	d.mu.Unlock()
}

// cutOff closes every connection to a node that misbehaved.
func (d *Driver) cutOff(id swarm.NodeID) {
	reason := d.rejected[id]
	delete(d.rejected, id)
	if id == "" {
		return
	}
	d.mu.Lock()
	var conns []*Conn
	for c := range d.conns[id] {
		conns = append(conns, c)
	}
	d.mu.Unlock()
	d.log.Warn("cutting off node: it sent a bad chunk", "peer", id, "err", reason, "conns", len(conns))
	if ch := d.children[id]; ch != nil {
		d.removeChild(ch, wire.Bye{Code: wire.ByeBadChunk, Reason: "bad chunk"})
	}
	for _, c := range conns {
		d.wg.Go(func() { c.CloseWithError(CodeBadChunk, "chunk failed verification") })
	}
}

// register records a live connection under its remote ID.
func (d *Driver) register(c *Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.conns[c.Remote()]
	if m == nil {
		m = make(map[*Conn]struct{})
		d.conns[c.Remote()] = m
	}
	m[c] = struct{}{}
}

// unregister forgets a closed connection and reports whether it was the
// last one to its node.
func (d *Driver) unregister(c *Conn) (last bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.conns[c.Remote()]
	delete(m, c)
	if len(m) == 0 {
		delete(d.conns, c.Remote())
		return true
	}
	return false
}

// protocolError closes a connection whose peer sent something that breaks
// the protocol.
func (d *Driver) protocolError(c *Conn, err error) {
	d.log.Warn("closing connection: protocol error", "peer", c.Remote(), "err", err)
	c.CloseWithError(CodeProtocol, truncate(err.Error(), 200))
}

// closedLocally reports whether this side closed c with an application
// error code.
func closedLocally(c *Conn) bool {
	var ae *quic.ApplicationError
	return errors.As(context.Cause(c.Context()), &ae) && !ae.Remote
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// readFrame reads one frame, allowing chunk-sized payloads only for chunk
// frames so that a peer cannot make the driver allocate megabytes with a
// header alone.
func readFrame(br *bufio.Reader) (wire.Frame, error) {
	max := smallFrameMax
	if t, err := br.Peek(1); err == nil && wire.FrameType(t[0]) == wire.FrameChunk {
		max = wire.MaxFrameLen
	}
	return wire.ReadFrame(br, max)
}

// isGarbage reports whether a read error means the peer sent bytes that
// are not the protocol (as opposed to the stream or connection ending).
func isGarbage(err error) bool {
	return errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrFrameTooLarge)
}

// chunkIn hands a received chunk to the node. Any goroutine.
func (d *Driver) chunkIn(from swarm.NodeID, raw []byte) bool {
	return d.do(func() {
		if err := d.node.HandleChunk(d.now(), from, raw); err != nil {
			d.rejected[from] = err // logged when the node cuts it off
			return
		}
		d.gotElsewhere(from, raw)
	})
}

// gotElsewhere cancels the node's fetch of a chunk that came from
// another node than the origin (see fetcher.cancel). Run goroutine.
func (d *Driver) gotElsewhere(from swarm.NodeID, raw []byte) {
	if d.fetch == nil || from == d.fetch.origin.ID {
		return
	}
	if id, err := wire.PeekID(raw); err == nil {
		d.fetch.cancel(id)
	}
}

// acceptLoop accepts connections until the driver stops.
func (d *Driver) acceptLoop() {
	for {
		c, err := d.ep.Accept(d.ctx)
		if err != nil {
			if d.ctx.Err() == nil {
				d.log.Error("accept failed; no more incoming connections", "err", err)
			}
			return
		}
		d.register(c)
		d.wg.Go(func() { d.serveConn(c) })
	}
}

// serveConn accepts the streams c's remote opens, until c closes. c is
// registered; serveConn unregisters it.
func (d *Driver) serveConn(c *Conn) {
	defer func() {
		if d.ctx.Err() != nil {
			c.CloseWithError(CodeNormal, "shutting down")
		}
		// Tell the node when its last connection to the remote was
		// lost (not closed by this driver).
		if d.unregister(c) && d.ctx.Err() == nil && !closedLocally(c) {
			id := c.Remote()
			d.do(func() { d.node.NodeGone(d.now(), id) })
		}
	}()
	for {
		s, err := c.AcceptStream(d.ctx)
		if err != nil {
			return
		}
		d.wg.Go(func() { d.serveStream(c, s) })
	}
}

// serveStream reads the Hello that opens a stream and serves it as a
// subscription or a fetch stream.
func (d *Driver) serveStream(c *Conn, s *quic.Stream) {
	br := bufio.NewReaderSize(s, 64<<10)
	f, err := readFrame(br)
	if err != nil {
		if isGarbage(err) {
			d.protocolError(c, err)
		}
		s.CancelRead(quic.StreamErrorCode(CodeNormal))
		s.CancelWrite(quic.StreamErrorCode(CodeNormal))
		return
	}
	if (f.Type == wire.FrameOverlayHello || f.Type == wire.FrameOverlayInfo) && d.cfg.Overlay != nil {
		d.cfg.Overlay.ServeOverlayStream(c, s, br, f)
		return
	}
	if f.Type == wire.FramePartner {
		p, err := wire.ParsePartner(f.Payload)
		if err != nil {
			d.protocolError(c, err)
			return
		}
		d.serveWatcher(c, s, br, p)
		return
	}
	if f.Type != wire.FrameHello {
		d.protocolError(c, fmt.Errorf("stream opened with a %v frame, want hello", f.Type))
		return
	}
	h, err := wire.ParseHello(f.Payload)
	if err != nil {
		d.protocolError(c, err)
		return
	}
	if h.Stripes != 0 {
		d.serveChild(c, s, br, h)
	} else {
		d.serveFetch(c, s, br)
	}
}
