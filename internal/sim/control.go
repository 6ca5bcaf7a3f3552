package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/tracker"
)

// controlSizes are the sizes of control messages, measured once from
// representative encodings (HTTP and QUIC framing overhead not counted).
type controlSizes struct {
	register, join, beat, lost, leave, hello, request int64
}

func measureControl() controlSizes {
	size := func(v ...any) int64 {
		n := 0
		for _, x := range v {
			b, _ := json.Marshal(x)
			n += len(b)
		}
		return int64(n)
	}
	id := string(nodeID(1))
	ni := tracker.NodeInfo{ID: id, Addr: "100.0.0.1:4242"}
	ch := tracker.ChannelInfo{Name: channelName, SDP: "v=0\r\ns=swarmtv sim\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
		PublicKey: "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=", Origin: ni, Stripes: 4, SliceMS: 100}
	stats := tracker.PeerStats{PlayedSlices: 12345, LostSlices: 3, PlayerBytes: 123456789, P2PBytesIn: 123456789, BytesForwarded: 123456789, LagMS: 1500}
	return controlSizes{
		register: size(tracker.RegisterRequest{Channel: ch, Capacity: 8}),
		join:     size(tracker.JoinRequest{ID: id, Addr: ni.Addr, Capacity: 2}, tracker.JoinResponse{Channel: ch, Parent: ni, HeartbeatMS: 1000}),
		beat:     size(tracker.HeartbeatRequest{ID: id, Stats: stats}, tracker.HeartbeatResponse{Parent: ni, Children: []tracker.NodeInfo{ni}}),
		lost:     size(tracker.ParentLostRequest{ID: id, Parent: id}, tracker.ParentLostResponse{Parent: ni}),
		leave:    size(tracker.LeaveRequest{ID: id}),
		hello:    int64(3 + 1 + 1 + len(channelName) + 2 + 8), // frame header + hello
		request:  3 + 1 + 8 + 1,                               // frame header + chunk ID
	}
}

// join sends p's join request to the tracker; aux 1 marks p's arrival.
func (s *Sim) join(e *event) {
	p := s.peers[e.node]
	if e.aux == 1 {
		cfg := s.nodeConfig(false, acceptLimit(p.capacity))
		cfg.Capacity = p.capacity
		node, err := swarm.New(cfg)
		if err != nil {
			s.err = err
			return
		}
		p.node = node
		s.setAlive(p, true)
		p.alivePos = len(s.alive)
		s.alive = append(s.alive, p.idx)
		if s.cfg.Overlay {
			s.ovArrive(p)
		}
		if !s.cfg.Media {
			return // the overlay only: no stream, no tracker
		}
		// Start the core's clock, as the real driver does: a peer the
		// tracker cannot place fetches from the origin after the
		// connect grace.
		node.Tick(s.t(s.now))
		s.process(p)
	}
	if !p.alive {
		return
	}
	s.m.control += s.ctl.join
	s.push(event{at: s.now + s.trackerOWD(p), kind: evTrackerJoin, node: p.idx})
}

// joinBatchWindow is how long the simulated tracker gathers joins into
// one placement round (the real tracker runs one per join, or one per
// Config.JoinWindow; at a flash crowd of thousands per second the
// simulator batches them) — at least: beyond 10,000 peers the window
// grows by joinBatchPerPeer a peer (100 ms at 100,000). A placement round
// costs about 1.8 µs a peer (180 ms at 100,000), so a tracker gathering
// joins for less than a round takes would fall behind for good, and the
// simulated one, which takes no virtual time, would run a round every
// 10 ms for the whole flash crowd.
const (
	joinBatchWindow  = int64(10 * time.Millisecond)
	joinBatchPerPeer = int64(time.Microsecond)
)

// joinWindow is how long the simulated tracker gathers joins.
func (s *Sim) joinWindow() int64 {
	return max(joinBatchWindow, int64(s.cfg.Peers)*joinBatchPerPeer)
}

