package transport

import (
	"bufio"
	"context"
	"fmt"
	"slices"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// Lost reports a parent the node found failed and the stripes it fed
// (ascending); those stripes have no parent until the caller sets one.
type Lost struct {
	Parent  swarm.NodeID
	Stripes []int
	// Children is the node's children when the parent was lost, with the
	// stripes each takes from it: a repair must not take a child of the
	// stripe as its parent (a cycle).
	Children map[swarm.NodeID]uint16
	// Newest is the node's newest slice per stripe when the parent was
	// lost: a starved stripe does not switch to a candidate that holds
	// nothing newer (chandelier.Pointless).
	Newest []StripeNewest
}

// parentLink is the subscription to one parent for the stripes in mask.
// A node has one link per distinct parent.
type parentLink struct {
	peer   Peer
	mask   uint16             // stripes asked for in the Hello
	from   uint64             // Hello.From
	start  int64              // Hello.Start (with from 0)
	held   *Conn              // a connection already acquired for the link, or nil
	cancel context.CancelFunc // ends the link's goroutine
}

// parentChange is one pending SetParents/SetStripeParent call.
type parentChange struct {
	stripe int // -1: a full assignment in peers
	peer   Peer
	peers  []Peer
}

// SetParents assigns every stripe's parent at once: parents[s] feeds
// stripe s; a zero Peer (or a missing entry) means none (the origin's
// fallback covers the stripe). Stripes whose parent stays the same are
// not disturbed. It never blocks: the driver dials new parents in the
// background and, if that fails, the node finds them lost (OnLost).
func (d *Driver) SetParents(parents []Peer) {
	d.queueParents(parentChange{stripe: -1, peers: slices.Clone(parents)})
}

// SetStripeParent makes p the parent of one stripe (zero Peer: none),
// leaving the other stripes alone. It never blocks; out-of-range
// stripes are ignored.
func (d *Driver) SetStripeParent(stripe int, p Peer) {
	if stripe < 0 || stripe >= d.cfg.Stripes {
		return
	}
	d.queueParents(parentChange{stripe: stripe, peer: p})
}

// SetParent makes p the parent of every stripe (SetParents with p
// everywhere).
func (d *Driver) SetParent(p Peer) {
	ps := make([]Peer, d.cfg.Stripes)
	for s := range ps {
		ps[s] = p
	}
	d.SetParents(ps)
}

func (d *Driver) queueParents(c parentChange) {
	d.mu.Lock()
	d.pendingParents = append(d.pendingParents, c)
	d.mu.Unlock()
	select {
	case d.parentCh <- struct{}{}:
	default:
	}
}

// Parents returns each stripe's parent as last set (zero: none, or lost
// and not replaced yet). It waits for Run; nil once stopped.
func (d *Driver) Parents() []Peer {
	res := make(chan []Peer, 1)
	if !d.do(func() { res <- slices.Clone(d.stripeParent) }) {
		return nil
	}
	select {
	case ps := <-res:
		return ps
	case <-d.ctx.Done():
		return nil
	}
}

// applyParents applies the pending parent changes. Run goroutine only.
func (d *Driver) applyParents() {
	d.mu.Lock()
	changes := d.pendingParents
	d.pendingParents = nil
	d.mu.Unlock()
	if len(changes) == 0 {
		return
	}
	for _, c := range changes {
		if c.stripe >= 0 {
			d.stripeParent[c.stripe] = c.peer
			continue
		}
		for s := range d.stripeParent {
			var p Peer
			if s < len(c.peers) {
				p = c.peers[s]
			}
			d.stripeParent[s] = p
		}
	}
	d.reconcileParents()
}

// reconcileParents makes the node's parents and the parent links match
// stripeParent: one link per distinct parent, asking its stripes; a link
// whose stripes changed subscribes again on the same connection, from
// the first slice missing on its stripes. Run goroutine only.
func (d *Driver) reconcileParents() {
	now := d.now()
	want := make(map[swarm.NodeID]Peer)
	masks := make(map[swarm.NodeID]uint16)
	for s, p := range d.stripeParent {
		if d.node.Parent(s) != p.ID {
			d.node.SetParent(now, s, p.ID)
		}
		if p.IsZero() {
			continue
		}
		if w, ok := want[p.ID]; ok && w.Addr != p.Addr {
			// One node named at two addresses: the latest stripe's wins.
			d.log.Warn("parent named at two addresses", "parent", p.ID, "addr", w.Addr, "also", p.Addr)
		}
		want[p.ID] = p
		masks[p.ID] |= 1 << s
	}
	// Links to drop or to renew, in ID order (the log reads the same
	// every run).
	ids := make([]swarm.NodeID, 0, len(d.parents))
	for id := range d.parents {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		link := d.parents[id]
		p, ok := want[id]
		switch {
		case !ok || p.Addr != link.peer.Addr:
			link.cancel()
			delete(d.parents, id)
			d.log.Info("parent link closed", "parent", id)
		case masks[id] != link.mask:
			held := d.hold(id)
			link.cancel()
			delete(d.parents, id)
			d.startLink(p, masks[id], held)
		}
	}
	ids = ids[:0]
	for id := range want {
		if d.parents[id] == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		d.startLink(want[id], masks[id], nil)
	}
}

// startLink starts the subscription to p for the stripes in mask, on
// held if it is not nil. Run goroutine only.
func (d *Driver) startLink(p Peer, mask uint16, held *Conn) {
	from := uint64(0)
	for s := range d.cfg.Stripes {
		if mask&(1<<s) == 0 {
			continue
		}
		m := d.node.NextMissing(s)
		if m == 0 { // nothing held: ask from the parent's newest keyframe
			from = 0
			break
		}
		if from == 0 || m < from {
			from = m
		}
	}
	var start int64
	if from == 0 { // one start keyframe for every stripe (swarm.Config.StartAge)
		start = d.node.HelloStart(d.now())
	}
	ctx, cancel := context.WithCancel(d.ctx)
	link := &parentLink{peer: p, mask: mask, from: from, start: start, held: held, cancel: cancel}
	d.parents[p.ID] = link
	d.log.Info("parent link", "parent", p.ID, "addr", p.Addr, "stripes", fmt.Sprintf("%#x", mask), "from", from, "start", start)
	d.wg.Go(func() { d.runParent(ctx, link) })
}

// lostParents turns the node's per-stripe Lost reports into one Lost per
// parent, clears those stripes' parents and closes links left without
// a stripe. Run goroutine only.
func (d *Driver) lostParents(ls []swarm.Lost) []Lost {
	var out []Lost
	for _, l := range ls {
		i := slices.IndexFunc(out, func(o Lost) bool { return o.Parent == l.Parent })
		if i < 0 {
			out = append(out, Lost{Parent: l.Parent})
			i = len(out) - 1
		}
		out[i].Stripes = append(out[i].Stripes, l.Stripe)
		if l.Stripe >= 0 && l.Stripe < len(d.stripeParent) && d.stripeParent[l.Stripe].ID == l.Parent {
			d.stripeParent[l.Stripe] = Peer{}
		}
	}
	var children map[swarm.NodeID]uint16
	var newest []StripeNewest
	if len(out) > 0 {
		children = map[swarm.NodeID]uint16{}
		for _, c := range d.node.Children() {
			children[c] = d.node.ChildStripes(c)
		}
		newest = d.newestLocked()
	}
	for i := range out {
		slices.Sort(out[i].Stripes)
		out[i].Stripes = slices.Compact(out[i].Stripes)
		out[i].Children = children
		out[i].Newest = newest
	}
	if len(out) > 0 {
		d.reconcileParents()
	}
	return out
}

// runParent dials the parent, subscribes to the link's stripes and hands
// the chunks it pushes to the node. When the link fails (not when it is
// replaced) the node is told the parent is gone.
func (d *Driver) runParent(ctx context.Context, link *parentLink) {
	defer link.cancel()
	err := d.subscribe(ctx, link)
	if ctx.Err() != nil {
		return // replaced or shutting down
	}
	d.log.Warn("parent link failed", "parent", link.peer.ID, "err", err)
	d.do(func() {
		if d.parents[link.peer.ID] == link {
			delete(d.parents, link.peer.ID)
			d.node.NodeGone(d.now(), link.peer.ID)
		}
	})
}

// subscribe runs link: it dials, writes the hello, tells the node the
// parent is up, and hands the chunks to the node until the link fails.
func (d *Driver) subscribe(ctx context.Context, link *parentLink) error {
	p := link.peer
	c := link.held
	if c == nil {
		var err error
		if c, err = d.acquire(ctx, p); err != nil {
			return err
		}
	}
	defer d.release(c)
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	defer cancelOnDone(ctx, s)()
	hello := wire.Hello{Channel: d.cfg.Channel, Stripes: link.mask, From: link.from, Start: link.start}
	if err := wire.WriteFrame(s, wire.FrameHello, hello.Append(nil)); err != nil {
		return fmt.Errorf("write hello: %w", err)
	}
	// The stream is open and the hello on its way: the parent's liveness
	// timer starts now, not at SetParents (the dial does not count).
	if !d.do(func() {
		if d.parents[p.ID] == link {
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
		case wire.FrameAlive:
			a, err := wire.ParseAlive(f.Payload)
			if err != nil {
				d.protocolError(c, err)
				return err
			}
			if !d.do(func() { d.node.HandleAlive(d.now(), p.ID, a) }) {
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

// hold takes one more reference to the live dialed connection to id, so
// a link renewed with other stripes keeps it; nil when there is none.
// Pair with release.
func (d *Driver) hold(id swarm.NodeID) *Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	if oc := d.out[id]; oc != nil && oc.c.Context().Err() == nil {
		oc.refs++
		return oc.c
	}
	return nil
}
