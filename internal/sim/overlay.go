package sim

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/swarmtv/swarmtv/chandelier"
	"github.com/swarmtv/swarmtv/internal/report"
	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/overlay"
	"github.com/swarmtv/swarmtv/tracker"
)

// The overlay in the simulator (Config.Overlay): every viewer runs an
// overlay.Node, driven like the swarm cores: messages are events that
// take the one-way delay between the two peers (plus jitter, and a
// retransmission round when a packet is lost: overlay messages travel on
// QUIC streams), timers come from NextDeadline.
//
// Reachability: two peers exchange overlay messages when their NATs let
// them punch (candidates relayed by overlay members they both reach, so
// no tracker is needed), or through a relay when Config.Relay; a public
// peer is always reachable. A message to a peer that left, or across a
// partition, is lost, and its sender learns the peer unreachable
// (NodeFailed) after a dial timeout, as internal/transport's driver does.
//
// A newcomer joins through a member it can reach (the tracker's hint, or
// a --bootstrap address during an outage); a member that leaves
// gracefully closes its connections, so its neighbours learn at once; a
// crashed one is found by their probes.
//
// Partition (Config.PartitionAt, HealAt): the peers split by region
// parity (region 0 — the origin's and tracker's — and the even regions on
// one side). Every message, chunk, fetch and tracker request crossing
// the cut is lost while it lasts; the parent links across it die.
//
// Figures: lookups (each member every LookupEvery, a random key) succeed
// when answered with the key's true owner among the members at answer
// time, or at its start when a member joined in front of the key
// meanwhile (lookups during the initial flash crowd, during a partition
// and the 30 s after it, when "true" is a matter of side, are not
// counted); hops; ring consistency (every
// member's successor and predecessor are its true neighbours) checked
// every ovCheckEvery; the time from healing to one consistent ring and
// the messages sent meanwhile.

// Overlay event kinds (after queue.go's).
const (
	evOvMsg     kind = 100 + iota // overlay message (slot aux) from peer from arrives at node
	evOvTick                      // node's overlay timer, generation aux
	evOvFailed                    // node learns peer from unreachable
	evOvLookup                    // node starts a lookup and re-arms
	evOvCheck                     // ring consistency check
	evPartition                   // the network splits
	evHeal                        // the partition heals
)

const (
	ovDialFail    = 3e9   // a dial to an unreachable peer fails after this
	ovCheckEvery  = 250e6 // ring checks
	ovSettle      = 30e9  // lookups this long after a heal are not counted
	ovMaxHops     = 64
	streamOverlay = 1<<62 + 17 // overlay randomness: one stream per peer, this + index
)

// ovPeer is one viewer's overlay state.
type ovPeer struct {
	node     *overlay.Node
	rng      *rand.Rand
	timerAt  int64
	timerGen int64
	joined   bool
	failing  map[int32]bool // an evOvFailed is pending for these peers
	// depth is, per stripe, the depth this peer advertises over the ring
	// (chandelier's ring rule); unknownDepth before it had a parent.
	depth []int
	// health is the peer's own continuity so far (slices played on time
	// / slices due), fed to the gossip estimates; healthAt is when it was
	// last refreshed (once a heartbeat interval).
	health   float64
	healthAt int64
	// playedAt and dueAt are the core's played and due slices when
	// health was last figured (recentHealth).
	playedAt, dueAt uint64
	offers          []overlay.Offer // what it offers for partner discovery (reused)
}

// unknownDepth is the depth a peer advertises before it has a parent.
const unknownDepth = 1 << 20

var debugOv = false

type ringMember struct {
	id  overlay.ID
	idx int32
}

// ovSim is the simulator's overlay state.
type ovSim struct {
	nodes []*ovPeer // by peer index; nil for the origin
	msgs  []overlay.Message
	free  []int64
	ring  []ringMember // alive joined members, by ID
	pick  *rand.Rand   // bootstrap choices

	cut      bool
	healedAt int64 // -1 until a heal

	sent           uint64 // overlay messages sent
	offerRepairs   uint64 // ring-rule switches to a member known only from its offer (partner discovery)
	lookups        uint64 // counted lookups finished (answered or timed out)
	lookupOK       uint64 // answered with the true owner
	lookupAnswered uint64
	lookupTimeouts uint64
	lookupExcluded uint64
	hops           [ovMaxHops + 1]uint64
	lookupAt       map[ovLookupKey]overlay.ID // counted lookups in flight (of members still alive): the key's owner at the start

	consistent       bool
	consistentSince  int64 // -1 when not consistent
	mergeMs          *float64
	mergeMsgs        *float64
	sentAtHeal       uint64
	churnStopped     bool
	churnConsistent  int64 // ms from churn stop to a consistent ring; -1 not yet
	partitionSidesOK bool  // during a partition: each side formed its own consistent ring
}

