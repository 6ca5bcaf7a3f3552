package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// The partner mesh over QUIC (see swarm's mesh.go for the protocol).
//
// A node pulls from each partner over one partner stream, opened on the
// connection it holds to the partner (dialed if it has none) with a
// Partner frame: the partner then writes on it its buffer map (at once,
// and in answer to each MapRequest frame of the node's) and the answers
// to the node's Request frames (a Chunk or a Missing, in order).
// The partner side (a watcher) serves pulls from spare upload only: a
// pull arriving while a child's send queue holds more than
// watcherBusyQueue chunks, or while this watcher's own queue is that
// long, is answered Missing (the puller asks another partner, or the
// origin). Alives to children go on their subscription streams.

// Mesh limits of the driver.
const (
	watcherQueue     = 64 // frames waiting for a watcher's writer
	watcherBusyQueue = 8  // see above
	partnerRequests  = 64 // pulls waiting for a partner link's writer
	// partnerBan: a partner the node dropped (silent, or bad data) is
	// not taken again for this long, whatever SetPartners names.
	partnerBan = 30 * time.Second
)

// watcher is a node pulling from this one: its partner stream's writer
// queue.
type watcher struct {
	id      swarm.NodeID
	stream  *quic.Stream
	out     chan []byte   // encoded frames for the writer
	quit    chan struct{} // closed by the Run goroutine to stop the writer
	stopped bool          // Run goroutine only
}

// partnerLink is the partner stream to one partner.
type partnerLink struct {
	peer   Peer
	reqs   chan wire.ID  // pulls for the writer
	maps   chan struct{} // a map request for the writer (one waiting covers the next)
	cancel context.CancelFunc
}

// SetPartners names the nodes the node pulls missing chunks from (see
// swarm.Node.SetPartners): the driver opens a partner stream to each new
// one and closes those to the ones no longer named. It never blocks.
// Partners the node dropped lately are skipped.
func (d *Driver) SetPartners(ps []Peer) {
	d.mu.Lock()
	d.pendingPartners = slices.Clone(ps)
	d.partnersChanged = true
	d.mu.Unlock()
	select {
	case d.parentCh <- struct{}{}:
	default:
	}
}

