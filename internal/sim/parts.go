package sim

import (
	"math"
	"runtime"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// Parts. The run's events fall into numParts parts: part 0 holds the
// origin, the tracker and the events of the whole run (the placement
// rounds, the checks, churn, tracker kill and restart, the partition),
// and the viewers are dealt into viewerParts groups by index (node mod
// viewerParts), parts 1 to viewerParts. Each part numbers the events it
// pushes (queue.push), and a queue breaks ties of equal times by
// (pushing part, that part's number).
//
// The run goes in windows as long as the lookahead, the shortest delay
// of an event one viewer pushes to another (the shortest one-way
// delay). In a window [t, t+lookahead) each viewer part runs its own
// events, on its own Sim (a copy of the shared one with its own
// partState); what it pushes to another part waits in an outbox. With
// two workers the run's goroutine and the crew's (crew.go) take the
// viewer parts one by one, from either end of the list, until none is
// left: a part is run whole by whichever takes it, so the two share the
// window's work however their CPUs' speeds differ. Then the outboxes are
// merged into the parts' queues, part 0 runs the same window, and its
// outbox is merged: an event it pushed into the viewer parts' past (a
// churn step's leave) moves to the window's end. Part 0 runs while the
// viewer parts wait, so it may read and write any peer (the tracker
// reads a heartbeat's stats from its core, writes the answer); a viewer
// part reads and writes only its own peers, part 0's state (left as the
// last window left it) and the alive flags as they were at the window's
// start (up). The order of every part's events is then the same with
// one worker or two, and so are the trace (one hash per part, combined
// in part order) and the report (metrics per part, merged at the end).
const (
	// viewerParts is how many parts the viewers are dealt into: enough
	// that the last part taken in a window is a small share of it
	// (about 180 events at 10,000 peers), few enough that a part's own
	// state (its queue's ring, its metrics) stays small beside the
	// peers'.
	viewerParts = 16
	numParts    = 1 + viewerParts
	partShift   = 56 // seq: the pushing part in the top bits
)

// partState is the state each part keeps for itself.
type partState struct {
	part   int
	q      queue
	now    int64 // virtual ns
	m      metrics
	trace  [numParts]tracer // a part adds to trace[part] only
	events uint64
	err    error
	held   []uint16 // the array buffer maps are parsed into (see evMap)
	// alive is this part's alive viewers (order: swap-remove); upDirty
	// the peers whose alive flag its events changed.
	alive   []int32
	upDirty []int32
	out     [numParts][]event // pushed to other parts, waiting for the merge
	// lossP[k] is the chance a transfer of k packets loses one (lossOf).
	lossP []float64
	// warmed keeps what warm read (see there).
	warmed uint64
	// view is the stream as this part's cores verify and parse chunks
	// with it: the shared one, with this part's own one-entry cache of
	// the last lookup (stream.lookup writes it). parse and verify are its
	// methods as the cores' hooks (setView), bound once for every core
	// of the part: a method value made per core is a closure of its own,
	// one more cache miss per chunk at 10,000 cores.
	view   *stream
	parse  func(raw []byte) (*wire.Chunk, error)
	verify func(raw []byte) error
	// pool is the output storage this part's cores pass on (Sim.lend),
	// lentTo the peer whose core holds it now (nil: none does).
	pool   *swarm.Ready
	lentTo *peer
}

// setView makes v the stream this part's cores read (partState.view).
func (ps *partState) setView(v *stream) {
	ps.view, ps.parse, ps.verify = v, v.parse, v.verify
}

// workers returns how many goroutines run c's viewer parts: c.Workers, or
// with 0 two when the Go scheduler runs two at once; one when a
// handler reads other peers' state (the overlay's, the account of
// misses, a sequential join's wait for the viewer before).
func workers(c *Config) int {
	switch {
	case c.Overlay || c.Misses || c.JoinSequential:
		return 1
	case c.Workers == 0:
		return min(2, runtime.GOMAXPROCS(0))
	}
	return c.Workers
}

// partOf returns the part that runs e: 0 for the origin's, the
// tracker's and the run's own events, else the viewer part of e's node.
func partOf(e *event) int {
	if e.node <= originIdx {
		return 0
	}
	switch e.kind {
	case evTrackerJoin, evTrackerBeat, evTrackerLost, evTrackerLeave:
		return 0 // at the tracker, about node
	}
	return 1 + int(e.node%viewerParts)
}

// lookahead is the shortest delay of an event pushed from one viewer to
// another: two last miles (at least 2 ms each) and the core inside an
// ISP, scaled (jitter, loss, relays and the queues only add). The
// origin and the tracker are further (their data centre is in region 0,
// and no ISP's), so their messages take longer.
func (s *Sim) lookahead() int64 {
	d := int64(2*2e6 + sameISPCore)
	if s.cfg.DelayScale != 1 {
		d = max(1, int64(float64(d)*s.cfg.DelayScale))
	}
	return d
}

// up reports whether peer q is alive as another peer's event may read
// it: as it was at the window's start.
func (s *Sim) up(q int32) bool { return s.upSnap[q] }

// setAlive sets p's alive flag; the others see it from the next window
// (up).
func (s *Sim) setAlive(p *peer, alive bool) {
	p.alive = alive
	s.upDirty = append(s.upDirty, p.idx)
}

// initParts makes the viewer parts' Sims: copies of s with their own
// partState.
func (s *Sim) initParts() {
	s.parts[0] = s
	s.pool = new(swarm.Ready)
	for i := 1; i < numParts; i++ {
		h := new(Sim)
		*h = *s
		v := *s.stream
		h.partState = partState{part: i, pool: new(swarm.Ready)}
		h.setView(&v)
		h.q.src = i
		h.m.init(&s.cfg)
		h.trace[i].init()
		s.parts[i] = h
	}
}

// sync gives viewer part h the shared state as s holds it now.
func (h *Sim) sync(s *Sim) {
	own := h.partState
	*h = *s
	h.partState = own
}

// aliveAll returns the alive viewers of every part, in part order.
func (s *Sim) aliveAll() []int32 {
	var all []int32
	for _, h := range s.parts {
		all = append(all, h.alive...)
	}
	return all
}

// canceled returns how many events the parts' queues canceled.
func (s *Sim) canceled() uint64 {
	var n uint64
	for _, h := range s.parts {
		n += h.q.canceled
	}
	return n
}

// runParts runs the windows to the end.
func (s *Sim) runParts() {
	la := s.lookahead()
	var c *crew
	if s.workers > 1 {
		c = s.startCrew()
		defer c.stop()
	}
	s.merge(0, 0)
	for s.err == nil {
		t := int64(math.MaxInt64)
		for _, h := range s.parts {
			if h.q.len() > 0 {
				t = min(t, h.q.peekAt())
			}
		}
		if t > s.end {
			break
		}
		// Windows on a fixed grid, so that their bounds do not depend
		// on what waits in the queues (a stale Tick kept: keepStale).
		b := min(t-t%la+la, s.end+1)
		if c != nil {
			c.run(s, b)
		} else {
			for _, h := range s.parts[1:] {
				h.sync(s)
				h.runUntil(b)
			}
		}
		for _, h := range s.parts[1:] {
			if h.err != nil && s.err == nil {
				s.err = h.err
			}
		}
		if c != nil {
			// The crew merges the viewer parts' inboxes while part 0
			// runs: part 0 pushes into its own outbox only.
			c.merge(b)
			s.clamped += s.mergeTo(0, b)
			s.runUntil(b)
			s.clamped += c.wait()
		} else {
			s.clamped += s.mergeTo(0, b) + s.mergeViewers(b)
			s.runUntil(b)
		}
		s.merge(0, b)
		for _, h := range s.parts {
			for _, i := range h.upDirty {
				s.upSnap[i] = s.peers[i].alive
			}
			h.upDirty = h.upDirty[:0]
		}
		for _, h := range s.parts[1:] {
			s.m.foldISPs(&h.m)
		}
		s.windows++
	}
}

// merge moves part src's outbox into the other parts' queues; an event
// due before b (a viewer part's past) moves to b.
func (s *Sim) merge(src int, b int64) {
	for dst := range numParts {
		s.clamped += s.move(src, dst, b)
	}
}

// mergeTo moves what the viewer parts' outboxes hold for part dst into
// its queue, as merge does, and returns how many events it moved to b.
// It reads and writes only those outboxes and dst's queue.
func (s *Sim) mergeTo(dst int, b int64) (clamped uint64) {
	for src := 1; src < numParts; src++ {
		clamped += s.move(src, dst, b)
	}
	return clamped
}

// mergeViewers does mergeTo for every viewer part.
func (s *Sim) mergeViewers(b int64) (clamped uint64) {
	for dst := 1; dst < numParts; dst++ {
		clamped += s.mergeTo(dst, b)
	}
	return clamped
}

// move moves part src's outbox for part dst into dst's queue and
// returns how many events it moved to b.
func (s *Sim) move(src, dst int, b int64) (clamped uint64) {
	out := &s.parts[src].out[dst]
	q := &s.parts[dst].q
	for _, e := range *out {
		if dst != 0 && e.at < b {
			e.at = b
			clamped++
		}
		q.insert(e)
	}
	clear(*out)
	*out = (*out)[:0]
	return clamped
}

// runUntil runs this part's events before b.
func (s *Sim) runUntil(b int64) {
	for s.q.len() > 0 && s.err == nil {
		if s.q.peekAt() >= b {
			break
		}
		e := s.q.pop()
		if !s.cold {
			s.warm()
		}
		if e.kind == evTick && s.staleTick(&e) {
			continue // not part of the trace: canceled ones never pop
		}
		if (e.kind == evChunk || e.kind == evFetched || e.kind == evPulled) && s.book(&e) {
			continue // it waits for the download link
		}
		s.now = e.at
		if s.now >= s.m.steadyAt {
			s.beginSteady()
		}
		s.events++
		if s.events&0xffff == 0 && s.Cancel != nil {
			select {
			case <-s.Cancel:
				s.err = ErrCanceled
				return
			default:
			}
		}
		s.trace[s.part].add(&e)
		if s.debug != nil {
			d := e // a copy: handing the hook &e would move e to the heap, an allocation per event
			s.debug(&d)
		}
		s.lend(&e)
		s.dispatch(&e)
	}
}

// gather merges the viewer parts' metrics, counts and traces into s's at the
// end of the run.
func (s *Sim) gather() {
	for _, h := range s.parts[1:] {
		s.m.merge(&h.m)
		s.events += h.events
		s.warmed += h.warmed
		s.trace[h.part] = h.trace[h.part]
	}
}
