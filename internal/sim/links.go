package sim

import (
	"slices"
	"time"

	"github.com/swarmtv/swarmtv/chandelier"
	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
	"github.com/swarmtv/swarmtv/tracker"
)

// plink is a child's connection to one parent: the stripes it receives
// from it (a parent may feed several stripes over one connection).
type plink struct {
	to      int32
	mask    uint16
	relayed bool
	// helloAt is when the last hello sent on the link reaches the
	// parent: the bye does not overtake it.
	helloAt int64
}

// goneMemory is how long a peer remembers a node whose connection it
// lost: it neither switches to it nor takes it from a stale assignment.
const goneMemory = 3 * time.Second

// link returns p's link to q, or nil.
func (p *peer) link(q int32) *plink {
	for i := range p.links {
		if p.links[i].to == q {
			return &p.links[i]
		}
	}
	return nil
}

func (p *peer) dropLink(q int32) {
	for i := range p.links {
		if p.links[i].to == q {
			p.links = append(p.links[:i], p.links[i+1:]...)
			return
		}
	}
}

// relayedFrom reports whether p's link from parent q runs through a relay.
func (p *peer) relayedFrom(q int32) bool {
	l := p.link(q)
	return l != nil && l.relayed
}

// helloMemory is how long a parent remembers the number of a child's
// last hello: far longer than a dial, far shorter than the time a
// child's hello numbers take to wrap.
const helloMemory = int64(10 * time.Second)

// newHello reports whether hello number n from child c, arriving at
// now, is newer than the last p took from it (within helloMemory: the
// numbers wrap), and records it.
func (p *peer) newHello(c int32, n uint8, now int64) bool {
	for i := range p.hellos {
		if h := &p.hellos[i]; h.child == c {
			if now-h.at < helloMemory && int8(n-h.n) <= 0 {
				return false
			}
			h.n, h.at = n, now
			return true
		}
	}
	p.hellos = append(p.hellos, helloMark{c, n, now})
	return true
}

// forgetChild forgets what child c's hellos told p: their number and
// whether its link is relayed (the link is closed).
func (p *peer) forgetChild(c int32) {
	p.setRelayed(c, false)
	p.hellos = slices.DeleteFunc(p.hellos, func(h helloMark) bool { return h.child == c })
}

// helloMark is the number of the last hello a parent took from child.
type helloMark struct {
	child int32
	n     uint8
	at    int64
}

// relaysTo reports whether p's link to child c runs through a relay, as
// c's hellos told p (relayedKids).
func (p *peer) relaysTo(c int32) bool {
	return len(p.relayedKids) > 0 && slices.Contains(p.relayedKids, c)
}

// setRelayed records whether child c's link to p is relayed.
func (p *peer) setRelayed(c int32, relayed bool) {
	i := slices.Index(p.relayedKids, c)
	switch {
	case relayed && i < 0:
		p.relayedKids = append(p.relayedKids, c)
	case !relayed && i >= 0:
		p.relayedKids = slices.Delete(p.relayedKids, i, i+1)
	}
}

// forget records that p lost its connection to q.
func (s *Sim) forget(p *peer, q int32) {
	if q == originIdx {
		return
	}
	for i := range p.gone {
		if p.gone[i].id == q || p.gone[i].until <= s.now {
			p.gone[i] = goneEntry{id: q, until: s.now + int64(goneMemory)}
			return
		}
	}
	p.gone = append(p.gone, goneEntry{id: q, until: s.now + int64(goneMemory)})
}

func (s *Sim) isGone(p *peer, q int32) bool {
	for _, g := range p.gone {
		if g.id == q && g.until > s.now {
			return true
		}
	}
	return false
}

// goneEntry is a node p lost the connection to, remembered until until.
type goneEntry struct {
	id    int32
	until int64
}

// setStripe points p's stripe st at parent q (noPeer: none): the core
// learns it at once; the connection to q is opened (or its subscription
// extended), the old parent's subscription shrunk or closed.
func (s *Sim) setStripe(p *peer, st int, q int32) {
	old := p.parents[st]
	if old == q {
		return
	}
	p.parents[st] = q
	p.since[st], p.viaBackup[st] = s.nextSeq, false
	p.node.SetParent(s.t(s.now), st, s.idOrNone(q))
	bit := uint16(1) << st
	if old != noPeer {
		if l := p.link(old); l != nil {
			l.mask &^= bit
			if l.mask == 0 {
				s.push(event{at: max(s.now+s.owd(p, s.peers[old], l.relayed), l.helloAt), kind: evBye, node: old, from: p.idx})
				p.dropLink(old)
			} else {
				s.subscribe(p, s.peers[old], 0)
			}
		}
	}
	if q == noPeer {
		return
	}
	if l := p.link(q); l != nil {
		l.mask |= bit
		s.subscribe(p, s.peers[q], 0)
		return
	}
	p.links = append(p.links, plink{to: q, mask: bit})
	s.connect(p, s.peers[q])
}

// subscribe sends p's hello (its current stripes mask) to q after delay
// plus the one-way delay. The slice it asks from (or, from none, the
// start it names) is fixed now, as the real driver fixes it when it
// starts the link (see helloFrom); the event's aux carries it, its mask
// the stripes, relay whether the link is relayed and stripe the hello's
// number (see helloOf, Sim.hello): the parent reads none of p's state,
// which may run on the other core. A hello sent once the link is up
// overtakes the first, which waits for the dial; the parent ignores the
// first then (newHello).
func (s *Sim) subscribe(p, q *peer, delay int64) {
	l := p.link(q.idx)
	if l == nil {
		return
	}
	s.m.control += s.ctl.hello
	aux := int64(helloFrom(p.node, l.mask, s.cfg.Stripes))
	if aux == 0 {
		aux = -p.node.HelloStart(s.t(s.now))
	}
	at := s.now + delay + s.owd(p, q, l.relayed)
	l.helloAt = max(at, l.helloAt)
	p.hellosSent++
	s.push(event{at: at, kind: evHello, node: q.idx, from: p.idx, aux: aux, mask: l.mask, relay: l.relayed, stripe: p.hellosSent})
}

