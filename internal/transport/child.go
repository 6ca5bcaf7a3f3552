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
	queue  chan queued   // encoded chunks for the writer
	alive  chan []byte   // an encoded Alive for the writer (mesh.go)
	quit   chan struct{} // closed by the Run goroutine to stop the writer
	// bye is the last frame the writer sends; set before quit is closed.
	bye wire.Bye
	// stopped is set when quit is closed. Run goroutine only.
	stopped bool
}

// queued is one encoded chunk in a child's send queue.
type queued struct {
	stripe uint8
	raw    []byte
}

// serveChild serves a subscription: registers the child with the node,
// starts its writer, and reads what the child sends until the stream ends.
func (d *Driver) serveChild(c *Conn, s *quic.Stream, br *bufio.Reader, h wire.Hello) {
	ch := &child{
		id:     c.Remote(),
		conn:   c,
		stream: s,
		queue:  make(chan queued, d.cfg.ChildQueue),
		alive:  make(chan []byte, 1),
		quit:   make(chan struct{}),
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
				if h.Stripes&(1<<q.stripe) == 0 {
					continue
				}
				select {
				case ch.queue <- q:
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
}

// send queues one chunk for a child; a child whose queue is full is
// dropped. Run goroutine only.
func (d *Driver) send(s swarm.Send) {
	ch := d.children[s.To]
	if ch == nil {
		return // gone since the node queued it
	}
	select {
	case ch.queue <- queued{stripe: s.ID.Stripe, raw: s.Chunk}:
	default:
		d.log.Warn("dropping child: it does not keep up", "peer", s.To, "queue", cap(ch.queue))
		d.removeChild(ch, wire.Bye{Code: wire.ByeSlow, Reason: "send queue full"})
	}
}

// writeChild writes ch's queued chunks until stopped or the stream fails.
func (d *Driver) writeChild(ch *child) {
	var buf []byte
	for {
		select {
		case <-ch.quit: // before more chunks
			writeBye(ch.stream, ch.bye)
			return
		default:
		}
		select {
		case <-ch.quit:
			writeBye(ch.stream, ch.bye)
			return
		case a := <-ch.alive:
			buf = wire.AppendFrame(buf[:0], wire.FrameAlive, a)
			if _, err := ch.stream.Write(buf); err != nil {
				ch.stream.CancelWrite(quic.StreamErrorCode(CodeNormal))
				return
			}
		case q := <-ch.queue:
			buf = wire.AppendFrame(buf[:0], wire.FrameChunk, q.raw)
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
			d.upload.add(d.now(), len(buf), len(ch.queue) > 0)
		}
	}
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