// Partners returns the partners the driver has a partner stream to (or
// is opening one to), sorted; nil once stopped.
func (d *Driver) Partners() []swarm.NodeID {
	res := make(chan []swarm.NodeID, 1)
	if !d.do(func() {
		var ids []swarm.NodeID
		for id := range d.partners {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		res <- ids
	}) {
		return nil
	}
	select {
	case ids := <-res:
		return ids
	case <-d.ctx.Done():
		return nil
	}
}

// PullsServed is the number of pulls this node answered with a chunk;
// PullsRefused those it answered Missing for lack of spare upload.
func (d *Driver) PullsServed() uint64  { return d.pullsServed.Load() }
func (d *Driver) PullsRefused() uint64 { return d.pullsRefused.Load() }

// applyPartners applies the latest SetPartners. Run goroutine only.
func (d *Driver) applyPartners() {
	d.mu.Lock()
	ps, changed := d.pendingPartners, d.partnersChanged
	d.pendingPartners, d.partnersChanged = nil, false
	d.mu.Unlock()
	if !changed {
		return
	}
	now := d.now()
	for id, until := range d.banned {
		if !until.After(now) {
			delete(d.banned, id)
		}
	}
	var want []Peer
	for _, p := range ps {
		if p.IsZero() || p.ID == d.self || len(want) >= swarm.MaxPartners || d.banned[p.ID].After(now) ||
			slices.ContainsFunc(want, func(w Peer) bool { return w.ID == p.ID }) {
			continue
		}
		want = append(want, p)
	}
	// Close the links no longer wanted (ID order: the log reads the same
	// every run).
	ids := make([]swarm.NodeID, 0, len(d.partners))
	for id := range d.partners {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if l := d.partners[id]; !slices.ContainsFunc(want, func(w Peer) bool { return w.ID == id && w.Addr == l.peer.Addr }) {
			l.cancel()
			delete(d.partners, id)
		}
	}
	nodes := make([]swarm.NodeID, 0, len(want))
	for _, p := range want {
		nodes = append(nodes, p.ID)
		if d.partners[p.ID] == nil {
			d.startPartner(p)
		}
	}
	d.node.SetPartners(now, nodes)
}

// startPartner opens the partner stream to p. Run goroutine only.
func (d *Driver) startPartner(p Peer) {
	ctx, cancel := context.WithCancel(d.ctx)
	l := &partnerLink{peer: p, reqs: make(chan wire.ID, partnerRequests), maps: make(chan struct{}, 1), cancel: cancel}
	d.partners[p.ID] = l
	d.log.Debug("partner link", "partner", p.ID, "addr", p.Addr)
	d.wg.Go(func() {
		defer cancel()
		err := d.runPartner(ctx, l)
		if ctx.Err() != nil {
			return // replaced, dropped or shutting down
		}
		d.log.Debug("partner link failed", "partner", p.ID, "err", err)
		d.do(func() {
			if d.partners[p.ID] == l {
				delete(d.partners, p.ID)
				d.node.PartnerGone(d.now(), p.ID)
			}
		})
	})
}

// dropPartners closes the links to partners the node gave up on and bans
// them for partnerBan. Run goroutine only.
func (d *Driver) dropPartners(ids []swarm.NodeID) {
	for _, id := range ids {
		d.log.Info("partner dropped", "partner", id)
		d.banned[id] = d.now().Add(partnerBan)
		if l := d.partners[id]; l != nil {
			l.cancel()
			delete(d.partners, id)
		}
	}
}

// pull queues a pull for its partner's link. Run goroutine only.
func (d *Driver) pull(p swarm.Pull) {
	l := d.partners[p.To]
	if l == nil {
		return // gone: the core times the pull out
	}
	select {
	case l.reqs <- p.ID:
	default: // the core times it out
	}
}

// askMap queues a map request for its partner's link. Run goroutine
// only.
func (d *Driver) askMap(id swarm.NodeID) {
	l := d.partners[id]
	if l == nil {
		return // gone: the core asks again when it needs a map
	}
	select {
	case l.maps <- struct{}{}:
	default: // one is waiting: its answer will do
	}
}

// runPartner runs one partner stream: it writes the Partner frame, the
// pulls and the map requests, and hands the maps and answers to the
// node.
func (d *Driver) runPartner(ctx context.Context, l *partnerLink) error {
	c, err := d.acquire(ctx, l.peer)
	if err != nil {
		return err
	}
	defer d.release(c)
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	defer cancelOnDone(ctx, s)()
	if err := wire.WriteFrame(s, wire.FramePartner, wire.Partner{Channel: d.cfg.Channel}.Append(nil)); err != nil {
		return fmt.Errorf("write partner: %w", err)
	}
	d.wg.Go(func() {
		var buf []byte
		for {
			select {
			case <-ctx.Done():
				return
			case id := <-l.reqs:
				buf = wire.AppendFrame(buf[:0], wire.FrameRequest, id.Append(nil))
			case <-l.maps:
				buf = wire.AppendFrame(buf[:0], wire.FrameMapRequest, wire.MapRequest{}.Append(nil))
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	})
	br := bufio.NewReaderSize(s, 64<<10)
	from := l.peer.ID
	for {
		f, err := readFrame(br)
		if err != nil {
			if isGarbage(err) {
				d.protocolError(c, err)
			}
			return err
		}
		var op func()
		switch f.Type {
		case wire.FrameBufferMap:
			bm, err := wire.ParseBufferMap(f.Payload)
			if err != nil {
				d.protocolError(c, err)
				return err
			}
			op = func() { _ = d.node.HandleMap(d.now(), from, bm) } // a bad one drops the partner
		case wire.FrameChunk:
			raw := f.Payload
			op = func() {
				if err := d.node.HandlePulled(d.now(), from, raw); err != nil {
					d.rejected[from] = err // logged when the node cuts it off
					return
				}
				d.gotElsewhere(from, raw)
			}
		case wire.FrameMissing:
			id, err := wire.ParseID(f.Payload)
			if err != nil {
				d.protocolError(c, err)
				return err
			}
			op = func() { d.node.HandleMissing(d.now(), from, id) }
		case wire.FrameBye:
			bye, err := wire.ParseBye(f.Payload)
			if err != nil {
				d.protocolError(c, err)
				return err
			}
			return fmt.Errorf("partner said bye (code %d): %s", bye.Code, bye.Reason)
		default:
			err := fmt.Errorf("%v frame on a partner stream", f.Type)
			d.protocolError(c, err)
			return err
		}
		if !d.do(op) {
			return ErrClosed
		}
	}
}

// serveWatcher serves a partner stream a node opened to this one: its
// map requests and pulls are answered on it, in order.
func (d *Driver) serveWatcher(c *Conn, s *quic.Stream, br *bufio.Reader, p wire.Partner) {
	w := &watcher{id: c.Remote(), stream: s, out: make(chan []byte, watcherQueue), quit: make(chan struct{})}
	ok, err := d.call(func() error { return d.addWatcher(w, p) })
	if !ok {
		return
	}
	if err != nil {
		bye := wire.Bye{Code: wire.ByeFull, Reason: err.Error()}
		if errors.Is(err, swarm.ErrWrongChannel) {
			bye.Code = wire.ByeWrongChannel
		}
		writeBye(s, bye)
		s.CancelRead(quic.StreamErrorCode(bye.Code))
		return
	}
	d.wg.Go(func() { d.writeWatcher(w) })
	for {
		f, err := readFrame(br)
		if err != nil {
			if isGarbage(err) {
				d.protocolError(c, err)
			}
			break
		}
		if f.Type == wire.FrameBye {
			break
		}
		if f.Type == wire.FrameMapRequest {
			if _, err := wire.ParseMapRequest(f.Payload); err != nil {
				d.protocolError(c, err)
				break
			}
			if !d.do(func() { _ = d.node.HandleMapRequest(w.id) }) {
				return
			}
			continue
		}
		if f.Type != wire.FrameRequest {
			d.protocolError(c, fmt.Errorf("%v frame on a partner stream", f.Type))
			break
		}
		id, err := wire.ParseID(f.Payload)
		if err != nil {
			d.protocolError(c, err)
			break
		}
		if !d.do(func() { d.answerPull(w, id) }) {
			return
		}
	}
	d.do(func() { d.removeWatcher(w, wire.Bye{Code: wire.ByeNormal, Reason: "stream ended"}) })
}

// addWatcher registers w with the node (its first map is queued at
// once), replacing an older partner stream of the same node. Run
// goroutine only.
func (d *Driver) addWatcher(w *watcher, p wire.Partner) error {
	if p.Channel != d.cfg.Channel {
		return fmt.Errorf("%w: partner for channel %q on %q", swarm.ErrWrongChannel, p.Channel, d.cfg.Channel)
	}
	if old := d.watchers[w.id]; old != nil {
		d.removeWatcher(old, wire.Bye{Code: wire.ByeNormal, Reason: "replaced by a new partner stream"})
	}
	d.watchers[w.id] = w // before AddWatcher: its first map goes to w
	if err := d.node.AddWatcher(d.now(), w.id); err != nil {
		delete(d.watchers, w.id)
		return err
	}
	return nil
}

// removeWatcher forgets w and stops its writer. Run goroutine only.
func (d *Driver) removeWatcher(w *watcher, bye wire.Bye) {
	if d.watchers[w.id] == w {
		delete(d.watchers, w.id)
		d.node.RemoveWatcher(w.id)
	}
	if !w.stopped {
		w.stopped = true
		w.stream.SetWriteDeadline(time.Now())
		close(w.quit)
		w.stream.CancelRead(quic.StreamErrorCode(bye.Code))
	}
}

// answerPull answers one pull from w: the chunk when the node holds it
// and has upload to spare, else Missing. Run goroutine only.
func (d *Driver) answerPull(w *watcher, id wire.ID) {
	raw, ok := d.node.Lookup(id)
	if ok && d.uploadBusy(w) {
		ok = false
		d.pullsRefused.Add(1)
	}
	var frame []byte
	if ok {
		frame = wire.AppendFrame(nil, wire.FrameChunk, raw)
	} else {
		frame = wire.AppendFrame(nil, wire.FrameMissing, id.Append(nil))
	}
	select {
	case w.out <- frame:
		if ok {
			d.pullsServed.Add(1)
		}
	default: // its queue is full: it times the pull out
	}
}

// uploadBusy reports whether a child's send queue or w's holds more than
// watcherBusyQueue frames: pulls are served from spare upload only.
// Run goroutine only.
func (d *Driver) uploadBusy(w *watcher) bool {
	if len(w.out) > watcherBusyQueue {
		return true
	}
	for _, ch := range d.children {
		if len(ch.queue) > watcherBusyQueue {
			return true
		}
	}
	return false
}

// sendMap queues a buffer map for a watcher. Run goroutine only.
func (d *Driver) sendMap(ms swarm.MapSend) {
	w := d.watchers[ms.To]
	if w == nil {
		return
	}
	b, err := ms.Map.Append(nil)
	if err != nil {
		d.log.Error("buffer map does not encode", "err", err)
		return
	}
	select {
	case w.out <- wire.AppendFrame(nil, wire.FrameBufferMap, b):
	default: // a slow watcher misses a map; the next one follows
	}
}

// writeWatcher writes w's frames until stopped or the stream fails.
func (d *Driver) writeWatcher(w *watcher) {
	for {
		select {
		case <-w.quit:
			writeBye(w.stream, wire.Bye{Code: wire.ByeNormal})
			return
		case f := <-w.out:
			if _, err := w.stream.Write(f); err != nil {
				w.stream.CancelWrite(quic.StreamErrorCode(CodeNormal))
				select {
				case <-w.quit:
				default:
					d.do(func() { d.removeWatcher(w, wire.Bye{Code: wire.ByeNormal, Reason: "write failed"}) })
				}
				return
			}
		}
	}
}

// sendAlive queues an Alive for a child. Run goroutine only.
func (d *Driver) sendAlive(a swarm.AliveSend) {
	ch := d.children[a.To]
	if ch == nil {
		return
	}
	b, err := a.Alive.Append(nil)
	if err != nil {
		d.log.Error("alive does not encode", "err", err)
		return
	}
	select {
	case ch.alive <- b:
	default: // one is waiting already
	}
}