// trackerJoin queues a join at the tracker; the batch runs shortly.
func (s *Sim) trackerJoin(e *event) {
	p := s.peers[e.node]
	if !p.alive {
		return
	}
	if !s.trUp || s.severed(p, s.peers[originIdx]) {
		s.push(event{at: s.now - s.trackerOWD(p) + requestTimout, kind: evJoin, node: p.idx})
		if s.cfg.Overlay {
			s.ovBootstrapParent(p)
		}
		return
	}
	if len(s.joinQ) == 0 {
		s.push(event{at: s.now + s.joinWindow(), kind: evJoinBatch})
	}
	s.joinQ = append(s.joinQ, p.idx)
}

// joinBatch runs the queued joins at the tracker in one round.
func (s *Sim) joinBatch() {
	q := s.joinQ
	s.joinQ = nil
	if !s.trUp {
		for _, i := range q {
			p := s.peers[i]
			s.push(event{at: s.now - s.trackerOWD(p) + requestTimout, kind: evJoin, node: p.idx})
		}
		return
	}
	reqs := make([]tracker.JoinRequest, 0, len(q))
	var who []*peer
	for _, i := range q {
		p := s.peers[i]
		if !p.alive {
			continue
		}
		who = append(who, p)
		reqs = append(reqs, tracker.JoinRequest{
			ID: string(p.id), Addr: addrOf(p), Capacity: p.capacity,
			UploadBPS: int64(p.ratio * s.cfg.StreamKbps * 1000),
			NAT:       p.nat.typ.String(), ISP: fmt.Sprintf("isp%d", p.isp), Region: fmt.Sprintf("region%d", p.region),
			Current: s.currentPlace(p),
		})
	}
	if len(reqs) == 0 {
		return
	}
	resps, errs := s.tr.JoinBatch(channelName, reqs)
	for k, p := range who {
		if errs[k] != nil {
			// No channel yet: try again later.
			s.push(event{at: s.now - s.trackerOWD(p) + requestTimout, kind: evJoin, node: p.idx})
			continue
		}
		p.answer = resps[k].Stripes
		if ms := resps[k].StartAgeMS; ms > 0 {
			p.node.SetStartAge(time.Duration(ms) * time.Millisecond)
		}
		s.push(event{at: s.now + s.trackerOWD(p), kind: evJoined, node: p.idx})
	}
}

// joined takes the tracker's join answer.
func (s *Sim) joined(e *event) {
	p := s.peers[e.node]
	if !p.alive {
		return
	}
	p.joined = true
	if p.joinedAt == 0 {
		p.joinedAt = s.now
	}
	if !p.beating {
		p.beating = true
		phase := int64(p.draw() * float64(s.cfg.Heartbeat))
		s.push(event{at: s.now + phase, kind: evHeartbeat, node: p.idx})
	}
	s.apply(p, p.answer)
	s.process(p)
}

// heartbeat sends p's heartbeat and re-arms the timer.
func (s *Sim) heartbeat(e *event) {
	p := s.peers[e.node]
	if !p.alive {
		p.beating = false
		return
	}
	s.m.control += s.ctl.beat
	s.push(event{at: s.now + s.trackerOWD(p), kind: evTrackerBeat, node: p.idx})
	s.push(event{at: s.now + int64(s.cfg.Heartbeat), kind: evHeartbeat, node: p.idx})
}

// trackerBeat runs a heartbeat at the tracker. A tracker that does not
// know the peer (it restarted, or expired the peer) makes it join again.
func (s *Sim) trackerBeat(e *event) {
	p := s.peers[e.node]
	if !p.alive || !s.trUp || s.severed(p, s.peers[originIdx]) {
		return
	}
	st := p.node.Stats()
	ps := peerStats(&st)
	ps.LagMS = p.lagMS
	resp, err := s.tr.Heartbeat(channelName, tracker.HeartbeatRequest{ID: string(p.id), Stats: ps, OmitChildren: true})
	if errors.Is(err, tracker.ErrUnknownPeer) || errors.Is(err, tracker.ErrUnknownChannel) {
		s.push(event{at: s.now + s.trackerOWD(p), kind: evJoin, node: p.idx})
		return
	}
	if err != nil {
		s.err = err
		return
	}
	p.answer = resp.Stripes
	s.push(event{at: s.now + s.trackerOWD(p), kind: evBeatAnswer, node: p.idx})
}

