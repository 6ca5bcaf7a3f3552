package sim

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"
	"unsafe"

	"github.com/swarmtv/swarmtv/internal/report"
	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
	"github.com/swarmtv/swarmtv/tracker"
)

// channelName is the simulated channel.
const channelName = "sim"

// roundInterval is how often the tracker runs a placement round.
const roundInterval = tracker.DefaultRoundInterval

// epoch is virtual time zero as wall-clock time (capture times and the
// cores' now are epoch + virtual time). Fixed, so runs replay.
var epoch = time.Unix(1_700_000_000, 0).UTC()

// Random stream IDs beside the per-peer ones (peer i uses stream i).
const (
	streamPopulation = 1<<63 + iota // peer attributes, join times
	streamChurn                     // who leaves, when
	streamTopology                  // region delays
)

// ErrCanceled is returned by Run when Cancel was closed.
var ErrCanceled = errors.New("sim: canceled")

// Sim is one simulation run. Create it with New and call Run once.
type Sim struct {
	cfg Config
	// Progress, when not nil, receives a progress line now and then.
	Progress io.Writer
	// Cancel, when closed, stops Run early with ErrCanceled.
	Cancel <-chan struct{}

	// partState is what each part runs on its own (parts.go): the
	// queue, the clock, the metrics, the trace. parts[0] is s itself.
	partState
	parts   [numParts]*Sim
	workers int    // goroutines running the viewer parts' windows (1 or 2)
	upSnap  []bool // by peer: alive at the window's start (up)
	windows uint64 // windows run
	clamped uint64 // events pushed into a part's past, moved to the window's end
	end     int64
	net     *network
	peers   []*peer    // index 0: the origin
	trWin   [3]winMark // continuity marks around a tracker outage (control.go)
	pop     *rand.Rand
	churn   *rand.Rand

	stream  *stream
	key     ed25519.PrivateKey
	tr      *tracker.Tracker
	trUp    bool
	nextSeq uint64 // next slice the origin publishes
	// originID is the origin's node ID, one string shared by the cores.
	originID swarm.NodeID
	// idBlocks hold the peers' node IDs side by side (idOf).
	idBlocks []string

	joinQ   []int32 // joins waiting for the tracker's batch
	fetchNs float64 // ns per byte of the origin's fetch budget
	// fetchQ is the origin's fetch budget (the real origin's, see
	// swarm.FetchBudget); fetchServeAt is when an evFetchServe is due
	// for it (-1: none).
	fetchQ       swarm.FetchBudget[fetchAsk]
	fetchServeAt int64
	fetchOut     []swarm.Served[fetchAsk]
	fetchRef     []fetchAsk
	miss         *misses // the account of missed slices (Config.Misses); nil: none
	ctl          controlSizes
	nextProgress int64
	notes        []string
	debug        func(*event)
	cycles       map[cycleKey]cycleSeen // cycles in parent pointers, by the checks that saw them
	ov           *ovSim                 // the overlay and the partition (overlay.go)
	lastCheck    int64
	// cold turns warm off (a test compares the runs).
	cold bool
	// keepStale leaves the Ticks arm replaces in the queue (they pop and
	// are skipped) instead of canceling them: a test compares the runs.
	keepStale bool
}

// Warming distances in events ahead (see warm).
const (
	warmPeer   = 12
	warmNode   = 8
	warmArrays = 6
	warmRest   = 3
)

// peerHot is how much of a peer warm prefetches: what its events read
// and what its sends read of its upload (TestPeerLayout).
const peerHot = 320

// nodeSize is the size of a core's state (its arrays aside).
const nodeSize = unsafe.Sizeof(swarm.Node{})

// warm brings the state of the next events' peers into the cache while
// the current event runs: at 10,000 peers almost every event touches a
// peer and a core that are not cached, and the reads of several events'
// state overlap where one event's reads would follow each other. It
// prefetches a peer's struct warmPeer events ahead, its core's struct
// warmNode events ahead (when the peer, holding the pointer, is cached)
// and the slots its event reads first (swarm.Node.WarmSlots: a chunk's
// slot, the slot played next) warmRest events ahead. In between it
// prefetches the starts of the core's arrays (swarm.Node.WarmRefs, read
// from the core's struct, by then cached), so that WarmSlots' reads find
// them. It changes nothing the run computes.
func (s *Sim) warm() {
	q := &s.q
	if i := q.pos + warmPeer; i < len(q.run) {
		if e := &q.run[i]; e.node >= 0 && int(e.node) < len(s.peers) {
			prefetch(unsafe.Pointer(s.peers[e.node]), peerHot)
		}
	}
	if i := q.pos + warmNode; i < len(q.run) {
		if e := &q.run[i]; e.node >= 0 && int(e.node) < len(s.peers) {
			if n := s.peers[e.node].node; n != nil {
				prefetch(unsafe.Pointer(n), nodeSize)
			}
		}
	}
	if i := q.pos + warmArrays; i < len(q.run) {
		if e := &q.run[i]; e.node >= 0 && int(e.node) < len(s.peers) {
			if n := s.peers[e.node].node; n != nil {
				first, newest, next, win, st, ch := n.WarmRefs()
				if first != nil {
					prefetch(unsafe.Pointer(first), 1)
					prefetch(unsafe.Pointer(newest), unsafe.Sizeof(*newest))
				}
				if next != nil {
					prefetch(unsafe.Pointer(next), 1)
				}
				if win != nil {
					prefetch(unsafe.Pointer(win), 1)
				}
				if st != nil {
					prefetch(unsafe.Pointer(st), uintptr(s.cfg.Stripes)*unsafe.Sizeof(*st))
				}
				if ch != nil {
					prefetch(unsafe.Pointer(ch), 2*64)
				}
			}
		}
	}
	if i := q.pos + warmRest; i < len(q.run) {
		if e := &q.run[i]; e.node >= 0 && int(e.node) < len(s.peers) {
			if n := s.peers[e.node].node; n != nil {
				var seq uint64
				switch e.kind {
				case evChunk, evFetched, evPulled:
					seq = uint64(e.aux)
				}
				own, next := n.WarmSlots(seq)
				if own != nil {
					s.prefetchSlot(unsafe.Pointer(own), unsafe.Sizeof(*own))
				}
				if next != nil && next != own {
					s.prefetchSlot(unsafe.Pointer(next), unsafe.Sizeof(*next))
				}
			}
		}
	}
}