type ovLookupKey struct {
	node int32
	req  uint64
}

func (s *Sim) ovInit() {
	s.ov = &ovSim{
		pick:            rand.New(rand.NewPCG(s.cfg.Seed, streamOverlay-1)),
		healedAt:        -1,
		consistentSince: -1,
		churnConsistent: -1,
		lookupAt:        map[ovLookupKey]overlay.ID{},
	}
}

// ovStart schedules the overlay's own events at the start of Run.
func (s *Sim) ovStart() {
	if s.cfg.PartitionAt > 0 {
		s.push(event{at: int64(s.cfg.PartitionAt), kind: evPartition})
	}
	if s.cfg.HealAt > 0 {
		s.push(event{at: int64(s.cfg.HealAt), kind: evHeal})
	}
	if s.cfg.Overlay {
		s.push(event{at: ovCheckEvery, kind: evOvCheck})
	}
}

// side is the half of a partition a peer is in.
func (s *Sim) side(p *peer) int { return int(p.region % 2) }

// severed reports whether the partition cuts a from b now.
func (s *Sim) severed(a, b *peer) bool {
	return s.ov != nil && s.ov.cut && s.side(a) != s.side(b)
}

// ovReach reports whether a can open a connection to b for overlay
// traffic.
func (s *Sim) ovReach(a, b *peer) bool {
	if !b.alive || s.severed(a, b) {
		return false
	}
	if s.cfg.Relay {
		return true
	}
	ta, tb := a.nat.typ, b.nat.typ
	hard := func(t NATType) bool { return t == NATPortRestricted || t == NATSymmetric }
	return !(ta == NATSymmetric && hard(tb) || tb == NATSymmetric && hard(ta))
}

// ovArrive makes p's overlay node and joins it through a member it reaches.
func (s *Sim) ovArrive(p *peer) {
	for len(s.ov.nodes) <= int(p.idx) {
		s.ov.nodes = append(s.ov.nodes, nil)
	}
	rng := rand.New(rand.NewPCG(s.cfg.Seed, streamOverlay+uint64(p.idx)))
	cfg := overlay.Config{
		Self:        overlay.Peer{ID: overlay.ID(rng.Uint64()), Addr: strconv.Itoa(int(p.idx))},
		Rand:        rng,
		MergeFanout: s.cfg.MergeFanout,
	}
	node, err := overlay.New(cfg)
	if err != nil {
		s.err = fmt.Errorf("sim: overlay core: %w", err)
		return
	}
	op := &ovPeer{node: node, rng: rng, timerAt: -1, depth: make([]int, s.cfg.Stripes), health: 1}
	for st := range op.depth {
		op.depth[st] = unknownDepth
	}
	s.ov.nodes[p.idx] = op
	node.SetLocal(p.ratio, 1)
	if via, ok := s.ovBootstrap(p); ok {
		node.Join(s.t(s.now), via)
	} else {
		// The first member founds the ring.
		node.Tick(s.t(s.now))
		op.joined = true
		s.ovAddMember(p.idx)
	}
	s.ovProcess(p)
	s.push(event{at: s.now + int64(op.rng.Float64()*float64(s.cfg.LookupEvery)), kind: evOvLookup, node: p.idx})
}

// ovBootstrap picks a member p reaches: the tracker's hint or a peer
// whose address the viewer was given.
func (s *Sim) ovBootstrap(p *peer) (overlay.Peer, bool) {
	if len(s.ov.ring) == 0 {
		return overlay.Peer{}, false
	}
	for range 16 {
		m := s.ov.ring[s.ov.pick.IntN(len(s.ov.ring))]
		if q := s.peers[m.idx]; q != p && s.ovReach(p, q) {
			return s.ov.nodes[m.idx].node.Self(), true
		}
	}
	return overlay.Peer{}, false
}

func (s *Sim) ovAddMember(idx int32) {
	id := s.ov.nodes[idx].node.Self().ID
	i, _ := slices.BinarySearchFunc(s.ov.ring, id, func(m ringMember, id overlay.ID) int { return cmpID(m.id, id) })
	s.ov.ring = slices.Insert(s.ov.ring, i, ringMember{id: id, idx: idx})
}