// helloFrom is the slice a hello for the stripes in mask asks from, as
// internal/transport's startLink computes it: the earliest slice missing
// on those stripes (swarm.Node.NextMissing), or 0 — the parent's newest
// keyframe on — when the node holds nothing of some stripe.
func helloFrom(n *swarm.Node, mask uint16, stripes int) uint64 {
	from := uint64(0)
	for st := range stripes {
		if mask&(1<<st) == 0 {
			continue
		}
		m := n.NextMissing(st)
		if m == 0 {
			return 0
		}
		if from == 0 || m < from {
			from = m
		}
	}
	return from
}

// apply takes an assignment from the tracker: a parent and backups per
// stripe. A parent p lost lately is not taken again (the tracker may not
// have heard yet); the stripe waits for the next answer.
func (s *Sim) apply(p *peer, as []tracker.StripeAssignment) {
	for st := range min(len(as), len(p.parents)) {
		a := &as[st]
		q := s.index(nodeIDOf(a.Parent))
		if q == noPeer || s.isGone(p, q) || q == p.idx || !s.up(q) && q != originIdx {
			q = p.parents[st] // keep what it has (its repair, or none)
		}
		p.backups[st] = p.backups[st][:0]
		p.backupLag[st] = p.backupLag[st][:0]
		for _, b := range a.Backups {
			if j := s.index(nodeIDOf(b)); j != noPeer && j != p.idx {
				p.backups[st] = append(p.backups[st], j)
				p.backupLag[st] = append(p.backupLag[st], time.Duration(b.LagMS)*time.Millisecond)
			}
		}
		s.setStripe(p, st, q)
	}
	s.setPartners(p)
}

func nodeIDOf(n tracker.NodeInfo) swarm.NodeID { return swarm.NodeID(n.ID) }

// repair switches a stripe whose parent was lost to the first usable
// backup (chandelier.Repair: not one p lost lately) and returns the
// switch to report, ok false when no backup is usable.
func (s *Sim) repair(p *peer, st int, lost int32) (tracker.StripeSwitch, bool) {
	ids := p.idsBuf[:0]
	for _, b := range p.backups[st] {
		if b != lost {
			ids = append(ids, string(nodeID(b)))
		}
	}
	p.idsBuf = ids
	// The backups' lags are those the tracker passed on (their latest
	// heartbeats), as the real peer sees them.
	var est chandelier.Estimates
	var op *ovPeer
	if s.cfg.Overlay && int(p.idx) < len(s.ov.nodes) {
		op = s.ov.nodes[p.idx]
	}
	if op != nil {
		e := op.node.Estimates()
		est = chandelier.Estimates{Peers: e.Peers, UploadRatio: e.MeanUpload, Health: e.Health}
	}
	next, ok := chandelier.RepairWith(ids, func(id string) chandelier.Status {
		q := s.index(swarm.NodeID(id))
		status := chandelier.Status{Failed: q == noPeer || s.isGone(p, q)}
		if q != noPeer {
			status.Child = p.node.ChildStripes(s.peers[q].id)&(1<<st) != 0
		}
		if q != noPeer && !status.Failed {
			// With the overlay only, as the ring rule: a peer without it
			// has nothing else to try.
			status.Stale = op != nil && s.pointless(p, st, q)
			// Its room, as its offers of room tell (read at once).
			status.Full = op != nil && q != originIdx && s.ovFeeds(s.peers[q], p)+1 > s.peers[q].capacity
		}
		if k := slices.Index(p.backups[st], q); k >= 0 && k < len(p.backupLag[st]) {
			status.Lag = p.backupLag[st][k]
		}
		return status
	}, chandelier.MaxBackupLag(time.Duration(p.lagMS)*time.Millisecond), est)
	if !ok {
		return tracker.StripeSwitch{}, false
	}
	q := s.index(swarm.NodeID(next))
	s.setStripe(p, st, q)
	p.viaBackup[st] = true
	s.m.backupSwitches++
	return tracker.StripeSwitch{Stripe: st, Parent: next}, true
}

// helloOf is the hello e carries: the stripes in its mask, from slice
// aux on when positive, else from the keyframe its start -aux names
// (wire.Hello.Start; 0: the parent's newest keyframe on).
func helloOf(e *event) wire.Hello {
	h := wire.Hello{Channel: channelName, Stripes: e.mask}
	if e.aux > 0 {
		h.From = uint64(e.aux)
	} else {
		h.Start = -e.aux
	}
	return h
}

// pointless reports whether switching p's stripe st to q cannot help
// (chandelier.Pointless): the stripe starves and q holds nothing newer of
// it. What q holds is read from its core at once, a simplification of
// what its buffer maps and Alives show.
func (s *Sim) pointless(p *peer, st int, q int32) bool {
	if s.peers[q].node == nil {
		return false
	}
	own, capture, ok := p.node.StripeNewest(st)
	if !ok {
		return false
	}
	cand, _, known := s.peers[q].node.StripeNewest(st)
	if chandelier.Pointless(own, s.t(s.now).Sub(capture), cand, known) {
		s.m.pointless++
		return true
	}
	return false
}