// prefetchSlot prefetches a core's slot of size bytes at p and its
// stripes' arrays, which a slot of up to four stripes holds right after
// it (the chunks, their encodings and a few children's sent masks). The
// 63 bytes more reach the line of the last byte when p is not at a
// line's start.
func (s *Sim) prefetchSlot(p unsafe.Pointer, size uintptr) {
	k := uintptr(s.cfg.Stripes)
	size += k*(unsafe.Sizeof((*wire.Chunk)(nil))+unsafe.Sizeof([]byte(nil))) + 16
	prefetch(p, size+63)
	s.warmed++
}

// warmSends prefetches what sending a chunk reads of each receiver (its
// first 256 bytes) before the sends run: a
// node forwards a chunk to several children, none of them cached at
// 10,000 peers, and their misses then overlap instead of following each
// other. It changes nothing the run computes.
func (s *Sim) warmSends(sends []swarm.Send) {
	for i := range sends {
		if q := s.index(sends[i].To); q != noPeer {
			c := s.peers[q]
			prefetch(unsafe.Pointer(c), 256)
		}
	}
}

// New returns a simulation of cfg.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:   cfg,
		end:   int64(cfg.Duration),
		pop:   rand.New(rand.NewPCG(cfg.Seed, streamPopulation)),
		churn: rand.New(rand.NewPCG(cfg.Seed, streamChurn)),
	}
	s.net = newNetwork(&cfg, rand.New(rand.NewPCG(cfg.Seed, streamTopology)))
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(cfg.Seed>>(8*(i%8))) ^ byte(i)
	}
	s.key = ed25519.NewKeyFromSeed(seed)
	s.stream = newStream(&cfg, s.key, channelName, epoch.Add(-cfg.Warmup))
	s.setView(s.stream)
	s.originID = s.idOf(originIdx)
	s.nextSeq = 1 // origins number slices from 1: slice 0 asks for the newest keyframe
	for i := range s.trace {
		s.trace[i].init()
	}
	s.workers = workers(&cfg)
	s.m.init(&cfg)
	s.ctl = measureControl()
	if cfg.Misses {
		s.miss = newMisses()
	}
	s.ovInit()
	if err := s.addOrigin(); err != nil {
		return nil, err
	}
	return s, nil
}

// verifyOf is the cores' chunk check (swarm.Config.Verify) in this
// part; nil: Ed25519.
func (s *Sim) verifyOf() func(raw []byte) error {
	if s.cfg.Verify != VerifyFast {
		return nil
	}
	return s.verify
}

// Notes are the caveats of this run (features accepted but not modelled).
func (s *Sim) Notes() []string { return slices.Clone(s.notes) }

func (s *Sim) nodeConfig(source bool, maxChildren int) swarm.Config {
	return swarm.Config{
		Channel:       channelName,
		PublicKey:     s.key.Public().(ed25519.PublicKey),
		Stripes:       s.cfg.Stripes,
		Origin:        s.originID,
		Source:        source,
		MaxChildren:   maxChildren,
		SliceDuration: s.cfg.Slice,
		ParentTimeout: s.cfg.ParentTimeout,
		LagSlices:     s.cfg.LagSlices,
		PlayoutDelay:  s.cfg.PlayoutDelay,
		FetchMargin:   s.cfg.FetchMargin,
		PushedMargin:  s.cfg.PushedMargin,
		MaxBacklog:    s.cfg.MaxBacklog,
		KeyframeWait:  s.cfg.KeyframeWait,
		StartAge:      s.cfg.StartAge,
		StartMargin:   s.cfg.StartMargin,
		StartHeldRun:  s.cfg.LiveFirst, // live before backlog: see swarm.Config.StartHeldRun
		StartFetch:    s.cfg.StartFetch,
		StartPull:     s.cfg.StartPull,
		CatchUp:       s.cfg.CatchUp,
		PullMargin:    s.cfg.PullMargin,
		MapInterval:   s.cfg.MapInterval,
		AliveInterval: aliveInterval(s.cfg.AliveInterval),
		Verify:        s.verifyOf(),
		Parse:         s.parse,
		NoMerge:       true, // played slices are checked by their chunks (stream.check)
	}
}

func (s *Sim) streamBps() float64 { return s.cfg.StreamKbps * 1000 / 8 }