func (s *Sim) ovRemoveMember(idx int32) {
	op := s.ov.nodes[idx]
	if op == nil || !op.joined {
		return
	}
	id := op.node.Self().ID
	i, ok := slices.BinarySearchFunc(s.ov.ring, id, func(m ringMember, id overlay.ID) int { return cmpID(m.id, id) })
	if ok && s.ov.ring[i].idx == idx {
		s.ov.ring = slices.Delete(s.ov.ring, i, i+1)
	}
}

func cmpID(a, b overlay.ID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ovLeave takes p's node out. A graceful leave closes its connections:
// the members it knew learn at once.
func (s *Sim) ovLeave(p *peer, crash bool) {
	op := s.ov.nodes[p.idx]
	if op == nil {
		return
	}
	s.ovRemoveMember(p.idx)
	if !crash {
		for _, m := range op.node.Members() {
			q := s.ovIndex(m)
			if q != noPeer && s.peers[q].alive && !s.severed(p, s.peers[q]) {
				s.push(event{at: s.now + s.owd(p, s.peers[q], false), kind: evOvFailed, node: q, from: p.idx})
			}
		}
	}
	s.ov.nodes[p.idx] = nil
}

func (s *Sim) ovIndex(m overlay.Peer) int32 {
	n, err := strconv.Atoi(m.Addr)
	if err != nil || n <= 0 || n >= len(s.peers) {
		return noPeer
	}
	return int32(n)
}

// ovProcess acts on what p's overlay node has ready and re-arms its timer.
func (s *Sim) ovProcess(p *peer) {
	op := s.ov.nodes[p.idx]
	if op == nil {
		return
	}
	for op.node.HasReady() {
		rd := op.node.Ready()
		for _, env := range rd.Messages {
			s.ovSend(p, op, env)
		}
		for _, ev := range rd.Events {
			switch ev := ev.(type) {
			case overlay.Joined:
				if !op.joined {
					op.joined = true
					s.ovAddMember(p.idx)
				}
			case overlay.JoinFailed:
				if via, ok := s.ovBootstrap(p); ok {
					op.node.Join(s.t(s.now), via)
				}
			case overlay.LookupDone:
				s.ovLookupDone(p, ev)
			}
		}
	}
	dl := op.node.NextDeadline()
	if dl.IsZero() {
		op.timerGen++
		op.timerAt = -1
		return
	}
	at := max(int64(dl.Sub(epoch)), s.now)
	if at == op.timerAt {
		return
	}
	op.timerGen++
	op.timerAt = at
	s.push(event{at: at, kind: evOvTick, node: p.idx, aux: op.timerGen})
}

// ovSend carries one message, or reports its destination unreachable.
func (s *Sim) ovSend(p *peer, op *ovPeer, env overlay.Envelope) {
	q := s.ovIndex(env.To)
	if q == noPeer || s.ov.nodes[q] == nil || s.ov.nodes[q].node.Self() != env.To || !s.ovReach(p, s.peers[q]) {
		if q == noPeer || op.failing[q] {
			return
		}
		if op.failing == nil {
			op.failing = map[int32]bool{}
		}
		op.failing[q] = true
		s.push(event{at: s.now + ovDialFail, kind: evOvFailed, node: p.idx, from: q, aux: 1})
		return
	}
	s.ov.sent++
	dst := s.peers[q]
	relayed := s.cfg.Relay && !s.ovDirect(p, dst)
	d := s.owd(p, dst, relayed)
	lat := d + int64(op.rng.Float64()*jitterShare*float64(d))
	if s.cfg.Loss > 0 && op.rng.Float64() < s.cfg.Loss {
		lat += 2*d + 10e6
	}
	var slot int64
	if n := len(s.ov.free); n > 0 {
		slot = s.ov.free[n-1]
		s.ov.free = s.ov.free[:n-1]
		s.ov.msgs[slot] = env.Msg
	} else {
		slot = int64(len(s.ov.msgs))
		s.ov.msgs = append(s.ov.msgs, env.Msg)
	}
	s.push(event{at: s.now + lat, kind: evOvMsg, node: q, from: p.idx, aux: slot})
}

// ovDirect reports whether a and b punch without a relay (by NAT type).
func (s *Sim) ovDirect(a, b *peer) bool {
	ta, tb := a.nat.typ, b.nat.typ
	hard := func(t NATType) bool { return t == NATPortRestricted || t == NATSymmetric }
	return !(ta == NATSymmetric && hard(tb) || tb == NATSymmetric && hard(ta))
}

// ovDispatch runs the overlay's events.
func (s *Sim) ovDispatch(e *event) {
	switch e.kind {
	case evOvMsg:
		m := s.ov.msgs[e.aux]
		s.ov.msgs[e.aux] = nil
		s.ov.free = append(s.ov.free, e.aux)
		p := s.peers[e.node]
		op := s.ov.nodes[e.node]
		from := s.ov.nodes[e.from]
		if !p.alive || op == nil || s.severed(s.peers[e.from], p) {
			return
		}
		var sender overlay.Peer
		if from != nil {
			sender = from.node.Self()
		} else {
			return // the sender left meanwhile: its connection is gone
		}
		op.node.Step(s.t(s.now), sender, m)
		s.ovProcess(p)
	case evOvTick:
		p := s.peers[e.node]
		op := s.ov.nodes[e.node]
		if !p.alive || op == nil || e.aux != op.timerGen {
			return
		}
		op.timerAt = -1
		op.node.Tick(s.t(s.now))
		s.ovAdvertise(p, op)
		s.ovProcess(p)
	case evOvFailed:
		p := s.peers[e.node]
		op := s.ov.nodes[e.node]
		if !p.alive || op == nil {
			return
		}
		if e.aux == 1 {
			delete(op.failing, e.from)
			if q := s.peers[e.from]; s.ov.nodes[e.from] != nil && s.ovReach(p, q) {
				return // reachable again by now: the dial succeeded
			}
		}
		if id, ok := s.ovIDOf(e.from); ok {
			op.node.NodeFailed(s.t(s.now), id)
			s.ovProcess(p)
		}
	case evOvLookup:
		p := s.peers[e.node]
		op := s.ov.nodes[e.node]
		if !p.alive || op == nil {
			return
		}
		if op.joined {
			key := overlay.ID(op.rng.Uint64())
			req := op.node.Lookup(s.t(s.now), key)
			if s.ovCounting() {
				owner, _ := s.ovOwner(key)
				s.ov.lookupAt[ovLookupKey{p.idx, req}] = owner
			} else {
				s.ov.lookupExcluded++
			}
			s.ovProcess(p)
		}
		s.push(event{at: s.now + int64(s.cfg.LookupEvery), kind: evOvLookup, node: p.idx})
	case evOvCheck:
		s.ovCheck()
		s.push(event{at: s.now + ovCheckEvery, kind: evOvCheck})
	case evPartition:
		s.ov.cut = true
		s.ovCutLinks()
	case evHeal:
		s.ov.cut = false
		s.ov.healedAt = s.now
		s.ov.sentAtHeal = s.ov.sent
		s.ov.consistentSince = -1
	}
}

// ovIDOf is the ring ID peer idx had (its node may be gone).
func (s *Sim) ovIDOf(idx int32) (overlay.ID, bool) {
	if idx <= 0 || int(idx) >= len(s.ov.nodes) {
		return 0, false
	}
	if op := s.ov.nodes[idx]; op != nil {
		return op.node.Self().ID, true
	}
	// A departed peer: its ID is the first draw of its stream.
	return overlay.ID(rand.New(rand.NewPCG(s.cfg.Seed, streamOverlay+uint64(idx))).Uint64()), true
}

// ovCounting reports whether lookups started now count towards success.
func (s *Sim) ovCounting() bool {
	o := s.ov
	return s.now >= int64(s.cfg.FlashCrowd) && !o.cut && (o.healedAt < 0 || s.now >= o.healedAt+ovSettle)
}

func (s *Sim) ovLookupDone(p *peer, ev overlay.LookupDone) {
	k := ovLookupKey{p.idx, ev.Req}
	before, counted := s.ov.lookupAt[k]
	if !counted {
		return
	}
	delete(s.ov.lookupAt, k)
	s.ov.lookups++
	if ev.Err != nil {
		s.ov.lookupTimeouts++
		if debugOv {
			fmt.Printf("timeout t=%.1fs key=%v\n", float64(s.now)/1e9, ev.Key)
		}
		return
	}
	s.ov.lookupAnswered++
	s.ov.hops[min(ev.Hops, ovMaxHops)]++
	// Right: the key's owner at the answer, or at the start when a
	// member joined in front of the key meanwhile (and is alive).
	owner, ok := s.ovOwner(ev.Key)
	if ok && (owner == ev.Owner.ID || before == ev.Owner.ID && s.ovAlive(ev.Owner)) {
		s.ov.lookupOK++
	} else if debugOv {
		fmt.Printf("wrong owner t=%.1fs key=%v got=%v want=%v hops=%d ring=%d\n", float64(s.now)/1e9, ev.Key, ev.Owner.ID, owner, ev.Hops, len(s.ov.ring))
	}
}

// ovAlive reports whether m is a live member.
func (s *Sim) ovAlive(m overlay.Peer) bool {
	q := s.ovIndex(m)
	return q != noPeer && s.peers[q].alive && s.ov.nodes[q] != nil && s.ov.nodes[q].node.Self() == m
}

// ovOwner is the true owner of key: the first member at or after it.
func (s *Sim) ovOwner(key overlay.ID) (overlay.ID, bool) {
	r := s.ov.ring
	if len(r) == 0 {
		return 0, false
	}
	i, _ := slices.BinarySearchFunc(r, key, func(m ringMember, id overlay.ID) int { return cmpID(m.id, id) })
	return r[i%len(r)].id, true
}

// ringConsistent checks every member's successor and predecessor against
// its true neighbours among members (members it can reach: one ring per
// side while a partition lasts).
func (s *Sim) ringConsistent() bool {
	sides := [][]ringMember{s.ov.ring}
	if s.ov.cut {
		sides = [][]ringMember{nil, nil}
		for _, m := range s.ov.ring {
			sd := s.side(s.peers[m.idx])
			sides[sd] = append(sides[sd], m)
		}
	}
	for _, r := range sides {
		n := len(r)
		for i, m := range r {
			node := s.ov.nodes[m.idx].node
			succ := node.Successor()
			if n == 1 {
				if succ.ID != m.id && len(node.Successors()) > 0 {
					return false
				}
				continue
			}
			if succ.ID != r[(i+1)%n].id {
				return false
			}
			if pred, ok := node.Predecessor(); !ok || pred.ID != r[(i+n-1)%n].id {
				return false
			}
		}
	}
	return true
}

// ovCheck samples ring consistency and the merge figures.
func (s *Sim) ovCheck() {
	o := s.ov
	o.consistent = s.ringConsistent()
	if !o.consistent {
		o.consistentSince = -1
		return
	}
	if o.consistentSince < 0 {
		o.consistentSince = s.now
	}
	if o.cut {
		o.partitionSidesOK = true
	}
	if o.healedAt >= 0 && o.mergeMs == nil {
		ms := float64(s.now-o.healedAt) / 1e6
		per := float64(o.sent-o.sentAtHeal) / float64(max(len(o.ring), 1))
		o.mergeMs, o.mergeMsgs = &ms, &per
	}
	if s.cfg.ChurnStopAt > 0 && s.now >= int64(s.cfg.ChurnStopAt) && o.churnConsistent < 0 {
		o.churnConsistent = (s.now - int64(s.cfg.ChurnStopAt)) / 1e6
	}
}

// ovCutLinks: at a partition, parent links across the cut die (their
// children find out by the silence; the parents after the idle timeout).
func (s *Sim) ovCutLinks() {
	for _, i := range s.aliveAll() {
		p := s.peers[i]
		for _, l := range p.links {
			if s.severed(p, s.peers[l.to]) {
				s.push(event{at: s.now + idleTimeout, kind: evLinkDown, node: l.to, from: p.idx})
			}
		}
	}
}

// ovReport fills the report's overlay figures.
func (s *Sim) ovReport(r *report.Report) {
	if !s.cfg.Overlay {
		return
	}
	o := s.ov
	s.ovCheck()
	if s.cfg.Media && (s.cfg.KillTrackerAt > 0 || s.cfg.PartitionAt > 0) {
		s.notes = append(s.notes, fmt.Sprintf("overlay: %d stripes switched to a ring member by the ring rule while the tracker was away (%d to a member found by partner discovery); %d children let go by parents over their capacity; %d candidate parents passed over as pointless (the stripe starved and they held nothing newer); %d switches to a backup", s.m.ringRepairs, o.offerRepairs, s.m.shed, s.m.pointless, s.m.backupSwitches))
	}
	ro := &report.Overlay{}
	ro.LookupSuccess = report.Ratio(float64(o.lookupOK), float64(o.lookups))
	if o.lookupAnswered > 0 {
		var sum, n uint64
		for h, c := range o.hops {
			sum += uint64(h) * c
			n += c
		}
		want := (99*n + 99) / 100
		var acc uint64
		p99 := 0
		for h, c := range o.hops {
			acc += c
			if acc >= want {
				p99 = h
				break
			}
		}
		ro.LookupHops = &report.Hops{Mean: float64(sum) / float64(n), P99: float64(p99)}
	}
	c := o.consistent
	ro.Consistent = &c
	if s.cfg.Media {
		e := s.ovEstimates()
		s.notes = append(s.notes, fmt.Sprintf("overlay: gossip estimates at the %d of %d members with a completed epoch, errors p90 (worst): ring size %.1f %% (%.1f %%), mean upload %.1f %% (%.1f %%), mean health %.3f (%.3f)",
			e.Final, e.Members, 100*e.PeersP90, 100*e.PeersMax, 100*e.UploadP90, 100*e.UploadMax, e.HealthP90, e.HealthMax))
	}
	ro.MergeMs, ro.MergeMessagesPerPeer = o.mergeMs, o.mergeMsgs
	r.Overlay = ro
	if o.lookups > 0 {
		s.notes = append(s.notes, fmt.Sprintf("overlay: %d lookups: %d answered by the true owner, %d by another member, %d timed out", o.lookups, o.lookupOK, o.lookupAnswered-o.lookupOK, o.lookupTimeouts))
	}
	if o.lookupExcluded > 0 {
		s.notes = append(s.notes, fmt.Sprintf("overlay: %d lookups started during the initial flash crowd, a partition or within %v of its healing are not counted in lookup_success", o.lookupExcluded, time.Duration(ovSettle)))
	}
	if s.cfg.PartitionAt > 0 && s.cfg.Media {
		for sd, c := range s.sideContinuity() {
			if c != nil {
				what := "the origin's side"
				if sd == 1 {
					what = "the side cut off from the origin"
				}
				s.notes = append(s.notes, fmt.Sprintf("partition: continuity %.4f on %s (viewers alive at the end, whole run)", *c, what))
			}
		}
	}
	if s.cfg.ChurnStopAt > 0 {
		if o.churnConsistent >= 0 {
			s.notes = append(s.notes, fmt.Sprintf("overlay: ring consistent %d ms after churn stopped", o.churnConsistent))
		} else {
			s.notes = append(s.notes, "overlay: ring NOT consistent after churn stopped")
		}
	}
}

// ovMergeSent sums the merge messages (probes, their forwards, hints,
// rechecks) the live members sent.
func (s *Sim) ovMergeSent() uint64 {
	var n uint64
	for _, op := range s.ov.nodes {
		if op != nil {
			n += op.node.Stats().MergeSent
		}
	}
	return n
}

// sideContinuity is the continuity of the viewers alive now, per side of
// the partition (over their whole watch).
func (s *Sim) sideContinuity() [2]*float64 {
	var played, due [2]uint64
	for _, i := range s.aliveAll() {
		p := s.peers[i]
		st := p.node.Stats()
		played[s.side(p)] += st.PlayedSlices
		due[s.side(p)] += st.PlayedSlices + st.LateSlices + st.LostSlices
	}
	return [2]*float64{report.Ratio(float64(played[0]), float64(due[0])), report.Ratio(float64(played[1]), float64(due[1]))}
}

// ovBootstrapParent: a newcomer that cannot reach the tracker takes its
// bootstrap member as the parent of every stripe, as the real peer does
// with --bootstrap (the origin's fallback covers what it cannot feed);
// it joins the tracker once it is back.
func (s *Sim) ovBootstrapParent(p *peer) {
	if p.joined || slices.ContainsFunc(p.parents, func(q int32) bool { return q != noPeer }) {
		return
	}
	via, ok := s.ovBootstrap(p)
	if !ok {
		return
	}
	q := s.ovIndex(via)
	if q == noPeer || s.isGone(p, q) {
		return
	}
	for st := range p.parents {
		s.setStripe(p, st, q)
	}
	s.process(p)
}

// ovAway reports whether p cannot reach the tracker now.
func (s *Sim) ovAway(p *peer) bool {
	return !s.trUp || s.severed(p, s.peers[originIdx])
}

// ovDepthOf is the depth peer q advertises in stripe st (the origin: 0).
func (s *Sim) ovDepthOf(q int32, st int) int {
	if q == originIdx {
		return 0
	}
	if q == noPeer || int(q) >= len(s.ov.nodes) || s.ov.nodes[q] == nil {
		return unknownDepth
	}
	return s.ov.nodes[q].depth[st]
}

// ovAdvertise refreshes the depths p advertises with its overlay rounds
// (the ring rule's input; read by others at once, a simplification of
// carrying them in the stabilisation messages): its parent's depth plus
// one per stripe; while p cannot reach the tracker they never grow.
func (s *Sim) ovAdvertise(p *peer, op *ovPeer) {
	if !s.cfg.Media {
		return
	}
	if s.now-op.healthAt >= int64(s.cfg.Heartbeat) {
		op.healthAt = s.now
		op.health = op.recentHealth(p)
		op.node.SetLocal(p.ratio, op.health)
	}
	away := s.ovAway(p)
	if s.cfg.Estimates {
		e := op.node.Estimates()
		p.node.SetEstimates(s.t(s.now), swarm.Estimates{Peers: e.Peers, UploadRatio: e.MeanUpload, Health: e.Health, TrackerAway: away})
		s.process(p)
	}
	if away {
		s.ovShed(p)
	}
	if s.ovDepths(p, op, away) {
		s.ovTellChildren(p, 0)
	}
	// Partner discovery: offer the room left in every stripe this peer
	// is fed in (its upload is shared by the stripes).
	free := max(p.capacity-s.ovFeeds(p, p), 0)
	op.offers = op.offers[:0]
	for st, d := range op.depth {
		if d < unknownDepth && d <= math.MaxUint16 {
			op.offers = append(op.offers, overlay.Offer{Stripe: uint8(st), Depth: uint16(d), Free: uint16(min(free, math.MaxUint16))})
		}
	}
	op.node.SetOffers(op.offers)
}

// ovDepths takes p's depth per stripe from its parents' (plus one);
// while p cannot reach the tracker they never grow. It reports whether
// one changed.
func (s *Sim) ovDepths(p *peer, op *ovPeer, away bool) bool {
	changed := false
	for st, q := range p.parents {
		if q == noPeer {
			continue
		}
		d := min(s.ovDepthOf(q, st), unknownDepth-1) + 1
		if away {
			d = chandelier.RingDepth(op.depth[st], d-1)
		}
		if d != op.depth[st] {
			op.depth[st], changed = d, true
		}
	}
	return changed
}

// ovMaxTell bounds how many levels one depth change is passed down at
// once (a transient cycle must not loop).
const ovMaxTell = 64

// ovTellChildren passes a change of p's depth on to its children at
// once, as the real peer's Tell does (proxy refreshDepth): each takes
// its depth from its parents and passes a change on in turn. (The
// message's one-way delay is not modelled: depths are read at once, as
// elsewhere in the simulator.)
func (s *Sim) ovTellChildren(p *peer, level int) {
	if level >= ovMaxTell {
		return
	}
	for _, id := range p.node.Children() {
		c := s.index(id)
		if c == noPeer || int(c) >= len(s.ov.nodes) || s.ov.nodes[c] == nil || !s.peers[c].alive {
			continue
		}
		cp := s.peers[c]
		if s.ovDepths(cp, s.ov.nodes[c], s.ovAway(cp)) {
			s.ovTellChildren(cp, level+1)
		}
	}
}

// ovRepair is the ring rule (chandelier.RingParent) for a stripe of p
// whose parent lost was lost with no usable backup while p cannot reach
// the tracker: the shallowest ring member in p's tables that ranks before
// p, is reachable, not lost lately and has room (or already feeds p)
// becomes the parent. ok is false when none qualifies (the origin's
// fallback covers the stripe).
func (s *Sim) ovRepair(p *peer, st int, lost int32) (tracker.StripeSwitch, bool) {
	op := s.ov.nodes[p.idx]
	if op == nil || !op.joined || !s.ovAway(p) {
		return tracker.StripeSwitch{}, false
	}
	// Candidates: the members in p's tables, then those partner
	// discovery found offering room in the stripe.
	ms := op.node.Members()
	tables := len(ms)
	for _, o := range op.node.Offers(s.t(s.now), uint8(st)) {
		if !slices.Contains(ms, o.Peer) {
			ms = append(ms, o.Peer)
		}
	}
	idx := make([]int32, 0, len(ms))
	cands := make([]chandelier.RingCandidate, 0, len(ms))
	for _, m := range ms {
		q := s.ovIndex(m)
		if q == noPeer || s.ov.nodes[q] == nil || s.ov.nodes[q].node.Self() != m {
			continue
		}
		qp := s.peers[q]
		c := chandelier.RingCandidate{
			Rank:   chandelier.RingRank{Depth: s.ov.nodes[q].depth[st], ID: uint64(m.ID)},
			Linked: p.link(q) != nil,
			Failed: q == lost || q == p.idx || s.isGone(p, q) || !qp.alive || !s.ovReach(p, qp),
		}
		c.Spare = !c.Failed && s.ovFeeds(qp, p) < qp.capacity
		c.Stale = !c.Failed && s.pointless(p, st, q)
		idx = append(idx, q)
		cands = append(cands, c)
	}
	i, ok := chandelier.RingParent(chandelier.RingRank{Depth: op.depth[st], ID: uint64(op.node.Self().ID)}, cands)
	if !ok {
		return tracker.StripeSwitch{}, false
	}
	q := idx[i]
	s.setStripe(p, st, q)
	if d := chandelier.RingDepth(op.depth[st], cands[i].Rank.Depth); d != op.depth[st] {
		op.depth[st] = d
		s.ovTellChildren(p, 0)
	}
	if !slices.Contains(ms[:tables], s.ov.nodes[q].node.Self()) {
		s.ov.offerRepairs++
	}
	s.m.ringRepairs++
	return tracker.StripeSwitch{Stripe: st, Parent: string(nodeID(q))}, true
}

// recentHealth is p's recent continuity, as the real peer gives the
// gossip (proxy setLocal): slices played complete and on time / slices
// due since the last refresh of at least healthSpan; the figure before
// while too few were due (1 before any).
func (op *ovPeer) recentHealth(p *peer) float64 {
	st := p.node.Stats()
	played, due := st.PlayedSlices, st.PlayedSlices+st.LateSlices+st.LostSlices
	if due-op.dueAt < healthSlices {
		return op.health
	}
	h := float64(played-op.playedAt) / float64(due-op.dueAt)
	op.playedAt, op.dueAt = played, due
	return h
}

// healthSlices is how many slices due a recent health figure spans at
// least (5 s of 100 ms slices).
const healthSlices = 50

// estErrors are the errors of the gossip estimates at the members with
// the figures of a completed epoch (Final; a newcomer has none for an
// epoch), against the truth over the members: relative for the ring size
// and the mean upload, absolute for the mean health. P90 is the 90th
// percentile over those members, Max the worst.
type estErrors struct {
	Members, Final                 int
	PeersP90, UploadP90, HealthP90 float64
	PeersMax, UploadMax, HealthMax float64
}

// ovEstimates compares the members' gossip estimates with the truth.
func (s *Sim) ovEstimates() estErrors {
	var r estErrors
	var upload, health float64
	for _, m := range s.ov.ring {
		upload += s.peers[m.idx].ratio
		health += s.ov.nodes[m.idx].health
		r.Members++
	}
	if r.Members == 0 {
		return r
	}
	n := float64(r.Members)
	upload /= n
	health /= n
	var pe, ue, he []float64
	for _, m := range s.ov.ring {
		e := s.ov.nodes[m.idx].node.Estimates()
		if !e.Final {
			continue
		}
		pe = append(pe, math.Abs(e.Peers-n)/n)
		ue = append(ue, math.Abs(e.MeanUpload-upload)/upload)
		he = append(he, math.Abs(e.Health-health))
	}
	r.Final = len(pe)
	if r.Final == 0 {
		return r
	}
	q := func(v []float64) (p90, worst float64) {
		slices.Sort(v)
		return v[min(len(v)*9/10, len(v)-1)], v[len(v)-1]
	}
	r.PeersP90, r.PeersMax = q(pe)
	r.UploadP90, r.UploadMax = q(ue)
	r.HealthP90, r.HealthMax = q(he)
	return r
}

// ovFeeds counts the stripe feeds q serves its children, p's excepted.
func (s *Sim) ovFeeds(q, p *peer) int {
	n := 0
	for _, c := range q.node.Children() {
		if i := s.index(c); i != noPeer && i != p.idx {
			if l := s.peers[i].link(q.idx); l != nil {
				n += bits.OnesCount16(l.mask)
			}
		}
	}
	return n
}

// ovShed lets go of children while p cannot reach the tracker and feeds
// more stripes than its upload capacity (chandelier.Shed): the last
// taken first; they repair at once (backups, the ring rule).
func (s *Sim) ovShed(p *peer) {
	if s.ovFeeds(p, p) <= p.capacity {
		return
	}
	cs := p.node.Children()
	feeds := make([]int, len(cs))
	for k, c := range cs {
		if i := s.index(c); i != noPeer {
			if l := s.peers[i].link(p.idx); l != nil {
				feeds[k] = bits.OnesCount16(l.mask)
			}
		}
	}
	n := chandelier.Shed(feeds, p.capacity)
	for _, id := range cs[len(cs)-n:] {
		c := s.index(id)
		p.node.RemoveChild(id)
		if c == noPeer {
			continue
		}
		s.m.shed++
		relayed := false
		if l := s.peers[c].link(p.idx); l != nil {
			relayed = l.relayed
		}
		s.push(event{at: s.now + s.owd(p, s.peers[c], relayed), kind: evLinkDown, node: c, from: p.idx})
	}
}
