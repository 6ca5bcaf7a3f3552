package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math"
	"math/bits"
	"time"

	"github.com/swarmtv/swarmtv/internal/report"
	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
	"github.com/swarmtv/swarmtv/tracker"
)

// lagBuckets is the range of the lag histogram: 1 ms buckets up to 10
// minutes (longer lags land in the last bucket).
const lagBuckets = 600_000

// metrics accumulates the report's figures from per-chunk and per-peer
// events.
type metrics struct {
	started bool

	// qoe holds the viewers' figures over the whole run; steady those
	// of the steady phase (Config.MeasureFrom, from steadyFrom ns; 0:
	// none), kept from this part's first event at or after it: until
	// then steadyAt is when that is (math.MaxInt64: never), then
	// steadyOn is set.
	qoe
	steady     qoe
	steadyFrom int64
	steadyAt   int64
	steadyOn   bool

	media, p2p, crossISP, lowerBound, control int64

	// Totals of the cores' counters, taken when a peer leaves or at the end.
	resyncs              uint64
	queueDrops           uint64 // pushes dropped by Config.QueueLimit
	badChunks            uint64
	neverPlayed, viewers int
	lat                  latency // startup and lag broken into parts
	depthSum             float64
	depthN               int64
	depthMax             int
	nat                  report.NAT
	transientCycles      int       // cycles seen in parent pointers that dissolved
	ringRepairs          int       // stripes switched to a ring member by the ring rule (tracker away)
	shed                 int       // children let go by a parent over its capacity while the tracker was away (ovShed)
	pointless            int       // candidate parents passed over: the stripe starved and they held nothing newer (Sim.pointless)
	backupSwitches       int       // stripes switched to a tracker backup by the peer's repair
	fetchRefused         int64     // fetches the origin refused over its fetch budget
	fetchCanceled        int64     // fetches canceled while they waited in the origin's fetch budget
	isps                 []ispRing // by slot: ISPs a chunk reached
	k                    int

	// Placement accounting: P2P bytes by why they were sent (all of
	// them, and those crossing ISP borders), tree edges sampled, and
	// the counters of trackers replaced by a restart.
	cause [numCauses]causeBytes
	// The mesh: pulls asked, control bytes of maps and Alives, and the
	// collected cores' mesh counters.
	pulls, mapBytes, aliveBytes         int64
	pulled, pullMisses, partnersDropped uint64
	edges, crossEdges                   int64
	placementBefore                     tracker.PlacementStats
}

// qoe holds the viewers' figures over one phase of a run
// (report.Phase): the whole run, or its steady phase.
type qoe struct {
	originEgress, playerBytes int64
	// The cores' counters over the phase, taken when a peer leaves or
	// at the end.
	played, late, lost, stalls uint64
	stallTime, watchTime       int64
	neverStarted5s             int       // viewers that joined in the phase, never played and stayed LateStart or more
	startup, repair            []float64 // ms, one sample per viewer that joined in the phase / repair
	lag                        []uint64  // histogram, 1 ms buckets
	lagN                       uint64
	lagHi                      int // one past the highest bucket of lag holding a count (add adds below it)
}

// growHist returns h with n buckets, the new ones zero.
func growHist[T uint64 | float64](h []T, n int) []T {
	return append(h, make([]T, n-len(h))...)
}

// growTo is the length a histogram of n buckets grows to when it must
// hold need: at least twice as long, at most lagBuckets.
func growTo(n, need int) int {
	return max(need, min(2*n, lagBuckets), 1024)
}

// lagged counts a slice played with lag ms.
func (q *qoe) lagged(ms int64) {
	b := min(max(ms, 0), lagBuckets-1)
	if int(b) >= len(q.lag) {
		q.lag = growHist(q.lag, growTo(len(q.lag), int(b)+1))
	}
	q.lag[b]++
	q.lagN++
	q.lagHi = max(q.lagHi, int(b)+1)
}