func (s *Sim) addOrigin() error {
	// The tracker deals the origin capacity × K stripe feeds.
	node, err := swarm.New(s.nodeConfig(true, s.cfg.OriginCapacity*s.cfg.Stripes))
	if err != nil {
		return fmt.Errorf("sim: origin core: %w", err)
	}
	up := float64(s.cfg.OriginCapacity) * s.cfg.OriginUploadMul * s.streamBps()
	// The seeds (its children) get their feeds with the peers' headroom
	// first; what is left is the fetch budget, served from its own
	// queue so that a flood of fetches cannot starve the seeds (whose
	// lag would spread to the whole swarm).
	seed := min(up, float64(s.cfg.OriginCapacity)*s.cfg.Headroom*s.streamBps())
	fetch := max(up-seed, 0.05*up)
	s.fetchNs = 1e9 / fetch
	s.fetchQ = swarm.FetchBudget[fetchAsk]{NsPerByte: s.fetchNs, Backlog: time.Duration(fetchBacklogLimit)}
	s.fetchServeAt = -1
	o := &peer{
		idx: originIdx, id: s.originID, node: node,
		rng:   *rand.NewPCG(s.cfg.Seed, originIdx),
		alive: true, isp: -1, region: 0, nat: newNAT(NATOpen, 0x0a000002),
		access: originAccess, upNs: 1e9 / seed, downNs: 1e9 / up,
		capacity: s.cfg.OriginCapacity * s.cfg.Stripes, timerAt: -1, timerSlot: -1, firstPlay: -1, bulkAt: -1,
		connAt: make([]int32, 1),
	}
	o.conns = o.connsBuf[:0]
	s.peers = append(s.peers, o)
	s.upSnap = append(s.upSnap, true)
	return nil
}

// addPeer creates viewer number len(s.peers), joining at at.
func (s *Sim) addPeer(at int64) *peer {
	idx := int32(len(s.peers))
	r := s.pop
	ratio := s.cfg.UploadRatio
	if sg := s.cfg.UploadSigma; sg > 0 {
		ratio *= math.Exp(sg*r.NormFloat64() - sg*sg/2)
	}
	ratio = min(max(ratio, 0.05), 50)
	down := 2 + 6*math.Exp(0.5*r.NormFloat64()-0.125)
	if s.cfg.DownloadRatio > 0 {
		down = s.cfg.DownloadRatio
	}
	isp := s.net.drawISP(r.Float64())
	p := &peer{
		idx: idx, id: s.idOf(idx),
		rng:     *rand.NewPCG(s.cfg.Seed, uint64(idx)),
		isp:     int32(isp),
		region:  int32(isp % s.cfg.Regions),
		nat:     newNAT(s.cfg.NATMix.draw(r.Float64()), 0x64000000+uint32(idx)),
		access:  int64(2e6 + r.Float64()*13e6),
		upNs:    1e9 / (ratio * s.streamBps()),
		downNs:  1e9 / (down * s.streamBps()),
		ratio:   ratio,
		backups: make([][]int32, s.cfg.Stripes),
		timerAt: -1, timerSlot: -1, firstPlay: -1, joinAt: at, bulkAt: -1,
	}
	if k := s.cfg.Stripes; k <= inlineStripes {
		p.parents, p.since, p.viaBackup = p.parentsBuf[:k], p.sinceBuf[:k], p.viaBackupBuf[:k]
	} else {
		p.parents, p.since, p.viaBackup = make([]int32, k), make([]uint64, k), make([]bool, k)
	}
	for st := range p.parents {
		p.parents[st] = noPeer
	}
	p.conns = p.connsBuf[:0]
	p.backupLag = make([][]time.Duration, s.cfg.Stripes)
	// Stripe feeds: the upload kept per feed is a stripe's rate times
	// the headroom.
	p.capacity = min(tracker.MaxPeerCapacity, int(ratio*float64(s.cfg.Stripes)/s.cfg.Headroom))
	if s.cfg.PeerFeeds > 0 {
		p.capacity = s.cfg.PeerFeeds
	}
	s.peers = append(s.peers, p)
	s.upSnap = append(s.upSnap, false)
	if at >= 0 { // else joinNext schedules it
		s.push(event{at: at, kind: evJoin, node: idx, aux: 1})
	}
	return p
}

// demoJoinGap is how long after a peer's first played slice the demo
// starts the next one: it polls every 50 ms.
const demoJoinGap = int64(25 * time.Millisecond)

// joinNext starts the viewer after p when the initial viewers join one
// after another (Config.JoinSequential) and p has just played its first
// slice.
func (s *Sim) joinNext(p *peer) {
	i := int(p.idx) + 1
	if !s.cfg.JoinSequential || i > s.cfg.Peers || i >= len(s.peers) || s.peers[i].joinAt >= 0 {
		return
	}
	q := s.peers[i]
	q.joinAt = s.now + demoJoinGap
	s.push(event{at: q.joinAt, kind: evJoin, node: q.idx, aux: 1})
}

// push schedules e; an event another part runs waits in the outbox
// until the window's end (parts.go), and cannot be canceled.
func (s *Sim) push(e event) int32 {
	if e.at < s.now {
		e.at = s.now
	}
	if dst := partOf(&e); dst != s.part {
		s.q.stamp(&e)
		s.out[dst] = append(s.out[dst], e)
		return -1
	}
	return s.q.push(e)
}

