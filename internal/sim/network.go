package sim

import (
	"math"
	"math/rand/v2"
	"time"
)

// The network model's constants (virtual nanoseconds).
const (
	sameISPCore   = 1e6  // core delay inside an ISP
	sameRegion    = 8e6  // between ISPs of one region
	minInterReg   = 30e6 // between regions: drawn in [min, max)
	maxInterReg   = 80e6 //
	originAccess  = 1e6  // the origin and tracker sit in a data centre
	relayExtra    = 2e6  // relay processing
	handshakeRTTs = 1.5  // QUIC handshake + hello, in round trips
	punchTimeout  = 3e9  // a punch that fails is given up after this
	idleTimeout   = 5e9  // QUIC idle timeout: a silent peer's connections close
	requestTimout = 2e9  // a tracker request without answer is retried
	jitterShare   = 0.1  // jitter: up to this share of the one-way delay
)

// network holds the static topology: ISPs, regions, delays.
type network struct {
	ispCum    []float64 // cumulative ISP shares (Zipf)
	interReg  [][]int64 // core delay between regions
	originReg int
}

func newNetwork(cfg *Config, rng *rand.Rand) *network {
	n := &network{}
	w := make([]float64, cfg.ISPs)
	sum := 0.0
	for i := range w {
		w[i] = 1 / math.Pow(float64(i+1), cfg.ISPSkew)
		sum += w[i]
	}
	acc := 0.0
	for i := range w {
		acc += w[i] / sum
		n.ispCum = append(n.ispCum, acc)
	}
	n.interReg = make([][]int64, cfg.Regions)
	for i := range n.interReg {
		n.interReg[i] = make([]int64, cfg.Regions)
	}
	for i := range cfg.Regions {
		for j := i + 1; j < cfg.Regions; j++ {
			d := int64(minInterReg + rng.Float64()*(maxInterReg-minInterReg))
			n.interReg[i][j], n.interReg[j][i] = d, d
		}
	}
	return n
}

// drawISP picks an ISP for a uniform u in [0,1).
func (n *network) drawISP(u float64) int {
	for i, c := range n.ispCum {
		if u < c {
			return i
		}
	}
	return len(n.ispCum) - 1
}

// core is the backbone delay between two peers' networks.
func (n *network) core(a, b *peer) int64 {
	switch {
	case a.isp == b.isp && a.isp >= 0:
		return sameISPCore
	case a.region == b.region:
		return sameRegion
	}
	return n.interReg[a.region][b.region]
}

// owd is the one-way delay between two peers without jitter; through the
// relay (at the origin's data centre) when relayed.
func (s *Sim) owd(a, b *peer, relayed bool) int64 {
	var d int64
	if relayed {
		o := s.peers[originIdx]
		d = a.access + b.access + s.net.core(a, o) + s.net.core(o, b) + relayExtra
	} else {
		d = a.access + b.access + s.net.core(a, b)
	}
	if s.cfg.DelayScale != 1 {
		d = max(1, int64(float64(d)*s.cfg.DelayScale))
	}
	return d
}

// trackerOWD is the one-way delay between a peer and the tracker (beside
// the origin).
func (s *Sim) trackerOWD(p *peer) int64 {
	return s.owd(p, s.peers[originIdx], false)
}

// transmit sends size bytes from a to b starting now and returns the
// arrival time. a's upload is shared fairly among its busy connections
// (as QUIC connections share a link under congestion control): the
// transfer queues behind earlier ones on the same connection only, at the
// link rate divided by the connections busy when it starts. It then
// crosses the network (delay, jitter, and a retransmission round when a
// packet is lost: the transport is reliable) and queues on b's download
// link.
func (s *Sim) transmit(a, b *peer, size int, relayed bool) int64 {
	a.pruneConns(s.now)
	i := a.connTo(b.idx)
	busy := 1 + len(a.conns)
	var free int64 // when the connection to b drains; 0: idle
	if i >= 0 {
		free = a.conns[i].free
		busy--
	}
	if a.bulkEnd > s.now {
		busy++ // a backlog chunk on the wire (backlog.go)
	}
	start := max(s.now, free)
	done := start + int64(float64(size)*a.upNs*float64(busy))
	if i >= 0 {
		a.conns[i].free = done
	} else {
		if a.connAt != nil {
			a.growConnAt(b.idx)
			a.connAt[b.idx] = int32(len(a.conns)) + 1
		}
		a.conns = append(a.conns, upConn{b.idx, done})
	}
	a.connsDrain = min(a.connsDrain, done)
	return s.deliver(a, b, size, done, relayed)
}

// queued returns how long a chunk p sends to q now waits behind the
// chunks already queued on that connection (0: it goes out at once).
func (p *peer) queued(q int32, now int64) int64 {
	p.pruneConns(now)
	if i := p.connTo(q); i >= 0 {
		return p.conns[i].free - now
	}
	return 0
}