func peerStats(st *swarm.Stats) tracker.PeerStats {
	c := func(v uint64) int64 { return int64(min(v, math.MaxInt64)) }
	return tracker.PeerStats{
		PlayedSlices: c(st.PlayedSlices), LateSlices: c(st.LateSlices), LostSlices: c(st.LostSlices),
		Stalls: c(st.Stalls), StallMS: st.StallTime.Milliseconds(), PlayerBytes: c(st.PlayerBytes),
		P2PBytesIn: c(st.P2PBytesIn), OriginBytesIn: c(st.OriginBytesIn), BytesForwarded: c(st.BytesForwarded),
		BadChunks: c(st.BadChunks), StartupMS: st.StartupDelay.Milliseconds(), Repairs: c(st.Repairs),
	}
}

// trackerLost runs a parent-lost report at the tracker.
func (s *Sim) trackerLost(e *event) {
	p := s.peers[e.node]
	if len(p.lost) == 0 {
		return
	}
	rep := p.lost[0]
	p.lost = p.lost[1:]
	if !p.alive || !s.trUp || s.severed(p, s.peers[originIdx]) {
		return
	}
	resp, err := s.tr.ParentLost(channelName, tracker.ParentLostRequest{ID: string(p.id), Parent: string(nodeID(rep.parent)), Switched: rep.switched})
	switch {
	case errors.Is(err, tracker.ErrUnknownPeer):
		s.push(event{at: s.now + s.trackerOWD(p), kind: evJoin, node: p.idx})
	case err != nil:
		s.err = fmt.Errorf("sim: parent-lost report refused: %w", err)
	default:
		p.answer = resp.Stripes
		s.push(event{at: s.now + s.trackerOWD(p), kind: evLostAnswer, node: p.idx})
	}
}

// leave takes p out: a graceful leave says bye to the tracker, its parent
// and its children; a crash says nothing, and the connections to it close
// after the idle timeout.
func (s *Sim) leave(p *peer, crash bool) {
	if !p.alive {
		return
	}
	s.collect(p)
	if s.cfg.Overlay {
		s.ovLeave(p, crash)
	}
	s.setAlive(p, false)
	p.leftAt = s.now
	s.disarm(p) // its Tick would only be skipped
	p.timerAt = -1
	last := s.alive[len(s.alive)-1]
	s.alive[p.alivePos] = last
	s.peers[last].alivePos = p.alivePos
	s.alive = s.alive[:len(s.alive)-1]
	after := func(q *peer) int64 {
		if crash {
			return s.now + idleTimeout
		}
		return s.now + s.owd(p, q, false)
	}
	for _, l := range p.links { // not before the link's hellos
		s.push(event{at: max(after(s.peers[l.to]), l.helloAt), kind: evLinkDown, node: l.to, from: p.idx})
	}
	for _, c := range p.node.Children() {
		if q := s.index(c); q != noPeer {
			s.push(event{at: after(s.peers[q]), kind: evLinkDown, node: q, from: p.idx})
		}
	}
	s.meshLeave(p, after)
	if !crash {
		s.m.control += s.ctl.leave
		s.push(event{at: s.now + s.trackerOWD(p), kind: evTrackerLeave, node: p.idx})
	}
}

// scheduleChurn schedules the next churn step after from: leaves (and as
// many joins) are a Poisson process of Churn × Peers per minute.
func (s *Sim) scheduleChurn(from int64) {
	rate := s.cfg.Churn * float64(s.cfg.Peers) / 60e9 // per ns
	if rate <= 0 {
		return
	}
	gap := s.churn.ExpFloat64() / rate
	end := float64(s.end)
	if s.cfg.ChurnStopAt > 0 {
		end = min(end, float64(s.cfg.ChurnStopAt))
	}
	if at := float64(from) + gap; at <= end {
		s.push(event{at: int64(at), kind: evChurn})
	}
}