// Run runs the simulation to its end (or to the first invariant
// violation, returned as an *InvariantError) and returns the report.
// wall_s is left 0: the caller measures it.
func (s *Sim) Run() (*report.Report, error) {
	if s.m.started {
		return nil, errors.New("sim: Run called twice")
	}
	s.m.started = true
	s.trUp = true
	if err := s.newTracker(); err != nil {
		return nil, err
	}
	if s.debug != nil {
		s.workers = 1 // a test's hook is not safe for concurrent use
	}
	s.initParts()
	if s.cfg.Media {
		s.push(event{at: 0, kind: evRegister, node: originIdx})
		// A slice is published when it ends (see publishAt); those of the
		// warm-up are published before anything else happens.
		if s.publishAt(s.nextSeq) <= 0 {
			s.publish()
		} else {
			s.push(event{at: s.publishAt(s.nextSeq), kind: evPublish, node: originIdx})
		}
	}
	for i := range s.cfg.Peers {
		var at int64
		if s.cfg.FlashCrowd > 0 {
			at = int64(s.pop.Float64() * float64(s.cfg.FlashCrowd))
		}
		if s.cfg.JoinSequential && i > 0 {
			at = -1 // when the one before has played (joinNext)
		}
		s.addPeer(at)
	}
	if s.cfg.Churn > 0 {
		s.scheduleChurn(int64(s.cfg.FlashCrowd))
	}
	if s.cfg.KillTrackerAt > 0 {
		s.push(event{at: int64(s.cfg.KillTrackerAt), kind: evKillTracker})
	}
	if s.cfg.RestartTrackerAt > 0 {
		s.push(event{at: int64(s.cfg.RestartTrackerAt), kind: evRestartTracker})
	}
	s.ovStart()
	s.push(event{at: int64(s.cfg.CheckEvery), kind: evCheck})
	s.push(event{at: int64(roundInterval), kind: evRound})
	s.nextProgress = s.end / 10

	s.runParts()
	if s.err != nil {
		return nil, s.err
	}
	s.gather()
	s.now = s.end
	for _, h := range s.parts {
		if h.m.steadyAt <= s.end { // no event of the part came after it
			h.beginSteady()
		}
	}
	for _, p := range s.peers[1:] {
		if p.alive {
			s.collect(p)
			if s.err != nil {
				return nil, s.err
			}
		}
	}
	return s.report(), nil
}

// TransientCycles is how many cycles the checks saw in the stripe trees'
// parent pointers that dissolved within two heartbeats (peers learn
// tracker moves late).
func (s *Sim) TransientCycles() int { return s.m.transientCycles }

// Events returns how many events ran.
func (s *Sim) Events() uint64 { return s.events }

func (s *Sim) newTracker() error {
	s.m.placementBefore = s.placementStats() // a restart: keep the old tracker's counters
	tr, err := tracker.New(tracker.Config{
		HeartbeatInterval: s.cfg.Heartbeat,
		Now:               func() time.Time { return s.t(s.now) },
		Placer:            s.cfg.Placer,
		Seed:              s.cfg.Seed,
		Relay:             s.cfg.Relay,
		StartAge:          startAgeHint(s.cfg.StartAge, s.cfg.StartAge),
		CrowdStartAge:     startAgeHint(s.cfg.StartAge, s.cfg.CrowdStartAge),
	})
	if err != nil {
		return fmt.Errorf("sim: tracker: %w", err)
	}
	s.tr = tr
	return nil
}

// startAgeHint is the tracker's start age d for the viewers' StartAge
// setting on: none (negative) when it is off, so they keep 0 and their
// parents choose.
func startAgeHint(on, d time.Duration) time.Duration {
	if on <= 0 || d <= 0 {
		return -1
	}
	return d
}

// staleTick reports whether e, a Tick, was replaced by a later arm or
// its peer left. Such a Tick does nothing and is no event of the trace:
// arm cancels most of them in the queue (those due within the current
// bucket still pop).
func (s *Sim) staleTick(e *event) bool {
	p := s.peers[e.node]
	return !p.alive || e.aux != p.timerGen
}

// t converts virtual ns to the cores' time.
func (s *Sim) t(ns int64) time.Time { return epoch.Add(time.Duration(ns)) }