// viewer adds a viewer's core counters st, less base (what they were
// when the phase began; nil: zero), and watch ns of playing in the
// phase; neverStarted: it joined in the phase and waited LateStart or
// more without playing.
func (q *qoe) viewer(st, base *swarm.Stats, watch int64, neverStarted bool) {
	var b swarm.Stats
	if base != nil {
		b = *base
	}
	q.playerBytes += int64(st.PlayerBytes - b.PlayerBytes)
	q.played += st.PlayedSlices - b.PlayedSlices
	q.late += st.LateSlices - b.LateSlices
	q.lost += st.LostSlices - b.LostSlices
	q.stalls += st.Stalls - b.Stalls
	q.stallTime += int64(st.StallTime - b.StallTime)
	q.watchTime += watch
	if neverStarted {
		q.neverStarted5s++
	}
	// The newest repairs are the phase's (RepairTimes keeps the newest).
	rt := st.RepairTimes
	for _, d := range rt[len(rt)-min(int(st.Repairs-b.Repairs), len(rt)):] {
		q.repair = append(q.repair, float64(d)/1e6)
	}
}

// add adds o's figures (another part's) to q's.
func (q *qoe) add(o *qoe) {
	q.originEgress += o.originEgress
	q.playerBytes += o.playerBytes
	q.played += o.played
	q.late += o.late
	q.lost += o.lost
	q.stalls += o.stalls
	q.stallTime += o.stallTime
	q.watchTime += o.watchTime
	q.neverStarted5s += o.neverStarted5s
	q.startup = append(q.startup, o.startup...)
	q.repair = append(q.repair, o.repair...)
	if o.lagHi > len(q.lag) {
		q.lag = growHist(q.lag, o.lagHi)
	}
	for i, n := range o.lag[:o.lagHi] {
		q.lag[i] += n
	}
	q.lagN += o.lagN
	q.lagHi = max(q.lagHi, o.lagHi)
}

// phase returns q's figures; FromS is the caller's.
func (q *qoe) phase() report.Phase {
	ph := report.Phase{
		Joins:             len(q.startup),
		StartupMs:         report.Of(q.startup),
		LateStarts:        q.neverStarted5s,
		Continuity:        report.Ratio(float64(q.played), float64(q.played+q.late+q.lost)),
		Stalls:            int64(q.stalls),
		RebufferRatio:     report.Ratio(float64(q.stallTime), float64(q.watchTime)),
		LagMs:             histPercentiles(q.lag, q.lagN),
		RepairMs:          report.Of(q.repair),
		PlayerBytes:       q.playerBytes,
		OriginEgressBytes: q.originEgress,
		Savings:           report.Savings(q.originEgress, q.playerBytes),
	}
	for _, v := range q.startup {
		ph.StartupMaxMs = max(ph.StartupMaxMs, v)
		if v > float64(LateStart/time.Millisecond) {
			ph.LateStarts++
		}
	}
	return ph
}

// Why a P2P chunk was sent.
const (
	causeTree    = iota // live, along the tracker's edge
	causeBackup         // live, along an edge a repair switch chose
	causeCatchup        // a new edge's backlog
	causeStale          // from a parent the child had left
	causePull           // pulled from a partner (the mesh)
	numCauses
)

// causeBytes counts the P2P bytes of one cause.
type causeBytes struct{ all, cross int64 }

// causeOf says why a sent b the chunk id.
func causeOf(a int32, b *peer, id wire.ID) int {
	st := int(id.Stripe)
	switch {
	case st >= len(b.parents) || b.parents[st] != a:
		return causeStale
	case id.Seq < b.since[st]:
		return causeCatchup
	case b.viaBackup[st]:
		return causeBackup
	}
	return causeTree
}

// ispRing records which ISPs received one slice's chunks, for the
// cross-ISP lower bound.
type ispRing struct {
	seq   uint64
	used  bool
	masks []uint64 // by stripe
	sizes []int64
}

