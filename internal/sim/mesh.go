package sim

import (
	"slices"
	"time"
	"unsafe"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// The partner mesh and parent Alives in the simulator, as the real
// driver runs them (internal/transport): a viewer's partners are its
// tracker backups — per stripe, forwarders outside its parent's subtree
// that the placement checked it can reach — the first Config.Partners of
// them taken stripe by stripe in rank order; each partner sends it buffer
// maps and answers its pulls over a partner connection (a punch through
// both NATs, like a parent link), from its own upload.

// Events of the mesh.
const (
	evPartner        kind = 200 + iota // node from's partner stream reaches node (from becomes its watcher)
	evPartnerRefused                   // node's partner from refused it or is unreachable
	evUnwatch                          // node from no longer pulls from node
	evMap                              // buffer map raw from from arrives at node
	evAlive                            // Alive raw from parent from arrives at node
	evPull                             // pull (aux seq, stripe) from node from arrives at partner node
	evPulled                           // chunk raw from partner from, answering a pull, arrives at node
	evPullMissing                      // partner from's "missing (aux, stripe)" arrives at node
	evMapRequest                       // watcher from's request for node's buffer map arrives at node
)

// aliveInterval maps the simulator's AliveInterval (0: none) to the
// core's (negative: none).
func aliveInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// meshDispatch handles the mesh's events.
func (s *Sim) meshDispatch(e *event) {
	p := s.peers[e.node]
	if !p.alive {
		return
	}
	from := s.peers[e.from]
	switch e.kind {
	case evPartner:
		if err := p.node.AddWatcher(s.t(s.now), from.id); err != nil {
			s.push(event{at: s.now + s.owd(p, from, false), kind: evPartnerRefused, node: from.idx, from: p.idx})
		}
	case evPartnerRefused:
		p.noPartner = append(p.noPartner, goneEntry{id: from.idx, until: s.now + int64(refusedMemory)})
		s.dropPartner(p, from.idx)
		s.setPartners(p)
	case evUnwatch:
		p.node.RemoveWatcher(from.id)
	case evMapRequest:
		_ = p.node.HandleMapRequest(s.idOf(e.from)) // one from a watcher gone is ignored
	case evMap:
		// HandleMap copies the map's Held: parse into one array.
		bm, err := wire.ParseBufferMapInto(e.raw, s.held[:0])
		s.held = bm.Held
		if err != nil {
			s.fail("node %d: buffer map from %d does not parse: %v", p.idx, e.from, err)
			return
		}
		// The sender's ID from the ID blocks, not its peer (a cache
		// miss): they are the same string.
		_ = p.node.HandleMap(s.t(s.now), s.idOf(e.from), bm) // a map from a dropped partner is ignored
	case evAlive:
		a, err := wire.ParseAlive(e.raw)
		if err != nil {
			s.fail("node %d: Alive from %d does not parse: %v", p.idx, e.from, err)
			return
		}
		p.node.HandleAlive(s.t(s.now), s.idOf(e.from), a)
	case evPull:
		id := wire.ID{Seq: uint64(e.aux), Stripe: e.stripe}
		raw, ok := p.node.Lookup(id)
		if !ok || s.severed(p, from) || s.uploadBusy(p, from, len(raw)) {
			s.m.control += s.ctl.request
			s.push(event{at: s.now + s.owd(p, from, false), kind: evPullMissing, node: from.idx, from: p.idx, aux: e.aux, stripe: e.stripe})
			return
		}
		arrive := s.transmit(p, from, len(raw), false)
		s.m.sentAs(p, from, id, len(raw), causePull)
		s.push(event{at: arrive, kind: evPulled, node: from.idx, from: p.idx, raw: raw, aux: e.aux, stripe: e.stripe})
	case evPulled:
		if err := p.node.HandlePulled(s.t(s.now), s.idOf(e.from), e.raw); err != nil {
			s.fail("node %d rejected a pulled chunk (slice %d stripe %d) from honest node %d: %v", p.idx, e.aux, e.stripe, e.from, err)
			return
		}
		s.cancelFetch(p, wire.ID{Seq: uint64(e.aux), Stripe: e.stripe})
	case evPullMissing:
		p.node.HandleMissing(s.t(s.now), s.idOf(e.from), wire.ID{Seq: uint64(e.aux), Stripe: e.stripe})
	}
	s.process(p)
}

// meshOut carries what p's core has ready for the mesh: pulls and map
// requests to partners, maps to watchers, Alives to children, and
// partners given up.
func (s *Sim) meshOut(p *peer, rd *swarm.Ready) {
	if !s.cold && len(rd.Maps)+len(rd.Alives)+len(rd.Pulls)+len(rd.MapRequests) > 1 {
		s.warmMesh(rd)
	}
	for _, pl := range rd.Pulls {
		q := s.index(pl.To)
		if q == noPeer {
			continue
		}
		s.m.control += s.ctl.request
		s.m.pulls++
		// A pull to a partner that is gone goes unanswered: the core
		// times it out.
		s.push(event{at: s.now + s.owd(p, s.peers[q], false), kind: evPull, node: q, from: p.idx, aux: int64(pl.ID.Seq), stripe: pl.ID.Stripe})
	}
	for _, id := range rd.MapRequests {
		q := s.index(id)
		if q == noPeer {
			continue
		}
		s.m.control += mapRequestSize
		s.m.mapBytes += mapRequestSize
		// One to a partner that is gone goes unanswered: the core asks
		// again when it next needs a map.
		s.push(event{at: s.now + s.owd(p, s.peers[q], false), kind: evMapRequest, node: q, from: p.idx})
	}
	for _, ms := range rd.Maps {
		q := s.index(ms.To)
		if q == noPeer || !s.up(q) || s.severed(p, s.peers[q]) {
			continue
		}
		b, err := ms.Map.Append(nil)
		if err != nil {
			s.fail("node %d: buffer map does not encode: %v", p.idx, err)
			return
		}
		s.m.control += frameHeader + int64(len(b))
		s.m.mapBytes += frameHeader + int64(len(b))
		s.push(event{at: s.now + s.owd(p, s.peers[q], false), kind: evMap, node: q, from: p.idx, raw: b})
	}
	for _, a := range rd.Alives {
		q := s.index(a.To)
		if q == noPeer || !s.up(q) || s.severed(p, s.peers[q]) {
			continue
		}
		b, err := a.Alive.Append(nil)
		if err != nil {
			s.fail("node %d: Alive does not encode: %v", p.idx, err)
			return
		}
		s.m.control += frameHeader + int64(len(b))
		s.m.aliveBytes += frameHeader + int64(len(b))
		s.push(event{at: s.now + s.owd(p, s.peers[q], p.relaysTo(q)), kind: evAlive, node: q, from: p.idx, raw: b})
	}
	for _, id := range rd.DropPartners {
		q := s.index(id)
		if q == noPeer {
			continue
		}
		p.noPartner = append(p.noPartner, goneEntry{id: q, until: s.now + int64(goneMemory)})
		s.dropPartner(p, q)
		s.push(event{at: s.now + s.owd(p, s.peers[q], false), kind: evUnwatch, node: q, from: p.idx})
	}
	if len(rd.DropPartners) > 0 {
		s.setPartners(p)
	}
}

// warmMesh prefetches the first line of each peer rd's maps, Alives,
// pulls and map requests go to (what sending reads of it: whether it is
// alive, its place in the network), so that their misses overlap (see
// warmSends).
func (s *Sim) warmMesh(rd *swarm.Ready) {
	for i := range rd.Maps {
		s.warmPeer(rd.Maps[i].To)
	}
	for i := range rd.Alives {
		s.warmPeer(rd.Alives[i].To)
	}
	for i := range rd.Pulls {
		s.warmPeer(rd.Pulls[i].To)
	}
	for _, id := range rd.MapRequests {
		s.warmPeer(id)
	}
}

// warmPeer prefetches the first line of node id's peer.
func (s *Sim) warmPeer(id swarm.NodeID) {
	if q := s.index(id); q != noPeer {
		prefetch(unsafe.Pointer(s.peers[q]), 64)
	}
}

// pullServeMax: a partner answers a pull only when the chunk would leave
// its upload within this, sharing it with its children's pushes; else it
// answers Missing (the puller asks another partner, or the origin). A
// partner serves pulls from spare upload only, so pulls never starve its
// own subtree.
const pullServeMax = int64(100 * time.Millisecond)

// uploadBusy reports whether p's upload cannot send size bytes to q
// within pullServeMax, or another of its connections has more than
// pullServeMax queued: as the real driver (internal/transport's
// uploadBusy) refuses a pull while any child's queue holds a few
// chunks, a partner serves pulls only while its pushes are out.
func (s *Sim) uploadBusy(p, q *peer, size int) bool {
	busy := 1
	start := s.now
	for _, c := range p.conns {
		if c.free <= s.now {
			continue
		}
		if c.to == q.idx {
			start = max(start, c.free)
		} else {
			if c.free-s.now > pullServeMax {
				return true
			}
			busy++
		}
	}
	return start+int64(float64(size)*p.upNs*float64(busy))-s.now > pullServeMax
}

// refusedMemory is how long a peer does not ask again a partner that
// refused it (its watchers were full). A full node's watchers rarely
// change, and the backups ranked first are the same for many peers:
// asking again after goneMemory made partner requests and refusals
// ~4 % of a steady run's events (2,000 peers: 1.7 requests per peer per
// second, most of them refused).
const refusedMemory = 15 * time.Second

// frameHeader is a small frame's type and length bytes.
const frameHeader = 2

// mapRequestSize is a map request's frame (wire.MapRequest: a version
// byte).
const mapRequestSize = frameHeader + 1

// dropPartner forgets q as p's partner (the core has dropped it, or will
// when told by SetPartners).
func (s *Sim) dropPartner(p *peer, q int32) {
	p.partners = slices.DeleteFunc(p.partners, func(x int32) bool { return x == q })
}

// setPartners picks p's partners from its backups — rank by rank, stripe
// by stripe, the first Config.Partners nodes that are alive, not p's
// parent on that stripe, not lost lately and not refused lately, and that
// p can reach directly — opens partner streams to the new ones, closes
// those to the ones no longer wanted, and tells p's core.
func (s *Sim) setPartners(p *peer) {
	if s.cfg.Partners == 0 || !p.alive {
		return
	}
	p.noPartner = slices.DeleteFunc(p.noPartner, func(g goneEntry) bool { return g.until <= s.now })
	want := p.wantBuf[:0]
	for r := 0; len(want) < s.cfg.Partners; r++ {
		more := false
		for st := range p.backups {
			if r >= len(p.backups[st]) {
				continue
			}
			more = true
			q := p.backups[st][r]
			if len(want) >= s.cfg.Partners || q == p.idx || q == originIdx || q == p.parents[st] ||
				slices.Contains(want, q) || !s.up(q) || s.isGone(p, q) ||
				slices.ContainsFunc(p.noPartner, func(g goneEntry) bool { return g.id == q }) {
				continue
			}
			want = append(want, q)
		}
		if !more {
			break
		}
	}
	p.wantBuf = want
	if slices.Equal(want, p.partners) {
		return
	}
	// Close the partner streams no longer wanted.
	for _, q := range p.partners {
		if !slices.Contains(want, q) {
			s.push(event{at: s.now + s.owd(p, s.peers[q], false), kind: evUnwatch, node: q, from: p.idx})
		}
	}
	var now []int32
	for _, q := range want {
		if slices.Contains(p.partners, q) {
			now = append(now, q)
			continue
		}
		qp := s.peers[q]
		delay := int64(0)
		if p.link(q) == nil { // a new connection: punch and handshake
			if !canPunch(p.nat, qp.nat) {
				p.noPartner = append(p.noPartner, goneEntry{id: q, until: s.now + int64(goneMemory)})
				continue
			}
			if p.nat.typ != NATOpen || qp.nat.typ != NATOpen {
				delay += 2 * s.trackerOWD(p)
			}
			delay += int64(handshakeRTTs * 2 * float64(s.owd(p, qp, false)))
		}
		s.m.control += s.ctl.hello
		s.push(event{at: s.now + delay + s.owd(p, qp, false), kind: evPartner, node: q, from: p.idx})
		now = append(now, q)
	}
	p.partners = append(p.partners[:0], now...)
	nodes := make([]swarm.NodeID, len(p.partners))
	for i, q := range p.partners {
		nodes[i] = s.peers[q].id
	}
	p.node.SetPartners(s.t(s.now), nodes)
}

// meshLeave tells p's partners and watchers that p is gone: their
// connections to it close (at once when p says goodbye, after the idle
// timeout when it crashed).
func (s *Sim) meshLeave(p *peer, after func(q *peer) int64) {
	for _, q := range p.partners {
		s.push(event{at: after(s.peers[q]), kind: evLinkDown, node: q, from: p.idx})
	}
	for _, id := range p.node.Watchers() {
		if q := s.index(id); q != noPeer && !slices.Contains(p.partners, q) {
			s.push(event{at: after(s.peers[q]), kind: evLinkDown, node: q, from: p.idx})
		}
	}
}