func (s *Sim) dispatch(e *event) {
	if s.miss != nil {
		s.miss.event(s, e)
	}
	switch e.kind {
	case evPublish:
		s.publish()
	case evTick:
		p := s.peers[e.node]
		p.timerAt, p.timerSlot = -1, -1
		p.node.Tick(s.t(s.now))
		s.process(p)
	case evChunk:
		s.m.arrived(s.peers[e.node], e)
		s.chunkIn(e)
	case evBulk:
		s.bulk(e)
	case evFetched:
		s.fetchDone(s.peers[e.node], wire.ID{Seq: uint64(e.aux), Stripe: e.stripe})
		s.chunkIn(e)
	case evFetch:
		s.fetch(e)
	case evCancel:
		s.cancelAt(e)
	case evFetchServe:
		if e.at == s.fetchServeAt {
			s.fetchServeAt = -1
			s.serveFetches()
		}
	case evMissing:
		if p := s.peers[e.node]; p.alive {
			s.fetchDone(p, wire.ID{Seq: uint64(e.aux), Stripe: e.stripe})
			p.node.HandleMissing(s.t(s.now), s.originID, wire.ID{Seq: uint64(e.aux), Stripe: e.stripe})
			s.process(p)
		}
	case evHello:
		s.hello(e)
	case evLinkDown:
		p := s.peers[e.node]
		if !p.alive {
			return
		}
		s.linkDown(p, e.from)
		s.process(p)
	case evBye:
		if p := s.peers[e.node]; p.alive {
			p.node.RemoveChild(s.peers[e.from].id)
			p.forgetChild(e.from)
		}
	case evJoin:
		s.join(e)
	case evTrackerJoin:
		s.trackerJoin(e)
	case evJoined:
		s.joined(e)
	case evHeartbeat:
		s.heartbeat(e)
	case evTrackerBeat:
		s.trackerBeat(e)
	case evBeatAnswer, evLostAnswer:
		if p := s.peers[e.node]; p.alive && p.joined {
			s.apply(p, p.answer)
			s.process(p)
		}
	case evJoinBatch:
		s.joinBatch()
	case evRound:
		if s.trUp {
			s.tr.Round()
		}
		s.push(event{at: s.now + int64(roundInterval), kind: evRound})
	case evTrackerLost:
		s.trackerLost(e)
	case evLeave:
		s.leave(s.peers[e.node], e.aux == 1)
	case evTrackerLeave:
		if s.trUp {
			_ = s.tr.Leave(channelName, tracker.LeaveRequest{ID: string(nodeID(e.node))})
		}
	case evCheck:
		s.check()
		s.push(event{at: s.now + int64(s.cfg.CheckEvery), kind: evCheck})
	case evChurn:
		s.churnStep()
	case evKillTracker:
		s.trUp = false
	case evRestartTracker:
		if err := s.newTracker(); err != nil {
			s.err = err
			return
		}
		s.trUp = true
		s.push(event{at: s.now + originAccess, kind: evRegister, node: originIdx})
	case evRegister:
		s.register()
	case evOvMsg, evOvTick, evOvFailed, evOvLookup, evOvCheck, evPartition, evHeal:
		s.ovDispatch(e)
	case evPartner, evPartnerRefused, evUnwatch, evMap, evAlive, evPull, evPulled, evPullMissing, evMapRequest:
		s.meshDispatch(e)
	case evLinkUp:
		// The parent accepted: its liveness timer starts now, so the
		// dial (punch, handshake, hello) counts against the connect
		// timeout, not ParentTimeout.
		if p := s.peers[e.node]; p.alive && p.link(e.from) != nil && s.cfg.LinkUpReset {
			p.node.ParentUp(s.t(s.now), s.peers[e.from].id)
			s.process(p)
		}
	}
}

// register registers the channel (again after a tracker restart).
func (s *Sim) register() {
	o := s.peers[originIdx]
	_, err := s.tr.Register(tracker.RegisterRequest{
		Channel: tracker.ChannelInfo{
			Name:      channelName,
			SDP:       "v=0\r\ns=swarmtv sim\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
			PublicKey: base64.StdEncoding.EncodeToString(s.key.Public().(ed25519.PublicKey)),
			Origin:    tracker.NodeInfo{ID: string(o.id), Addr: addrOf(o)},
			Stripes:   s.cfg.Stripes,
			SliceMS:   int(s.cfg.Slice / time.Millisecond),
			StreamBPS: int64(s.cfg.StreamKbps * 1000),
		},
		Capacity: s.cfg.OriginCapacity,
	})
	if err != nil {
		s.err = fmt.Errorf("sim: registering the channel: %w", err)
	}
	s.m.control += s.ctl.register
}

// acceptLimit is how many children a node with capacity feeds accepts:
// a few more than its feeds, because a child the tracker moved away says
// bye only after its new parent's slot was taken (the tracker never
// assigns more than capacity).
func acceptLimit(capacity int) int { return tracker.AcceptLimit(capacity) }

// addrOf is the address a node registers with: its public IPv4 address.
func addrOf(p *peer) string {
	a := p.nat.public
	return fmt.Sprintf("%d.%d.%d.%d:%d", a>>24, a>>16&255, a>>8&255, a&255, peerPort)
}

// publish makes the next slice at the origin and schedules the one after.
func (s *Sim) publish() {
	seq := s.nextSeq
	s.nextSeq++
	chunks, raws, err := s.stream.make(seq)
	if err != nil {
		s.err = err
		return
	}
	o := s.peers[originIdx]
	for i := range chunks {
		o.node.Publish(s.t(s.now), chunks[i], raws[i])
	}
	s.process(o)
	if s.publishAt(s.nextSeq) <= 0 {
		s.publish() // the warm-up's slices, at once
		return
	}
	s.push(event{at: s.publishAt(s.nextSeq), kind: evPublish, node: originIdx})
}

// publishAt is when slice seq is published: when it ends ((seq+1) ×
// Slice after the stream's start, which is Warmup before the run's),
// or when the size cap closes it (stream.publishAt).
func (s *Sim) publishAt(seq uint64) int64 {
	return int64(s.stream.publishAt(seq)) - int64(s.cfg.Warmup)
}

// lend gives the core of e's peer the part's output storage (pool)
// before e runs, when e is an input to a core of this part: the core's
// outputs then go to memory that the part's last core used, in the
// cache, not to its own, which at 10,000 peers is not
// (swarm.Node.Lend). process takes it back; if e's handler did not
// process the core, the next lend does.
func (s *Sim) lend(e *event) {
	s.takeBack()
	if e.node < 0 || int(e.node) >= len(s.peers) || partOf(e) != s.part || (s.part == 0) != (e.node == originIdx) {
		return // not a core's input, or not a core of this part
	}
	if p := s.peers[e.node]; p.node != nil && p.node.Lend(s.pool) {
		s.lentTo = p
	}
}