// churnStep: one random viewer leaves, a new one joins.
func (s *Sim) churnStep() {
	if alive := s.aliveAll(); len(alive) > 0 {
		p := s.peers[alive[s.churn.IntN(len(alive))]]
		crash := s.churn.Float64() < s.cfg.CrashShare
		aux := int64(0)
		if crash {
			aux = 1
		}
		s.push(event{at: s.now, kind: evLeave, node: p.idx, aux: aux})
	}
	s.addPeer(s.now)
	s.scheduleChurn(s.now)
}

// currentPlace is the place p reports when it joins again (after a
// tracker restart, or fed through the overlay while the tracker was
// away): its parent per stripe and the depth it advertises (its parent's
// plus one; 0 unknown). Nil for a peer with no parent yet, as the real
// peer sends.
func (s *Sim) currentPlace(p *peer) *tracker.CurrentPlace {
	if s.cfg.RejoinAfresh || !slices.ContainsFunc(p.parents, func(q int32) bool { return q != noPeer }) {
		return nil
	}
	cp := &tracker.CurrentPlace{Version: tracker.PlaceVersion, Stripes: make([]tracker.CurrentStripe, len(p.parents))}
	for st, q := range p.parents {
		if q == noPeer {
			continue
		}
		cs := &cp.Stripes[st]
		cs.Parent = tracker.NodeInfo{ID: string(s.peers[q].id), Addr: addrOf(s.peers[q])}
		if s.cfg.Overlay {
			if d := s.ovDepthOf(p.idx, st); d > 0 && d <= tracker.MaxDepth {
				cs.Depth = d
			}
		}
	}
	return cp
}

// trackerWindows marks the continuity around a tracker outage: the
// viewers' played and due slices (alive and departed) when the tracker
// dies, when it restarts and a minute later. check calls it.
func (s *Sim) trackerWindows() {
	if s.cfg.KillTrackerAt <= 0 {
		return
	}
	marks := [3]int64{int64(s.cfg.KillTrackerAt), int64(s.cfg.RestartTrackerAt), min(int64(s.cfg.RestartTrackerAt+time.Minute), s.end)}
	for k, at := range marks {
		w := &s.trWin[k]
		if w.taken || at <= 0 || s.now < at || (k == 2 && s.cfg.RestartTrackerAt <= 0) {
			continue
		}
		w.taken, w.at = true, s.now
		for _, h := range s.parts {
			w.played += h.m.played
			w.due += h.m.played + h.m.late + h.m.lost
		}
		for _, i := range s.aliveAll() {
			if s.peers[i].collected {
				continue
			}
			st := s.peers[i].node.Stats()
			w.played += st.PlayedSlices
			w.due += st.PlayedSlices + st.LateSlices + st.LostSlices
		}
	}
}

// trackerNotes reports the continuity during the outage and in the
// minute after the restart (as far as the run went).
func (s *Sim) trackerNotes() {
	if s.cfg.KillTrackerAt <= 0 || !s.cfg.Media {
		return
	}
	w := &s.trWin
	span := func(a, b *winMark, what string) {
		if !a.taken || !b.taken || b.due <= a.due {
			return
		}
		c := float64(b.played-a.played) / float64(b.due-a.due)
		s.notes = append(s.notes, fmt.Sprintf("tracker: continuity %.4f %s (%v to %v)", c, what, time.Duration(a.at), time.Duration(b.at)))
	}
	span(&w[0], &w[1], "while it was away")
	span(&w[1], &w[2], "in the minute after its restart (or to the end)")
	if ps := s.placementStats(); ps.RejoinLinks > 0 {
		s.notes = append(s.notes, fmt.Sprintf("tracker: after its restart %d of %d reported links kept (seed round %.1f ms)", ps.RejoinKept, ps.RejoinLinks, 1000*ps.SeedSeconds))
	}
}

// winMark is the played and due slices of every viewer at one time.
type winMark struct {
	taken       bool
	at          int64
	played, due uint64
}
