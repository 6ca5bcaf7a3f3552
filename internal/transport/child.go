package transport

import (
	"bufio"
	"errors"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// child is a subscriber the node pushes chunks to over one stream.
type child struct {
	id     swarm.NodeID
	conn   *Conn
	stream *quic.Stream
	queue  chan queued // encoded live chunks for the writer
	// backlog holds the chunks of the subscription's backlog
	// (swarm.Send.Backlog): the writer sends them only while no child has
	// a live chunk queued (see backlogPoll).
	backlog chan queued
	alive   chan []byte   // an encoded Alive for the writer (mesh.go)
	quit    chan struct{} // closed by the Run goroutine to stop the writer
	// bye is the last frame the writer sends; set before quit is closed.
	bye wire.Bye
	// stopped is set when quit is closed. Run goroutine only.
	stopped bool
}

// queued is one encoded chunk in a child's send queue.
type queued struct {
	stripe uint8
	raw    []byte
	at     int64 // when it was queued, Unix ns (see DriverConfig.MaxQueueDelay)
}

// serveChild serves a subscription: registers the child with the node,
// starts its writer, and reads what the child sends until the stream ends.
func (d *Driver) serveChild(c *Conn, s *quic.Stream, br *bufio.Reader, h wire.Hello) {
	ch := &child{
		id:      c.Remote(),
		conn:    c,
		stream:  s,
		queue:   make(chan queued, d.cfg.ChildQueue),
		backlog: make(chan queued, d.cfg.ChildQueue),
		alive:   make(chan []byte, 1),
		quit:    make(chan struct{}),
	}
	ok, err := d.call(func() error { return d.addChild(ch, h) })
	if !ok {
		return
	}
	if err != nil {
		bye := wire.Bye{Code: wire.ByeProtocol, Reason: err.Error()}
		switch {
		case errors.Is(err, swarm.ErrFull):
			bye.Code = wire.ByeFull
		case errors.Is(err, swarm.ErrWrongChannel):
			bye.Code = wire.ByeWrongChannel
		}
		d.log.Info("subscription refused", "peer", ch.id, "channel", h.Channel, "err", err)
		writeBye(s, bye)
		s.CancelRead(quic.StreamErrorCode(bye.Code))
		return
	}
	d.log.Debug("child subscribed", "peer", ch.id, "stripes", fmt.Sprintf("%#x", h.Stripes), "from", h.From)
	d.wg.Go(func() { d.writeChild(ch) })

	for {
		f, err := readFrame(br)
		if err != nil {
			if isGarbage(err) {
				d.protocolError(c, err)
			}
			break
		}
		if f.Type == wire.FrameChunk {
			if !d.chunkIn(ch.id, f.Payload) {
				return
			}
			continue
		}
		if f.Type != wire.FrameBye {
			d.protocolError(c, fmt.Errorf("%v frame on a subscription stream", f.Type))
		}
		break
	}
	d.do(func() { d.removeChild(ch, wire.Bye{Code: wire.ByeNormal, Reason: "stream ended"}) })
}

// addChild registers ch with the node, replacing an older subscription
// of the same node. A replaced subscription stays the node's child: the
// node remembers what it already sent it (and so sends the new one only
// the backlog of stripes it did not have), and the chunks still queued
// for the old stream move to the new one, except those of stripes the
// new subscription no longer asks for: the child moved them to another
// parent, which sends them from the child's next missing slice. Run
// goroutine only.
func (d *Driver) addChild(ch *child, h wire.Hello) error {
	if old := d.children[ch.id]; old != nil {
		delete(d.children, ch.id)
	drain:
		for {
			select {
			case q := <-old.queue:
				d.liveQueued.Add(-1)
				if h.Stripes&(1<<q.stripe) == 0 {
					continue
				}
				select {
				case ch.queue <- q:
					d.liveQueued.Add(1)
				default:
				}
			case q := <-old.backlog:
				if h.Stripes&(1<<q.stripe) == 0 {
					continue
				}
				select {
				case ch.backlog <- q:
				default:
				}
			default:
				break drain
			}
		}
		d.stopChild(old, wire.Bye{Code: wire.ByeNormal, Reason: "replaced by a new subscription"})
	}
	if err := d.node.AddChild(d.now(), ch.id, h); err != nil {
		d.node.RemoveChild(ch.id)
		return err
	}
	d.children[ch.id] = ch
	return nil
}

// removeChild forgets ch (if it is still the node's child) and stops its
// writer with a last Bye. Run goroutine only.
func (d *Driver) removeChild(ch *child, bye wire.Bye) {
	if d.children[ch.id] == ch {
		delete(d.children, ch.id)
		d.node.RemoveChild(ch.id)
		d.log.Debug("child removed", "peer", ch.id, "code", bye.Code, "reason", bye.Reason)
	}
	d.stopChild(ch, bye)
}

// stopChild stops ch's writer (it sends bye and closes the stream) and
// its reader. Run goroutine only.
func (d *Driver) stopChild(ch *child, bye wire.Bye) {
	if ch.stopped {
		return
	}
	ch.stopped = true
	ch.bye = bye
	// Abort a write blocked on a slow child before asking for the Bye;
	// the writer sets a fresh deadline for the Bye itself.
	ch.stream.SetWriteDeadline(time.Now())
	close(ch.quit)
	ch.stream.CancelRead(quic.StreamErrorCode(bye.Code))
	// Its live chunks will not be written: they no longer hold up the
	// other children's backlog (the writer drains what it finds too).
	d.dropLive(ch)
}

// dropLive empties ch's live queue, which is never to be written, and
// takes it off the count of live chunks queued. Any goroutine.
func (d *Driver) dropLive(ch *child) {
	for {
		select {
		case <-ch.queue:
			d.liveQueued.Add(-1)
		default:
			return
		}
	}
}

// send queues one chunk for a child; a child whose queue is full is
// dropped. Run goroutine only.
func (d *Driver) send(s swarm.Send) {
	ch := d.children[s.To]
	if ch == nil {
		return // gone since the node queued it
	}
	// With LiveFirst, backlog after live chunks; the origin sends its
	// backlogs in line, as the simulator's does (internal/sim's Sim.send).
	backlog := s.Backlog && d.cfg.LiveFirst && !d.source
	q, to := queued{stripe: s.ID.Stripe, raw: s.Chunk, at: d.now().UnixNano()}, ch.queue
	if backlog {
		to = ch.backlog
	}
	select {
	case to <- q:
		if !backlog {
			d.liveQueued.Add(1)
		}
	default:
		d.log.Warn("dropping child: it does not keep up", "peer", s.To, "queue", cap(ch.queue))
		d.removeChild(ch, wire.Bye{Code: wire.ByeSlow, Reason: "send queue full"})
	}
}

// Backlog writes (child.backlog): a child's backlog chunk is written
// only while no child has a live chunk queued, so that a new child's
// backlog delays neither the other children's live chunks nor its own
// (the simulator models the same upload, internal/sim/backlog.go). A
// writer with backlog waiting looks again every backlogPoll; when the
// node's last backlog write is maxBacklogWait old it writes one anyway,
// so that a slow child whose queue never empties cannot hold every new
// child's backlog for good (the simulator has no such child), nor a
// loaded machine, whose writers pick their live chunks up late, so that
// some child nearly always has one queued: with 500 ms, a new child's
// start group came from the origin instead (internal/demo's
// TestDemoMatchesSim under -race on a busy machine: savings 0.08 against
// the simulator's 0.59, continuity 0.67; with 50 ms 0.58 and 1, as with
// backlog in line).
const (
	backlogPoll    = 2 * time.Millisecond
	maxBacklogWait = 50 * time.Millisecond
)

// writeChild writes ch's queued chunks until stopped or the stream
// fails: Alives and live chunks first, then backlog (see backlogPoll).
func (d *Driver) writeChild(ch *child) {
	var buf []byte
	// What is left was never written: no longer live work queued.
	defer d.dropLive(ch)
	for {
		select {
		case <-ch.quit: // before more chunks
			writeBye(ch.stream, ch.bye)
			return
		default:
		}
		var frame wire.FrameType
		var payload []byte
		select {
		case a := <-ch.alive:
			frame, payload = wire.FrameAlive, a
		case q := <-ch.queue:
			d.liveQueued.Add(-1)
			if d.stale(q) {
				continue
			}
			frame, payload = wire.FrameChunk, q.raw
		default:
			// No live chunk for this child: its backlog, when no child
			// has a live chunk waiting (or one has waited maxBacklogWait),
			// else wait for a live chunk or for the others' to go out.
			var backlog chan queued
			wait := time.Duration(0)
			switch {
			case d.liveQueued.Load() <= 0 || d.now().UnixNano()-d.lastBacklog.Load() >= int64(maxBacklogWait):
				backlog = ch.backlog // now, or as soon as some comes
			case len(ch.backlog) > 0:
				wait = backlogPoll
			default:
				// Backlog that comes while others' live chunks wait is
				// looked at within maxBacklogWait.
				wait = maxBacklogWait
			}
			var poll <-chan time.Time
			var timer *time.Timer
			if wait > 0 {
				timer = time.NewTimer(wait)
				poll = timer.C
			}
			stop := func() {
				if timer != nil {
					timer.Stop()
				}
			}
			select {
			case <-ch.quit:
				stop()
				writeBye(ch.stream, ch.bye)
				return
			case a := <-ch.alive:
				frame, payload = wire.FrameAlive, a
			case q := <-ch.queue:
				d.liveQueued.Add(-1)
				if d.stale(q) {
					stop()
					continue
				}
				frame, payload = wire.FrameChunk, q.raw
			case q := <-backlog:
				frame, payload = wire.FrameChunk, q.raw
				d.lastBacklog.Store(d.now().UnixNano())
			case <-poll:
				continue
			}
			stop()
		}
		buf = wire.AppendFrame(buf[:0], frame, payload)
		if _, err := ch.stream.Write(buf); err != nil {
			ch.stream.CancelWrite(quic.StreamErrorCode(CodeNormal))
			select {
			case <-ch.quit: // stopped by the Run goroutine
			default:
				d.log.Debug("write to child failed", "peer", ch.id, "err", err)
				d.do(func() { d.removeChild(ch, wire.Bye{Code: wire.ByeNormal, Reason: "write failed"}) })
			}
			return
		}
		if frame == wire.FrameChunk {
			// Backlogged: more to write at once (backlog that waits for
			// other children's live chunks does not wait for the link).
			d.upload.add(d.now(), len(buf), len(ch.queue) > 0 || (len(ch.backlog) > 0 && d.liveQueued.Load() <= 0))
		}
	}
}

// stale reports whether live chunk q waited longer than MaxQueueDelay
// in its child's queue, and counts it dropped then: the parent's upload
// does not keep up with what its children ask, and a chunk that late
// only holds up the ones behind it (the child pulls or fetches it in
// time instead).
func (d *Driver) stale(q queued) bool {
	if d.cfg.MaxQueueDelay <= 0 || d.now().UnixNano()-q.at <= int64(d.cfg.MaxQueueDelay) {
		return false
	}
	d.queueDropped.Add(1)
	return true
}

// writeBye writes a last Bye frame on s and closes its send side, giving
// up after byeTimeout.
func writeBye(s *quic.Stream, bye wire.Bye) {
	s.SetWriteDeadline(time.Now().Add(byeTimeout))
	if err := wire.WriteFrame(s, wire.FrameBye, bye.Append(nil)); err != nil {
		s.CancelWrite(quic.StreamErrorCode(bye.Code))
		return
	}
	s.Close()
}

// DropChild ends id's subscription with a Bye, as if it had ended it: its
// slot is free at once. The origin calls it for a child the tracker no
// longer counts (gone, or placed elsewhere for long), so that a dead
// child's slot does not wait for the QUIC idle timeout. It reports
// whether id was a child.
func (d *Driver) DropChild(id swarm.NodeID, reason string) bool {
	res := make(chan bool, 1)
	if !d.do(func() {
		ch := d.children[id]
		if ch != nil {
			d.removeChild(ch, wire.Bye{Code: wire.ByeNormal, Reason: reason})
		}
		res <- ch != nil
	}) {
		return false
	}
	select {
	case ok := <-res:
		return ok
	case <-d.ctx.Done():
		return false
	}
}