// takeBack ends the lend to a core, if any: the part's storage comes
// back, or the core's own when outputs wait in it (swarm.Node.Return).
func (s *Sim) takeBack() {
	if q := s.lentTo; q != nil {
		s.pool, s.lentTo = q.node.Return(), nil
	}
}

// process acts on what p's core has ready, then arms its timer.
func (s *Sim) process(p *peer) {
	for p.node.HasReady() {
		rd := p.node.Ready()
		if s.miss != nil {
			s.miss.ready(s, p, &rd)
		}
		for _, id := range rd.CutOff {
			s.cutOff(p, id)
		}
		if len(rd.Sends) > 1 && !s.cold {
			s.warmSends(rd.Sends)
		}
		for i := range rd.Sends {
			s.send(p, &rd.Sends[i])
		}
		for i, id := range rd.Fetches {
			if _, dup := p.fetching[id]; dup {
				continue
			}
			if p.fetching == nil {
				p.fetching = map[wire.ID]fetchState{}
			}
			due := s.dueIn(rd.FetchDue[i])
			p.fetching[id] = fetchPlain
			if due > 0 {
				p.fetching[id] = fetchDue
				p.dueFetches++
			}
			o := s.peers[originIdx]
			if s.severed(p, o) { // the request fails after its timeout
				s.push(event{at: s.now + requestTimout, kind: evMissing, node: p.idx, from: originIdx, aux: int64(id.Seq), stripe: id.Stripe})
				continue
			}
			s.m.control += s.ctl.request
			s.push(event{at: s.now + s.owd(p, o, false), kind: evFetch, node: originIdx, from: p.idx, aux: fetchAux(id.Seq, due), stripe: id.Stripe})
		}
		for i := range rd.Play {
			s.played(p, &rd.Play[i])
		}
		if len(rd.Lost) > 0 {
			s.lostParents(p, rd.Lost)
		}
		s.meshOut(p, &rd)
		p.node.Recycle(rd)
	}
	if p == s.lentTo { // nothing is ready: the storage lent, for the next core
		s.takeBack()
	}
	if s.miss != nil {
		s.miss.check(s, p)
	}
	s.arm(p)
}

// lostParents handles parents p's core reports lost: each lost stripe
// switches at once to a backup (chandelier.Repair), and one report per
// lost parent, with the switches, goes to the tracker.
func (s *Sim) lostParents(p *peer, lost []swarm.Lost) {
	var reported []int32
	for _, l := range lost {
		q := s.index(l.Parent)
		if q == noPeer || slices.Contains(reported, q) {
			continue
		}
		reported = append(reported, q)
		s.forget(p, q)
		rep := lostReport{parent: q}
		for _, m := range lost {
			if m.Parent != l.Parent || m.Stripe >= len(p.parents) || p.parents[m.Stripe] != q {
				continue
			}
			s.setStripe(p, m.Stripe, noPeer)
			if sw, ok := s.repair(p, m.Stripe, q); ok {
				rep.switched = append(rep.switched, sw)
			} else if s.cfg.Overlay && s.cfg.Media {
				if sw, ok := s.ovRepair(p, m.Stripe, q); ok { // the tracker is away
					rep.switched = append(rep.switched, sw)
				}
			}
		}
		if l := p.link(q); l != nil { // lost on its stripes: close the link
			s.push(event{at: max(s.now+s.owd(p, s.peers[q], l.relayed), l.helloAt), kind: evBye, node: q, from: p.idx})
			p.dropLink(q)
		}
		s.setPartners(p) // a new parent is no partner for its stripe
		if !p.joined {
			continue
		}
		p.lost = append(p.lost, rep)
		s.m.control += s.ctl.lost
		s.push(event{at: s.now + s.trackerOWD(p), kind: evTrackerLost, node: p.idx, from: q})
	}
}

// linkDown handles the loss of p's connection to q: q's stripes are lost
// (the core reports them), a child q is removed.
func (s *Sim) linkDown(p *peer, q int32) {
	if l := p.link(q); l != nil {
		p.dropLink(q)
	}
	p.node.NodeGone(s.t(s.now), s.peers[q].id)
	p.forgetChild(q)
	if slices.Contains(p.partners, q) { // the core forgot it as a partner
		s.dropPartner(p, q)
		s.setPartners(p)
	}
}

// arm keeps one pending Tick at p's core's next deadline.
func (s *Sim) arm(p *peer) {
	dl := p.node.NextDeadline()
	if dl.IsZero() {
		if p.timerAt >= 0 {
			s.disarm(p)
			p.timerGen++
			p.timerAt = -1
		}
		return
	}
	at := max(int64(dl.Sub(epoch)), s.now)
	if at == p.timerAt {
		return
	}
	s.disarm(p)
	p.timerGen++
	p.timerAt = at
	p.timerSlot = s.push(event{at: at, kind: evTick, node: p.idx, aux: p.timerGen})
}

// disarm cancels p's pending Tick, if any: a Tick whose deadline moved
// would only pop to be ignored (a fifth of all Ticks did).
func (s *Sim) disarm(p *peer) {
	if p.timerAt >= 0 && !s.keepStale {
		s.q.cancel(p.timerSlot, evTick, p.idx, p.timerGen)
	}
	p.timerSlot = -1
}