func (m *metrics) init(cfg *Config) {
	m.steadyAt = math.MaxInt64
	if cfg.MeasureFrom > 0 {
		m.steadyFrom = int64(cfg.MeasureFrom)
		m.steadyAt = m.steadyFrom
	}
	m.lat.init()
	m.k = cfg.Stripes
	// Enough slots for the chunks still in flight: a window and a half.
	n := int(15*time.Second/cfg.Slice) + 16
	m.isps = make([]ispRing, n)
	for i := range m.isps {
		m.isps[i].masks = make([]uint64, cfg.Stripes)
		m.isps[i].sizes = make([]int64, cfg.Stripes)
	}
}

// sent counts a chunk transfer from a to b.
func (m *metrics) sent(a, b *peer, id wire.ID, size int) { m.sentAs(a, b, id, size, -1) }

// sentAs counts size bytes of chunk id sent from a to b for cause (-1:
// judged by causeOf when the chunk reaches b: see arrived).
func (m *metrics) sentAs(a, b *peer, id wire.ID, size int, cause int) {
	m.media += int64(size)
	if a.idx == originIdx {
		m.originEgress += int64(size)
		if m.steadyOn {
			m.steady.originEgress += int64(size)
		}
	} else {
		m.p2p += int64(size)
		if cause >= 0 {
			m.caused(cause, size, a.isp != b.isp)
		}
	}
	if r := m.ispSlot(id.Seq); r != nil {
		r.masks[id.Stripe] |= 1 << uint(b.isp)
		r.sizes[id.Stripe] = int64(size)
	}
}

// ispSlot returns the ring slot of slice seq, flushing the older slice
// it held first; nil for a straggler older than the ring (left out: the
// bound stays low).
func (m *metrics) ispSlot(seq uint64) *ispRing {
	r := &m.isps[seq%uint64(len(m.isps))]
	if !r.used || r.seq != seq {
		if r.used && r.seq > seq {
			return nil
		}
		m.flushISP(r)
		r.used, r.seq = true, seq
	}
	return r
}

// arrived counts a pushed chunk e (evChunk) from a viewer by its cause,
// judged by its receiver b as it arrives: what causeOf reads is b's, and
// b's own event reads it, not the sender's, which may run on another
// core. Chunks still in flight at the end are not counted by cause (nor
// as crossing an ISP border).
func (m *metrics) arrived(b *peer, e *event) {
	if e.from == originIdx {
		return
	}
	m.caused(causeOf(e.from, b, wire.ID{Seq: uint64(e.aux), Stripe: e.stripe}), len(e.raw), e.cross)
}

// caused counts size P2P bytes sent for cause.
func (m *metrics) caused(cause, size int, cross bool) {
	c := &m.cause[cause]
	c.all += int64(size)
	if cross {
		m.crossISP += int64(size)
		c.cross += int64(size)
	}
}

// foldISPs moves o's ISP rings into m's (at a window's end: the lower
// bound counts the ISPs every part's chunks of a slice reached).
func (m *metrics) foldISPs(o *metrics) {
	for i := range o.isps {
		r := &o.isps[i]
		if !r.used {
			continue
		}
		if t := m.ispSlot(r.seq); t != nil {
			for st, mask := range r.masks {
				t.masks[st] |= mask
				if mask != 0 {
					t.sizes[st] = r.sizes[st]
				}
			}
		}
		clear(r.masks)
		r.used = false
	}
}

