package transport

import (
	"bufio"
	"context"
	"fmt"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// parentLink is the subscription to this node's parent.
type parentLink struct {
	peer   Peer
	cancel context.CancelFunc // ends the link's goroutine
}

// setParent replaces the parent link. Run goroutine only.
func (d *Driver) setParent(p Peer) {
	d.node.SetParent(d.now(), -1, p.ID)
	if cur := d.parent; cur != nil {
		if cur.peer == p {
			return // the link is up: only the node's stripes were reset
		}
		cur.cancel()
		d.parent = nil
	}
	if p.IsZero() {
		d.log.Info("parent cleared")
		return
	}
	d.log.Info("parent set", "parent", p.ID, "addr", p.Addr)
	ctx, cancel := context.WithCancel(d.ctx)
	link := &parentLink{peer: p, cancel: cancel}
	d.parent = link
	d.wg.Go(func() { d.runParent(ctx, link) })
}

// runParent dials the parent, subscribes to every stripe and hands the
// chunks it pushes to the node. When the link fails (not when it is
// replaced) the node is told the parent is gone.
func (d *Driver) runParent(ctx context.Context, link *parentLink) {
	defer link.cancel()
	err := d.subscribe(ctx, link)
	if ctx.Err() != nil {
		return // replaced or shutting down
	}
	d.log.Warn("parent link failed", "parent", link.peer.ID, "err", err)
	d.do(func() {
		if d.parent == link {
			d.parent = nil
			d.node.NodeGone(d.now(), link.peer.ID)
		}
	})
}

// subscribe runs link: it dials, writes the hello, tells the node the
// parent is up, and hands the chunks to the node until the link fails.
func (d *Driver) subscribe(ctx context.Context, link *parentLink) error {
	p := link.peer
	c, err := d.acquire(ctx, p)
	if err != nil {
		return err
	}
	defer d.release(c)
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() {
		s.CancelRead(quic.StreamErrorCode(CodeNormal))
		s.CancelWrite(quic.StreamErrorCode(CodeNormal))
	})
	defer stop()
	hello := wire.Hello{Channel: d.cfg.Channel, Stripes: uint16(1)<<d.cfg.Stripes - 1}
	if err := wire.WriteFrame(s, wire.FrameHello, hello.Append(nil)); err != nil {
		return fmt.Errorf("write hello: %w", err)
	}
	// The stream is open and the hello on its way: the parent's liveness
	// timer starts now, not at SetParent (the dial does not count).
	if !d.do(func() {
		if d.parent == link {
			d.node.ParentUp(d.now(), p.ID)
		}
	}) {
		return d.ctx.Err()
	}
	br := bufio.NewReaderSize(s, 64<<10)
	for {
		f, err := readFrame(br)
		if err != nil {
			if isGarbage(err) {
				d.protocolError(c, err)
			}
			return err
		}
		switch f.Type {
		case wire.FrameChunk:
			if !d.chunkIn(p.ID, f.Payload) {
				return d.ctx.Err()
			}
		case wire.FrameBye:
			bye, err := wire.ParseBye(f.Payload)
			if err != nil {
				d.protocolError(c, err)
				return err
			}
			s.CancelRead(quic.StreamErrorCode(CodeNormal))
			s.Close()
			return fmt.Errorf("parent said bye (code %d): %s", bye.Code, bye.Reason)
		default:
			err := fmt.Errorf("%v frame from a parent", f.Type)
			d.protocolError(c, err)
			return err
		}
	}
}

// outConn is a dialed connection shared by the parent link and the
// fetcher (when the parent is the origin).
type outConn struct {
	c    *Conn
	refs int
}

// acquire returns a live dialed connection to p, dialing if there is none.
// Pair with release.
func (d *Driver) acquire(ctx context.Context, p Peer) (*Conn, error) {
	d.mu.Lock()
	if oc := d.out[p.ID]; oc != nil && oc.c.Context().Err() == nil {
		oc.refs++
		d.mu.Unlock()
		return oc.c, nil
	}
	d.mu.Unlock()

	c, err := d.ep.Dial(ctx, p.Addr, p.ID)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if oc := d.out[p.ID]; oc != nil && oc.c.Context().Err() == nil {
		// Another goroutine dialed meanwhile: use its connection.
		oc.refs++
		d.mu.Unlock()
		c.CloseWithError(CodeNormal, "duplicate connection")
		return oc.c, nil
	}
	if d.ctx.Err() != nil {
		d.mu.Unlock()
		c.CloseWithError(CodeNormal, "shutting down")
		return nil, ErrClosed
	}
	d.out[p.ID] = &outConn{c: c, refs: 1}
	d.mu.Unlock()
	d.register(c)
	d.wg.Go(func() { d.serveConn(c) })
	return c, nil
}

// release drops one reference to a dialed connection and closes it when
// nothing uses it any more.
func (d *Driver) release(c *Conn) {
	d.mu.Lock()
	oc := d.out[c.Remote()]
	if oc == nil || oc.c != c {
		d.mu.Unlock()
		c.CloseWithError(CodeNormal, "")
		return
	}
	oc.refs--
	last := oc.refs == 0
	if last {
		delete(d.out, c.Remote())
	}
	d.mu.Unlock()
	if last {
		c.CloseWithError(CodeNormal, "")
	}
}