// send carries one pushed chunk to a child.
func (s *Sim) send(p *peer, snd *swarm.Send) {
	q := s.index(snd.To)
	if q == noPeer || !s.up(q) {
		return // the connection is gone; the core hears of it separately
	}
	c := s.peers[q]
	if s.severed(p, c) {
		return // lost in the partition
	}
	// With LiveFirst, live chunks ahead of a new child's backlog
	// (backlog.go), except at the origin: with scarce upload its new
	// children would wait on it (scarce-upload test: continuity 0.9895
	// with the origin too, 0.9925 without).
	if snd.Backlog && s.cfg.LiveFirst && p.idx != originIdx {
		s.sendBacklog(p, c, snd)
		return
	}
	if s.cfg.QueueLimit > 0 && p.queued(c.idx, s.now) > int64(s.cfg.QueueLimit) {
		// It would wait too long behind the chunks queued for c: the
		// parent drops it, as the real driver's writer drops what waited
		// longer than MaxQueueDelay; c gets it elsewhere.
		s.m.queueDrops++
		return
	}
	arrive := s.transmit(p, c, len(snd.Chunk), p.relaysTo(c.idx))
	s.m.sent(p, c, snd.ID, len(snd.Chunk))
	s.push(event{at: arrive, kind: evChunk, node: q, from: p.idx, raw: snd.Chunk, aux: int64(snd.ID.Seq), stripe: snd.ID.Stripe, cross: p.isp != c.isp})
}

// chunkIn hands an arrived chunk to its node.
func (s *Sim) chunkIn(e *event) {
	p := s.peers[e.node]
	if !p.alive {
		return
	}
	// The sender's ID from the ID blocks, without touching the sender (a
	// cache miss): peer i's ID is idOf(i), the same string.
	if err := p.node.HandleChunk(s.t(s.now), s.idOf(e.from), e.raw); err != nil {
		s.fail("node %d rejected a chunk (slice %d stripe %d) from honest node %d: %v", p.idx, e.aux, e.stripe, e.from, err)
		return
	}
	if e.kind != evFetched {
		s.cancelFetch(p, wire.ID{Seq: uint64(e.aux), Stripe: e.stripe})
	}
	s.process(p)
}

// fetchState is what p.fetching knows of a fetch in flight.
type fetchState uint8

const (
	fetchPlain    fetchState = iota + 1 // asked without a due
	fetchDue                            // asked with a due: cancelable
	fetchCanceled                       // canceled, its answer not back yet
)

// cancelFetch cancels p's fetch of id, asked with a due, when the chunk
// came another way (as the real fetcher does): the origin drops it if it
// still waits in the fetch budget, and answers "missing".
func (s *Sim) cancelFetch(p *peer, id wire.ID) {
	if p.dueFetches == 0 || p.fetching[id] != fetchDue {
		return
	}
	p.fetching[id] = fetchCanceled
	p.dueFetches--
	o := s.peers[originIdx]
	if s.severed(p, o) {
		return
	}
	s.m.control += s.ctl.request
	s.push(event{at: s.now + s.owd(p, o, false), kind: evCancel, node: originIdx, from: p.idx, aux: int64(id.Seq), stripe: id.Stripe})
}

// fetchDone forgets p's fetch of id: its answer (the chunk or
// "missing") arrived.
func (s *Sim) fetchDone(p *peer, id wire.ID) {
	if p.fetching[id] == fetchDue {
		p.dueFetches--
	}
	delete(p.fetching, id)
}

// cancelAt drops a canceled fetch from the origin's fetch budget, if it
// still waits there, and answers it "missing".
func (s *Sim) cancelAt(e *event) {
	id := wire.ID{Seq: uint64(e.aux), Stripe: e.stripe}
	s.fetchRef = s.fetchQ.Remove(func(a fetchAsk) bool { return a.to == e.from && a.id == id }, s.fetchRef[:0])
	for _, a := range s.fetchRef {
		s.m.fetchCanceled++
		if p := s.peers[a.to]; p.alive {
			s.m.control += s.ctl.request
			s.push(event{at: s.now + s.owd(s.peers[originIdx], p, false), kind: evMissing, node: p.idx, from: originIdx, aux: int64(a.id.Seq), stripe: a.id.Stripe})
		}
	}
}

// fetchAux packs a fetch's slice seq (below 2^32: over a decade of
// slices) and its Request.Due in milliseconds (0: none) into an evFetch's
// aux, so the event stays as small as the others.
func fetchAux(seq uint64, dueMs int64) int64 { return int64(seq&(1<<32-1)) | dueMs<<32 }