// pruneConns forgets p's connections drained by now. Before the
// earliest drain none has: the origin, whose connections are many,
// scans them once a burst of sends has gone out, not at every send.
// Their order is no output: every reader counts them or takes a max.
func (p *peer) pruneConns(now int64) {
	if now < p.connsDrain {
		return
	}
	p.connsDrain = math.MaxInt64
	keep := p.conns[:0]
	for _, c := range p.conns {
		if c.free <= now {
			if p.connAt != nil {
				p.connAt[c.to] = 0
			}
			continue
		}
		if p.connAt != nil {
			p.connAt[c.to] = int32(len(keep)) + 1
		}
		keep = append(keep, c)
		p.connsDrain = min(p.connsDrain, c.free)
	}
	if len(keep) == 0 {
		keep = p.connsBuf[:0] // back to the inline storage once all drained
	}
	p.conns = keep
}

// connTo returns the index in p.conns of p's connection to q, -1: none.
func (p *peer) connTo(q int32) int {
	if p.connAt != nil {
		if int(q) < len(p.connAt) {
			return int(p.connAt[q]) - 1
		}
		return -1
	}
	for i := range p.conns {
		if p.conns[i].to == q {
			return i
		}
	}
	return -1
}

// growConnAt makes room in p.connAt for peer q (peers join as the run
// goes).
func (p *peer) growConnAt(q int32) {
	if int(q) >= len(p.connAt) {
		p.connAt = append(p.connAt, make([]int32, int(q)+1-len(p.connAt))...)
	}
}

// upConn is a busy connection on a peer's upload: its destination and
// when its queue drains.
type upConn struct {
	to   int32
	free int64
}

// fetchBacklogLimit is how long a fetch without a deadline may wait in
// the origin's fetch budget (swarm.FetchBudget.Backlog): one that would
// wait longer is answered "missing" at once (the peer retries or skips),
// so fetches never eat the seeds' upload.
// Longer backlogs serve chunks too late to play and collapse the swarm
// in the scaled-down acceptance tests (1 s: steady continuity 0.977, 2 s:
// 0.33; 250 ms: 0.992). The real origin's transport.FetchBacklog, which
// says why 150 ms.
const fetchBacklogLimit = int64(150 * time.Millisecond)

// deliver carries size bytes that left a's uplink at done across the
// network to b; it returns when they reach b's download link. The
// transfer's event books that link when it gets there (Sim.book): b's
// state is written in b's own events only.
func (s *Sim) deliver(a, b *peer, size int, done int64, relayed bool) int64 {
	d := s.owd(a, b, relayed)
	lat := d + int64(a.draw()*jitterShare*float64(d))
	if s.cfg.Loss > 0 {
		pkts := (size + packetSize - 1) / packetSize
		if a.draw() < s.lossOf(pkts) {
			lat += 2*d + 10e6 // detection and one retransmission
		}
	}
	return done + lat
}

// lossOf returns the chance that a transfer of pkts packets loses at
// least one, from this part's table (filled as transfers need it: a
// power per transfer was about 1 % of a run).
func (s *Sim) lossOf(pkts int) float64 {
	for len(s.lossP) <= pkts {
		s.lossP = append(s.lossP, 1-math.Pow(1-s.cfg.Loss, float64(len(s.lossP))))
	}
	return s.lossP[pkts]
}

// download books a transfer that takes d on b's download link and
// reaches the link at t, and returns when it has arrived: at t, or once
// the transfers that reached the link before it are through (its last
// byte d after theirs). Transfers book the link as they reach it
// (Sim.book), so the link serves them in arrival order, whatever the
// order they were sent in: a chunk queued behind a congested parent's
// upload, due in a second, does not hold up the fetches and pushes that
// arrive meanwhile (it did while the link was booked at send time as
// one "free at" time: 2,000 peers with scarce upload waited about a
// second for origin fetches).
func (b *peer) download(t, d int64) int64 {
	a := max(t, b.downFree+d)
	b.downFree = a
	return a
}

// book books the download link of the node a transfer's event e reaches
// (a chunk pushed, pulled or fetched), as the transfer gets there. It
// reports true when the transfer must wait for the link: e is then
// pushed again for when it has arrived (booked), and is no event of the
// trace until then.
func (s *Sim) book(e *event) bool {
	if e.booked {
		return false
	}
	b := s.peers[e.node]
	if !b.alive {
		return false // its handler drops it
	}
	if a := b.download(e.at, int64(float64(len(e.raw))*b.downNs)); a > e.at {
		e.at, e.booked = a, true
		s.q.push(*e)
		return true
	}
	return false
}