// merge adds o's figures (another part's) to m's, at the end of the
// run: sums, histograms, and samples appended (percentiles sort them).
func (m *metrics) merge(o *metrics) {
	m.foldISPs(o)
	m.qoe.add(&o.qoe)
	m.steady.add(&o.steady)
	m.media += o.media
	m.p2p += o.p2p
	m.crossISP += o.crossISP
	m.lowerBound += o.lowerBound
	m.control += o.control
	m.resyncs += o.resyncs
	m.queueDrops += o.queueDrops
	m.badChunks += o.badChunks
	m.neverPlayed += o.neverPlayed
	m.viewers += o.viewers
	m.lat.merge(&o.lat)
	m.depthSum += o.depthSum
	m.depthN += o.depthN
	m.depthMax = max(m.depthMax, o.depthMax)
	m.nat.Direct += o.nat.Direct
	m.nat.Relayed += o.nat.Relayed
	m.nat.Failed += o.nat.Failed
	m.transientCycles += o.transientCycles
	m.ringRepairs += o.ringRepairs
	m.shed += o.shed
	m.pointless += o.pointless
	m.backupSwitches += o.backupSwitches
	m.fetchRefused += o.fetchRefused
	m.fetchCanceled += o.fetchCanceled
	for i := range o.cause {
		m.cause[i].all += o.cause[i].all
		m.cause[i].cross += o.cause[i].cross
	}
	m.pulls += o.pulls
	m.mapBytes += o.mapBytes
	m.aliveBytes += o.aliveBytes
	m.pulled += o.pulled
	m.pullMisses += o.pullMisses
	m.partnersDropped += o.partnersDropped
	m.edges += o.edges
	m.crossEdges += o.crossEdges
}

// flushISP adds a slot's share of the lower bound (one feed per ISP per
// stripe: every ISP reached but one gets the chunk across a border) and
// clears it.
func (m *metrics) flushISP(r *ispRing) {
	if !r.used {
		return
	}
	for s, mask := range r.masks {
		if c := bits.OnesCount64(mask); c > 1 {
			m.lowerBound += int64(c-1) * r.sizes[s]
		}
		r.masks[s] = 0
	}
	r.used = false
}

// played accounts for a slice p's core handed to the player.
func (s *Sim) played(p *peer, sl *swarm.Slice) {
	if msg := s.stream.check(sl.Seq, sl.Chunks); msg != "" {
		s.fail("node %d played a slice the origin did not make: %s", p.idx, msg)
		return
	}
	if p.played > 0 {
		if sl.Seq <= p.lastSeq {
			s.fail("node %d played slice %d after slice %d", p.idx, sl.Seq, p.lastSeq)
			return
		}
		p.gapLost += sl.Seq - p.lastSeq - 1
	} else {
		p.firstPlay = s.now
		ms := float64(s.now-p.joinAt) / 1e6
		s.m.startup = append(s.m.startup, ms)
		if s.m.steadyOn && p.joinAt >= s.m.steadyFrom {
			s.m.steady.startup = append(s.m.steady.startup, ms)
		}
		s.m.lat.start(p, s.now, p.node.Stats().StartupDelay, s.t(0), sl)
		s.joinNext(p)
	}
	p.played++
	p.lastSeq = sl.Seq
	lag := (s.now - int64(sl.Capture.Sub(epoch))) / 1e6
	p.lagMS = max(lag, 0)
	s.m.lagged(lag)
	if s.m.steadyOn {
		s.m.steady.lagged(lag)
	}
	s.m.lat.slice(s.now, lag, sl, s.stream.keyGroup(sl.Seq))
}

// collect takes p's counters into the totals (when it leaves, or at the
// end) and checks that every due slice was played or counted lost.
func (s *Sim) collect(p *peer) {
	if p.collected || p.node == nil {
		return
	}
	p.collected = true
	st := p.node.Stats()
	if got := st.PlayedSlices + st.LateSlices; got != p.played {
		s.fail("node %d: its core counts %d slices played (%d on time, %d late) but handed %d to the player",
			p.idx, got, st.PlayedSlices, st.LateSlices, p.played)
		return
	}
	if p.gapLost > st.LostSlices {
		s.fail("node %d: %d slices were skipped between played ones but only %d counted lost", p.idx, p.gapLost, st.LostSlices)
		return
	}
	m := &s.m
	m.viewers++
	m.resyncs += st.Resyncs
	m.badChunks += st.BadChunks
	if p.firstPlay < 0 {
		m.neverPlayed++
	}
	m.qoe.viewer(&st, nil, s.watched(p, 0), s.neverStarted(p, 0))
	if m.steadyOn {
		m.steady.viewer(&st, p.steadyBase, s.watched(p, m.steadyFrom), s.neverStarted(p, m.steadyFrom))
	}
	m.pulled += st.Pulled
	m.pullMisses += st.PullMisses
	m.partnersDropped += st.PartnersDropped
}