// dueIn is the Request.Due a fetch asked now names for a slice due at
// due (zero: none), in whole milliseconds rounded up, as on the wire.
func (s *Sim) dueIn(due time.Time) int64 {
	if due.IsZero() {
		return 0
	}
	d := min(max(due.Sub(s.t(s.now)), time.Millisecond), wire.MaxRequestDue)
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// fetchAsk is a fetch waiting in the origin's fetch budget.
type fetchAsk struct {
	to  int32
	id  wire.ID // as asked (seq 0: the newest keyframe)
	seq uint64  // the slice sent
	raw []byte
}

// fetch serves a fetch at the origin: an answer it holds waits in its
// fetch budget (swarm.FetchBudget) for its turn, nearest deadline first,
// or is refused at once when it cannot leave in time. The deadline is
// the asker's Due after the request was sent, less the answer's way
// back, as the real origin reckons it from the request's arrival and the
// connection's round trip.
func (s *Sim) fetch(e *event) {
	o, p := s.peers[originIdx], s.peers[e.from]
	if !p.alive {
		return
	}
	asked := wire.ID{Seq: uint64(e.aux) & (1<<32 - 1), Stripe: e.stripe}
	dueMs := e.aux >> 32
	id := asked
	if id.Seq == 0 { // the newest keyframe slice, as the real driver serves it
		if seq, ok := o.node.NewestKeyframe(); ok {
			id.Seq = seq
		}
	}
	raw, ok := o.node.Lookup(id)
	if !ok {
		s.m.control += s.ctl.request
		s.push(event{at: s.now + s.owd(o, p, false), kind: evMissing, node: p.idx, from: originIdx, aux: int64(asked.Seq), stripe: e.stripe})
		return
	}
	var deadline time.Time
	if dueMs > 0 {
		deadline = s.t(s.now + dueMs*int64(time.Millisecond) - 2*s.owd(o, p, false))
	}
	s.fetchRef = s.fetchQ.Ask(s.t(s.now), fetchAsk{p.idx, asked, id.Seq, raw}, len(raw), deadline, s.fetchRef[:0])
	for _, a := range s.fetchRef {
		s.refuseFetch(a)
	}
	s.serveFetches()
}

// refuseFetch answers a fetch the budget refused: "missing" at once.
func (s *Sim) refuseFetch(a fetchAsk) {
	o, p := s.peers[originIdx], s.peers[a.to]
	s.m.fetchRefused++
	if !p.alive {
		return
	}
	s.m.control += s.ctl.request
	s.push(event{at: s.now + s.owd(o, p, false), kind: evMissing, node: p.idx, from: originIdx, aux: int64(a.id.Seq), stripe: a.id.Stripe})
}

// serveFetches sends the fetch answers whose turn has come and arms an
// evFetchServe for the next.
func (s *Sim) serveFetches() {
	var next time.Time
	s.fetchOut, next = s.fetchQ.Serve(s.t(s.now), s.fetchOut[:0])
	o := s.peers[originIdx]
	for i := range s.fetchOut {
		a := &s.fetchOut[i]
		if a.Dropped {
			s.refuseFetch(a.Item)
			continue
		}
		p := s.peers[a.Item.to]
		if !p.alive {
			continue
		}
		id := wire.ID{Seq: a.Item.seq, Stripe: a.Item.id.Stripe}
		s.m.sent(o, p, id, len(a.Item.raw))
		arrive := s.deliver(o, p, len(a.Item.raw), int64(a.Done.Sub(epoch)), false)
		s.push(event{at: arrive, kind: evFetched, node: p.idx, from: originIdx, raw: a.Item.raw, aux: int64(a.Item.id.Seq), stripe: a.Item.id.Stripe})
	}
	clear(s.fetchOut)
	if !next.IsZero() {
		if at := int64(next.Sub(epoch)); s.fetchServeAt < 0 || at < s.fetchServeAt {
			s.fetchServeAt = at
			s.push(event{at: at, kind: evFetchServe, node: originIdx})
		}
	}
}

// cutOff closes p's connection to a node its core found misbehaving.
func (s *Sim) cutOff(p *peer, id swarm.NodeID) {
	q := s.index(id)
	if q == noPeer {
		return
	}
	s.linkDown(p, q)
	s.push(event{at: s.now + s.owd(p, s.peers[q], false), kind: evLinkDown, node: q, from: p.idx})
}

// idOrNone returns peer q's node ID ("" for noPeer). The simulator hands
// the cores each peer's one ID string, so that comparing IDs is cheap.
func (s *Sim) idOrNone(q int32) swarm.NodeID {
	if q == noPeer {
		return ""
	}
	return s.peers[q].id
}

// connect opens p's link to its parent q: a hole punch through both NATs
// (RFC 4787 behaviour, see nat.go), else a relay, else failure; then the
// QUIC handshake and the hello.
func (s *Sim) connect(p, q *peer) {
	direct := canPunch(p.nat, q.nat)
	delay := int64(0)
	if p.nat.typ != NATOpen || q.nat.typ != NATOpen {
		delay += 2 * s.trackerOWD(p) // candidates swapped via the tracker
	}
	switch {
	case direct:
		s.m.nat.Direct++
	case s.cfg.Relay:
		s.m.nat.Relayed++
		if l := p.link(q.idx); l != nil {
			l.relayed = true
		}
	default:
		s.m.nat.Failed++
		s.push(event{at: s.now + punchTimeout, kind: evLinkDown, node: p.idx, from: q.idx})
		return
	}
	delay += int64(handshakeRTTs * 2 * float64(s.owd(p, q, p.relayedFrom(q.idx))))
	s.subscribe(p, q, delay)
}

// hello subscribes child e.from at parent e.node to the stripes the
// child takes from it. The hello carries all the parent reads of the
// child (a child that moved on since says bye after it, on the same
// stream).
func (s *Sim) hello(e *event) {
	q, p := s.peers[e.node], s.peers[e.from]
	back := s.now + s.owd(q, p, e.relay)
	if !q.alive || s.severed(p, q) {
		s.push(event{at: back, kind: evLinkDown, node: p.idx, from: q.idx})
		return
	}
	if !q.newHello(p.idx, e.stripe, s.now) {
		return // overtaken by a later hello on the link
	}
	q.setRelayed(p.idx, e.relay)
	if err := q.node.AddChild(s.t(s.now), p.id, helloOf(e)); err != nil {
		// The parent says bye: it is full.
		s.push(event{at: back, kind: evLinkDown, node: p.idx, from: q.idx})
		return
	}
	s.push(event{at: back, kind: evLinkUp, node: p.idx, from: q.idx})
	s.process(q)
}