// watched returns how long p has played since from (ns).
func (s *Sim) watched(p *peer, from int64) int64 {
	if p.firstPlay < 0 {
		return 0
	}
	return max(s.now-max(p.firstPlay, from), 0)
}

// neverStarted reports whether p joined at or after from and has waited
// LateStart or more without playing.
func (s *Sim) neverStarted(p *peer, from int64) bool {
	return p.firstPlay < 0 && p.joinAt >= from && s.now-p.joinAt >= int64(LateStart)
}

// beginSteady begins this part's steady phase (Config.MeasureFrom) at
// its first event at or after it: every event before it has run, none
// after, so what the cores count from here on is the phase's. It keeps
// the counters of this part's viewers (a viewer part's; part 0 has none) to
// take from theirs when they are collected; viewers that join later
// start from zero.
func (s *Sim) beginSteady() {
	s.m.steadyAt, s.m.steadyOn = math.MaxInt64, true
	for _, i := range s.alive {
		p := s.peers[i]
		st := p.node.Stats()
		p.steadyBase = &st
	}
}

// InvariantError is an invariant the simulation found broken. Replay is
// the command that runs the same simulation again.
type InvariantError struct {
	Seed   uint64
	At     time.Duration // virtual time
	What   string
	Replay string
}

func (e *InvariantError) Error() string {
	return fmt.Sprintf("sim: invariant broken at t=%v (seed %d): %s\nreplay: %s", e.At, e.Seed, e.What, e.Replay)
}

// fail stops the run with an invariant violation.
func (s *Sim) fail(format string, args ...any) {
	if s.err != nil {
		return
	}
	s.err = &InvariantError{Seed: s.cfg.Seed, At: time.Duration(s.now), What: fmt.Sprintf(format, args...), Replay: s.cfg.ReplayCommand()}
}

// check verifies the stripe trees (no cycle in any, no parent above its
// capacity), samples their depth and prints progress.
func (s *Sim) check() {
	// Forget the cycles the previous check did not see: they dissolved.
	for k, c := range s.cycles { // deletes only: order does not matter
		if c.last < s.lastCheck {
			delete(s.cycles, k)
		}
	}
	s.lastCheck = s.now
	s.trackerWindows()
	alive := s.aliveAll()
	// What the walks and the capacity check read of the alive peers,
	// read in one visit per peer (not one per stripe: at 10,000 peers
	// and more each visit is a cache miss): their cores' parents and
	// numbers of children, the parents the simulator set, alive flags
	// and ISPs.
	n, K := len(s.peers), s.cfg.Stripes
	core := make([]int32, K*n) // [st*n+j]: the core's parent
	set := make([]int32, K*n)  // [st*n+j]: the parent set (peer.parents)
	info := make([]checkPeer, n)
	kids := make([][2]int, len(alive)) // children, capacity
	for k, i := range alive {
		p := s.peers[i]
		for st := range K {
			core[st*n+int(i)] = s.index(p.node.Parent(st))
			set[st*n+int(i)] = p.parents[st]
		}
		info[i] = checkPeer{read: true, alive: p.alive, isp: p.isp}
		kids[k] = [2]int{p.node.NumChildren(), p.capacity}
	}
	// A peer in no part's list (none should be) is read where met.
	up := func(j int32) bool {
		if info[j].read {
			return info[j].alive
		}
		return s.peers[j].alive
	}
	isp := func(j int32) int32 {
		if info[j].read {
			return info[j].isp
		}
		return s.peers[j].isp
	}
	depth := make([]int32, n)
	var stack []int32
	for st := range K {
		for i := range depth {
			depth[i] = -2 // unvisited
		}
		depth[originIdx] = 0
		par := core[st*n : (st+1)*n]
		for _, i := range alive {
			// Walk up to a node of known depth, then unwind.
			stack = stack[:0]
			j := i
			for depth[j] == -2 {
				depth[j] = -3 // on the path
				stack = append(stack, j)
				q := par[j]
				if !info[j].read {
					q = s.index(s.peers[j].node.Parent(st))
				}
				if q == noPeer || !up(q) {
					depth[j] = -1 // detached
					stack = stack[:len(stack)-1]
					break
				}
				j = q
			}
			if depth[j] == -3 {
				// A cycle: the nodes on the stack from j on.
				k := len(stack) - 1
				for stack[k] != j {
					k--
				}
				cyc := stack[k:]
				if !s.cycle(st, cyc) {
					return
				}
				for _, c := range cyc {
					depth[c] = -1
				}
				for _, c := range stack[:k] {
					depth[c] = -1
				}
				continue
			}
			d := depth[j]
			for k := len(stack) - 1; k >= 0; k-- {
				if d >= 0 {
					d++
				}
				depth[stack[k]] = d
			}
			if q := set[st*n+int(i)]; q > originIdx && up(q) {
				s.m.edges++
				if isp(q) != isp(i) {
					s.m.crossEdges++
				}
			}
			if depth[i] > 0 {
				s.m.depthSum += float64(depth[i])
				s.m.depthN++
				s.m.depthMax = max(s.m.depthMax, int(depth[i]))
			}
		}
	}
	o := s.peers[originIdx]
	if n := o.node.NumChildren(); n > o.capacity {
		s.fail("the origin has %d children, capacity %d", n, o.capacity)
		return
	}
	for k, i := range alive {
		if n, c := kids[k][0], kids[k][1]; n > acceptLimit(c) {
			s.fail("node %d has %d children, capacity %d (accepting up to %d)", i, n, c, acceptLimit(c))
			return
		}
	}
	if s.Progress != nil && s.now >= s.nextProgress {
		s.nextProgress += s.end / 10
		var events uint64
		var origin, p2p int64
		for _, h := range s.parts {
			events, origin, p2p = events+h.events, origin+h.m.originEgress, p2p+h.m.p2p
		}
		fmt.Fprintf(s.Progress, "sim: t=%v/%v viewers=%d events=%d origin=%s p2p=%s\n",
			time.Duration(s.now).Truncate(time.Second), s.cfg.Duration, len(alive), events,
			human(origin), human(p2p))
	}
}

// checkPeer is what check read of an alive peer.
type checkPeer struct {
	read  bool // the peer is in a part's alive list: the rest is set
	alive bool
	isp   int32
}

// cycleSeen is when a cycle was first and last seen.
type cycleSeen struct{ first, last int64 }

// cycleKey names a cycle by its stripe and its smallest node.
type cycleKey struct {
	stripe int
	node   int32
}

// cycle records a cycle found in a stripe tree's parent pointers. Peers
// learn tracker moves asynchronously (a heartbeat or parent-lost answer
// later), so a cycle may exist for a moment; one that outlives two
// heartbeats and a check interval breaks the invariant. It reports
// whether the run goes on.
func (s *Sim) cycle(stripe int, nodes []int32) bool {
	k := cycleKey{stripe, nodes[0]}
	for _, n := range nodes {
		k.node = min(k.node, n)
	}
	if s.cycles == nil {
		s.cycles = map[cycleKey]cycleSeen{}
	}
	c, seen := s.cycles[k]
	if !seen {
		s.cycles[k] = cycleSeen{first: s.now, last: s.now}
		s.m.transientCycles++
		return true
	}
	if s.now-c.first > 2*int64(s.cfg.Heartbeat)+int64(s.cfg.CheckEvery) {
		s.fail("cycle in the tree of stripe %d through nodes %v, standing since t=%v", stripe, nodes, time.Duration(c.first))
		return false
	}
	c.last = s.now
	s.cycles[k] = c
	return true
}

// tracer hashes the ordered event trace.
type tracer struct {
	h   hash.Hash
	buf []byte
}

func (t *tracer) init() {
	t.h = sha256.New()
	// Small enough to stay in the cache between hashes: every part has
	// one, and the parts' events interleave.
	t.buf = make([]byte, 0, 4<<10)
}

func (t *tracer) add(e *event) {
	if len(t.buf)+40 > cap(t.buf) {
		t.h.Write(t.buf)
		t.buf = t.buf[:0]
	}
	b := t.buf
	b = binary.LittleEndian.AppendUint64(b, uint64(e.at))
	b = binary.LittleEndian.AppendUint64(b, uint64(e.aux))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.node))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.from))
	b = append(b, byte(e.kind), e.stripe)
	t.buf = b
}

func (t *tracer) sum() []byte {
	t.h.Write(t.buf)
	t.buf = t.buf[:0]
	return t.h.Sum(nil)
}

// traceHash combines the parts' trace hashes in part order (parts.go):
// a run gives one hash whatever the order its parts' events interleaved
// in.
func traceHash(parts []tracer) string {
	h := sha256.New()
	for i := range parts {
		h.Write(parts[i].sum())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// report builds the run's swarmtv.report/v1.
func (s *Sim) report() *report.Report {
	m := &s.m
	for i := range m.isps {
		m.flushISP(&m.isps[i])
	}
	r := report.New("sim", s.cfg.Scenario)
	seed := int64(s.cfg.Seed)
	r.Seed = &seed
	r.Peers = s.cfg.Peers
	r.DurationS = s.cfg.Duration.Seconds()
	r.StreamKbps = s.cfg.StreamKbps
	all := m.qoe.phase()
	r.PlayerBytes = all.PlayerBytes
	r.OriginEgressBytes = all.OriginEgressBytes
	r.P2PBytes = m.p2p
	r.Savings = all.Savings
	r.Continuity = all.Continuity
	r.Stalls = all.Stalls
	r.RebufferRatio = all.RebufferRatio
	r.StartupMs = all.StartupMs
	r.LagMs = all.LagMs
	r.RepairMs = all.RepairMs
	r.Latency = m.lat.report(m.startup, all.LagMs)
	r.Latency.StartupMaxMs, r.Latency.LateStarts = all.StartupMaxMs, all.LateStarts
	if m.steadyFrom > 0 {
		st := m.steady.phase()
		st.FromS = time.Duration(m.steadyFrom).Seconds()
		r.Steady = &st
	}
	if m.depthN > 0 {
		r.TreeDepth = &report.Depth{Mean: m.depthSum / float64(m.depthN), Max: m.depthMax}
	}
	cross, lb := m.crossISP, m.lowerBound
	r.CrossISPBytes, r.CrossISPLowerBoundBytes = &cross, &lb
	nat := m.nat
	r.NAT = &nat
	r.ControlOverhead = report.Ratio(float64(m.control), float64(m.media))
	h := traceHash(s.trace[:])
	r.TraceHash = &h
	if !s.cfg.Media {
		r.Savings, r.Continuity, r.RebufferRatio, r.StartupMs, r.LagMs, r.RepairMs = nil, nil, nil, nil, nil, nil
		r.TreeDepth, r.CrossISPBytes, r.CrossISPLowerBoundBytes, r.NAT, r.ControlOverhead = nil, nil, nil, nil, nil
		r.Steady = nil
	}
	if s.cfg.Media {
		r.Placement = s.placementReport()
		m := &s.m
		r.Mesh = &report.Mesh{
			PullBytes: m.cause[causePull].all, CrossISPPullBytes: m.cause[causePull].cross,
			Pulls: uint64(m.pulls), Pulled: m.pulled, PullMisses: m.pullMisses,
			PartnersDropped: m.partnersDropped,
			MapBytes:        m.mapBytes, AliveBytes: m.aliveBytes,
		}
	}
	if s.cfg.Media && len(s.peers) > 1 {
		// Issue 4's bound for scarce upload: the stripe feeds the peers
		// offer (upload less headroom, whole feeds) over the stream, at
		// most 1 - 1/N; pulls use the headroom, so savings may pass it,
		// never the peers' whole upload.
		feeds, upload := 0, 0.0
		for _, p := range s.peers[1:] {
			feeds += p.capacity
			upload += p.ratio
		}
		n := float64(len(s.peers) - 1)
		s.notes = append(s.notes, fmt.Sprintf("savings bound %.4f (the peers' feeds over the stream, at most 1 - 1/N), whole upload %.4f",
			min(1-1/n, float64(feeds)/(n*float64(s.cfg.Stripes))), min(1-1/n, upload/n)))
	}
	if s.cfg.Media {
		s.notes = append(s.notes, fmt.Sprintf("slices: %d due, %d played on time, %d late (after a stall), %d lost; %d stalls, %d resyncs (playout restarted after a gap older than the window); %d pushes dropped by the queue limit",
			m.played+m.late+m.lost, m.played, m.late, m.lost, m.stalls, m.resyncs, m.queueDrops))
		s.notes = append(s.notes, fmt.Sprintf("origin fetch budget: %d refused (could not leave before their deadline, or waited over the backlog bound), %d canceled while waiting (the asker got the chunk another way)",
			m.fetchRefused, m.fetchCanceled))
	}
	if s.windows > 0 {
		s.notes = append(s.notes, fmt.Sprintf("parts: %d windows of %v (%.0f events each, workers: %d), %d events part 0 pushed into a window gone by moved to its end",
			s.windows, time.Duration(s.lookahead()), float64(s.events)/float64(s.windows), s.workers, s.clamped))
	}
	s.trackerWindows()
	s.trackerNotes()
	if s.miss != nil {
		s.notes = append(s.notes, s.miss.notes()...)
	}
	s.ovReport(r)
	return r
}

// placementReport fills the report's placement section.
func (s *Sim) placementReport() *report.Placement {
	m := &s.m
	ps := s.placementStats()
	pl := &report.Placement{
		CrossISPTreeBytes:    m.cause[causeTree].cross,
		CrossISPBackupBytes:  m.cause[causeBackup].cross,
		CrossISPCatchupBytes: m.cause[causeCatchup].cross,
		CrossISPStaleBytes:   m.cause[causeStale].cross,
		CatchupBytes:         m.cause[causeCatchup].all,
		CrossISPEdgeShare:    report.Ratio(float64(m.crossEdges), float64(m.edges)),
		Rounds:               int64(ps.Rounds),
		EdgesChangedPerRound: report.Ratio(float64(ps.EdgesChanged), float64(ps.Rounds)),
		EdgesChangedMax:      ps.MaxEdgesChanged,
		RelayedPlacements:    int64(ps.Relayed),
	}
	return pl
}

// placementStats sums the tracker's placement counters over its
// restarts.
func (s *Sim) placementStats() tracker.PlacementStats {
	ps := s.m.placementBefore
	if s.tr != nil {
		if cur, err := s.tr.Placement(channelName); err == nil {
			ps.Rounds += cur.Rounds
			ps.EdgesChanged += cur.EdgesChanged
			ps.MaxEdgesChanged = max(ps.MaxEdgesChanged, cur.MaxEdgesChanged)
			ps.Relayed += cur.Relayed
			ps.RejoinLinks += cur.RejoinLinks
			ps.RejoinKept += cur.RejoinKept
			ps.SeedSeconds += cur.SeedSeconds
		}
	}
	return ps
}

// human formats a byte count.
func human(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
