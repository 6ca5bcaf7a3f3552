package swarm

import (
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// playout is the playout clock. It starts at the first keyframe slice the
// node holds complete (the start slice) and runs skew behind capture
// time, plus the playout delay: slice s is due at
// capture(s) + skew + PlayoutDelay. skew starts as the start slice's
// first arrival minus its capture and grows by every stall.
type playout struct {
	started bool
	next    uint64        // the next slice to play
	skew    time.Duration // arrival behind capture, grown by stalls
	stalled bool          // next is overdue and its stall was counted
	disc    bool          // slices were skipped before next
	// resyncing: the clock was stopped by resync; next is the first
	// slice not played, counted lost up to where the clock starts again.
	resyncing bool
	emitted   bool // a slice was played
	// transit holds the completion times (last chunk's arrival minus
	// capture) of the last slices played, a ring written at transitN;
	// catch-up plays faster while skew exceeds the largest of them.
	transit  [catchUpWindow]time.Duration
	transitN int
	startSeq uint64 // the slice the clock started at (not judged by catchUp)
	pending  bool   // StartMargin: the start slice waits to play (see startSkew)

	// extra: with StartMargin, margin kept beyond PlayoutDelay after
	// stalls (see catchUp), grown by each stall, worn down while slices
	// play on time.
	extra time.Duration
}

// extraDecay is how much of a slice's duration the extra margin loses
// per slice played on time: a stall's margin lasts about 50 × its length
// (half a second, 25 s).
const extraDecay = 50

// The start and playout settings a viewer runs with (the real peer and
// the simulator alike; the core's own defaults keep the older, slower
// start): a start on the newest complete keyframe slice at once with a
// short margin (StartMargin), converging to PlayoutDelay behind the
// slowest recent arrival (more after stalls), and only live chunks for a
// new child when the next keyframe is near (KeyframeWait) — or, for a
// child that names its start (StartAge), every stripe from the first
// keyframe captured at most StartAge before its first hello. swarmtv
// sim's TestStartLevers compares them with the older start on one seed;
// StartAge 600 ms against none (2,000 viewers joining in 10 s, 60 s,
// seed 1): startup p50/p95 1,036/1,575 -> 841/1,448 ms, lag p95 1,513
// -> 1,511 ms, continuity 0.9994 -> 0.9995 (1 s: startup 696/1,490 ms
// but lag p95 1,953 ms: the flash crowd's parents do not hold the older
// keyframe, and the groups of pictures delay the live chunks).
// PlayoutDelay 500 ms against 600 with the origin's size cap (same run):
// lag p95 1,265 -> 1,183 ms, stalls 170 -> 176, continuity 0.9999.
const (
	ViewerPlayoutDelay = 500 * time.Millisecond
	ViewerStartMargin  = 250 * time.Millisecond
	ViewerKeyframeWait = 700 * time.Millisecond
	ViewerStartAge     = 600 * time.Millisecond
)

// catchUpWindow is how many recently played slices catch-up judges by.
const catchUpWindow = 16

// maxPlaySteps bounds one advancePlayout call; more work waits for the
// next Tick (the deadline is then now).
const maxPlaySteps = 1 << 16

// startPlayout starts the clock at sl, a complete keyframe slice. With
// no StartMargin, sl is due PlayoutDelay after its first chunk arrived
// (or when it completed, if later). With one, it plays at once when the node holds StartMargin of the stream beyond it
// (it started on an older group of pictures, whose later slices came in
// its backlog), else as much later as that is short. The clock then
// converges to PlayoutDelay behind the slices' arrival (see catchUp):
// a start on a fresh keyframe plays slower until it has the margin, one
// on an old group faster until it is back near live.
func (n *Node) startPlayout(sl *slot) {
	p := &n.play
	if p.resyncing {
		if sl.seq > p.next {
			n.stats.LostSlices += sl.seq - p.next
		}
		p.resyncing, p.disc = false, true
	}
	p.started = true
	p.next = sl.seq
	if n.cfg.StartMargin <= 0 {
		p.skew = sl.firstAt.Sub(sl.capture)
		// A start slice that took longer than the delay to complete
		// still plays on time.
		if late := n.groupDone(sl).Sub(sl.firstAt.Add(n.cfg.PlayoutDelay)); late > 0 {
			p.skew += late
		}
		return
	}
	p.transitN = 0
	p.startSeq, p.pending = sl.seq, true
	n.startSkew(sl, sl.doneAt)
}

// startSkew sets the clock for the start slice sl, not yet played at
// now: due now (or when it completed, if later) once the node holds
// StartMargin of the stream beyond it (with StartHeldRun, complete and
// without a gap), else StartMargin after it completed. Run again while
// sl waits, so the rest of its group arriving meanwhile brings the start
// forward.
func (n *Node) startSkew(sl *slot, now instant) {
	done := n.groupDone(sl)
	at := done.Add(n.cfg.StartMargin)
	held := n.newestCap
	if n.cfg.StartHeldRun || n.groupAsked(sl) {
		held = n.completeRun(sl)
	}
	if held.Sub(sl.capture) >= n.cfg.StartMargin {
		at = now
		if done.After(now) {
			at = done
		}
	}
	n.play.skew = at.Sub(sl.capture) - n.cfg.PlayoutDelay
}

// The origin's size cap (origin.ChunkerConfig.SliceCap) cuts a big
// slice — a keyframe's — into consecutive slices with one capture: each
// but the last has duration 0, and the slice after it continues it. A
// keyframe slice and its continuations are one start: the picture is
// whole only with all of them, and all are due at once.

// startCandidate returns the keyframe slot a start could begin at now
// that the slot at index i (in n.idx and n.win) completed: its own slot
// when it is a keyframe, else the keyframe slice it continues; nil when
// there is none, or while the keyframe or a continuation is incomplete.
func (n *Node) startCandidate(i int) *slot {
	for !n.win[i].keyframe {
		if i == 0 || n.idx[i-1].seq+1 != n.idx[i].seq || n.idx[i-1].dur != 0 {
			return nil
		}
		i--
	}
	if _, ok := n.groupComplete(i); !ok {
		return nil
	}
	return n.win[i]
}

// groupComplete reports whether the slice at index i of n.idx and the
// slices that continue it are held complete, and when the last of them
// completed.
func (n *Node) groupComplete(i int) (done instant, ok bool) {
	full := n.full()
	for j := i; j < len(n.idx); j++ {
		e := &n.idx[j]
		if e.held != full || (j > i && e.seq != n.idx[j-1].seq+1) {
			return 0, false
		}
		done = max(done, e.done)
		if e.dur != 0 {
			return done, true
		}
	}
	return 0, false
}

// groupEnd returns the last seq of keyframe slice sl's group as far as
// the node knows it: the slice after the last held one that lasts 0
// (the start needs it, though nothing newer may be held yet).
func (n *Node) groupEnd(sl *slot) uint64 {
	i, ok := n.find(sl.seq)
	if !ok {
		return sl.seq
	}
	end := sl.seq
	for j := i; j < len(n.idx) && n.idx[j].seq == end && n.idx[j].dur == 0; j++ {
		end++
	}
	return end
}

// passed reports whether stripe s's parent pushed a chunk of the stripe
// after seq: its chunks go out in order, so it will not send seq (it
// dropped it from a full queue, or began the node's backlog after it).
func (n *Node) passed(s int, seq uint64) bool {
	st := &n.stripes[s]
	return st.parent != "" && !st.pushAt.IsZero() && st.pushSeq > seq
}

// groupDone returns when keyframe slice sl and its continuations were
// all complete (sl's own completion while they are not).
func (n *Node) groupDone(sl *slot) instant {
	if i, ok := n.find(sl.seq); ok {
		if done, ok := n.groupComplete(i); ok {
			return done
		}
	}
	return sl.doneAt
}

// groupAsked reports whether a chunk of keyframe slice sl's picture (sl
// and its continuations) came in answer to a pull or a fetch: its
// stripe's parent went past it or is slow, and the slices after it come
// late too, so the start waits for them as with StartHeldRun (at 2,000
// viewers joining in 10 s, with pulls of the start picture (StartPull)
// and without this, two thirds of the stalls came within half a second
// of a start).
func (n *Node) groupAsked(sl *slot) bool {
	for seq := sl.seq; ; seq++ {
		g := n.slot(seq)
		if g == nil {
			return false
		}
		if g.asked != 0 {
			return true
		}
		if g.duration != 0 {
			return false
		}
	}
}

// completeRun returns the capture of the last slice of the run of
// complete slices that starts at sl (held, in seq order without a gap),
// looking no further than StartMargin beyond sl.
func (n *Node) completeRun(sl *slot) instant {
	i, ok := n.find(sl.seq)
	if !ok {
		return sl.capture
	}
	last := sl.capture
	full := n.full()
	for j := i + 1; j < len(n.idx); j++ {
		e := &n.idx[j]
		if e.seq != n.idx[j-1].seq+1 || e.held != full {
			break
		}
		last = e.captureTime()
		if last.Sub(sl.capture) >= n.cfg.StartMargin {
			break
		}
	}
	return last
}

// playAt returns when slice seq is due.
func (n *Node) playAt(seq uint64) (instant, bool) {
	c, ok := n.captureOf(seq)
	if !ok {
		return 0, false
	}
	return c.Add(n.play.skew + n.cfg.PlayoutDelay), true
}

// advancePlayout plays, stalls on and skips slices up to now. It returns
// when it next needs to run (zero: not until an input). step skips it
// while playKey is unchanged and that time has not come, so what it
// reads besides now must be in playKey, and a call before the time it
// returned must change nothing.
func (n *Node) advancePlayout(now instant) instant {
	p := &n.play
	if !p.started {
		return 0
	}
	for range maxPlaySteps {
		due, ok := n.playAt(p.next)
		if !ok {
			return 0
		}
		var sl *slot     // the slot of p.next when complete
		var done instant // when it completed: from the index, which is read anyway
		if i, ok := n.find(p.next); ok && n.idx[i].held == n.full() {
			sl, done = n.win[i], n.idx[i].done
		}
		complete := sl != nil
		if p.pending && complete && sl.seq == p.startSeq {
			n.startSkew(sl, now)
			due, _ = n.playAt(p.next)
		}
		switch {
		case complete && !done.After(due):
			// Complete in time: play it when due.
			if now.Before(due) {
				return due
			}
			if n.emit(now, sl, due) {
				n.stats.PlayedSlices++
			}
			n.catchUp(sl)
			continue
		case complete && done.Sub(due) < n.cfg.StallLimit:
			// Completed during a stall: play it now, later by the stall.
			stall := done.Sub(due)
			if !p.stalled {
				n.stats.Stalls++
			}
			n.stats.StallTime += stall
			p.skew += stall
			n.addExtra(stall)
			if n.emit(now, sl, done) {
				n.stats.LateSlices++
			}
			n.catchUp(sl)
			continue
		}
		// Missing (or completed only after it was due to be skipped).
		if now.Before(due) {
			return due
		}
		if !p.stalled {
			p.stalled = true
			n.stats.Stalls++
		}
		if limit := due.Add(n.cfg.StallLimit); now.Before(limit) {
			return limit
		}
		n.skip(now)
		if !p.started {
			return 0 // resync: until a keyframe slice completes
		}
	}
	return now
}

// catchUp notes a played slice's completion time (arrival minus
// capture) and moves the clock towards PlayoutDelay behind the slowest
// of the last catchUpWindow played, by at most CatchUp of a slice's
// duration per slice. When playout runs later than they needed — each
// completed more than PlayoutDelay before it was due, as after a stall
// whose cause is gone, or a start on an old group of pictures — it takes
// skew back (plays up to CatchUp faster than the stream); when a slice
// completed less than PlayoutDelay before it was due, as after a start
// on a fresh keyframe (see startPlayout) or a late arrival, it gives
// skew more (plays up to CatchUp slower) until it has it again — with
// StartMargin only, which also leaves the start slice unjudged (it plays
// as soon as it completes) and keeps the margin stalls added for a while
// (see addExtra): the playout delay is short while arrivals are on time,
// longer after late ones and stalls.
func (n *Node) catchUp(sl *slot) {
	p := &n.play
	fast := n.cfg.StartMargin > 0 // converge both ways (see startPlayout)
	if n.cfg.CatchUp <= 0 || (fast && sl.seq == p.startSeq) {
		return
	}
	if sl.pushAt.IsZero() {
		return // every chunk asked for: see noteTransit
	}
	n.noteTransit(sl.pushAt.Sub(sl.capture))
	worst := p.transit[0]
	for _, t := range p.transit[1:min(p.transitN, catchUpWindow)] {
		worst = max(worst, t)
	}
	if fast {
		worst += max(p.extra, n.healthMargin())
		if !sl.doneAt.After(sl.capture.Add(p.skew + n.cfg.PlayoutDelay)) { // on time
			p.extra = max(0, p.extra-sl.duration/extraDecay)
		}
	}
	// Per slice, by its own duration: a slice the size cap closed lasts
	// 0 and moves nothing (it is due with the one it continues).
	step := time.Duration(float64(sl.duration) * n.cfg.CatchUp)
	switch {
	case fast && p.skew < worst:
		p.skew += min(worst-p.skew, step)
	case p.transitN >= catchUpWindow && p.skew > worst:
		p.skew -= min(p.skew-worst, step)
	}
}

// noteTransit records how long a slice took to arrive by itself, for
// catchUp: the last of its chunks that came unasked (pushed by a parent,
// or forwarded by another node). Chunks that answered a fetch or a pull
// do not count: those were asked at a time set by this very clock (their
// slice due less FetchMargin, or when it should exist), so judging skew
// by them would push playout later with every such slice, without end
// (2,000 peers with scarce upload, where most slices need one: lag p95
// ~9 s, and playout fell a window behind, lost slices and resynced).
// Leaving them out altogether would judge skew by the slices whose
// pushes all came early, so a parent's copy of a chunk the node asked
// for elsewhere is noted when it arrives (latePush): parents' pushes,
// not requests, set the playout delay. A late answer still stalls
// playout, which grows skew.
func (n *Node) noteTransit(d time.Duration) {
	p := &n.play
	p.transit[p.transitN%catchUpWindow] = d
	p.transitN++
}

// latePush notes, for catchUp, when the stripe's parent's copy of
// chunk s of sl arrived after the node had got it by asking (a fetch or
// a pull): once per chunk, while the slice is not played (its last
// unasked arrival) or at once (a slice already played).
func (n *Node) latePush(now instant, from NodeID, sl *slot, s int) {
	bit := uint16(1) << s
	if sl.asked&bit == 0 || from == "" || !sameID(n.stripes[s].parent, from) {
		return
	}
	sl.asked &^= bit
	if n.play.started && sl.seq < n.play.next {
		if n.cfg.CatchUp > 0 {
			n.noteTransit(now.Sub(sl.capture))
		}
		return
	}
	sl.pushAt = now
}

// addExtra grows the margin kept after stalls by a stall's length, up to
// PlayoutDelay (with StartMargin only): playout that just stalled keeps
// up to twice the delay, and comes back to PlayoutDelay only while the
// slices arrive on time.
func (n *Node) addExtra(stall time.Duration) {
	if n.cfg.StartMargin > 0 {
		n.play.extra = min(n.play.extra+stall, n.cfg.PlayoutDelay)
	}
}

// skip gives up on the next slice after a full stall, and on the slices
// after it that are also missing and would be overdue had playout not
// stalled, in one step.
func (n *Node) skip(now instant) {
	p := &n.play
	if n.resync() {
		return
	}
	before := p.skew
	n.stats.LostSlices++
	n.stats.StallTime += n.cfg.StallLimit
	p.skew += n.cfg.StallLimit
	n.addExtra(n.cfg.StallLimit)
	p.stalled = false
	p.disc = true
	p.next++
	for {
		seq := p.next
		sl := n.slot(seq)
		if sl != nil && sl.have == n.k {
			return
		}
		c, ok := n.captureOf(seq)
		if !ok {
			return
		}
		overdue := now.Sub(c.Add(before + n.cfg.PlayoutDelay))
		if overdue < 0 {
			return
		}
		if sl != nil {
			n.stats.LostSlices++
			p.next++
			continue
		}
		// A run of slices not held at all: predictions are one
		// SliceDuration apart, so count the overdue ones at once, up to
		// the next held slice.
		cnt := uint64(overdue/n.cfg.SliceDuration) + 1
		if i := n.heldAbove(seq); i >= 0 {
			cnt = min(cnt, n.win[i].seq-seq)
		}
		n.stats.LostSlices += cnt
		p.next += cnt
	}
}

// resync restarts the playout clock, as a joining node starts it, when
// the next slice is older than the Window behind the newest capture seen:
// no node keeps it any more (the origin neither), so it and the slices
// after it up to the live stream can never arrive. That happens after a
// long outage (a network partition that cut the node off from every
// source, then healed): skipping the gap StallLimit at a time would leave
// playout behind live by the whole outage for good. Playout starts again
// at the newest complete keyframe slice held, or at the next keyframe
// slice to complete; the slices jumped over count as lost then, and the
// first one played carries Discontinuity. It reports whether it stopped
// the clock.
func (n *Node) resync() bool {
	p := &n.play
	c, ok := n.captureOf(p.next)
	if !ok || !c.Before(n.newestCap.Add(-n.cfg.Window)) {
		return false
	}
	n.stats.Resyncs++
	p.started, p.stalled, p.resyncing = false, false, true
	for i := len(n.win) - 1; i >= 0 && n.win[i].seq > p.next; i-- {
		if sl := n.win[i]; sl.keyframe && sl.have == n.k {
			if _, ok := n.groupComplete(i); !ok {
				continue
			}
			n.startPlayout(sl)
			break
		}
	}
	return true
}

// heldAbove returns the index in n.win of the first held seq above seq,
// or -1.
func (n *Node) heldAbove(seq uint64) int {
	i, found := n.find(seq)
	if found {
		i++
	}
	if i == len(n.win) {
		return -1
	}
	return i
}

// emit hands a complete slice to the player. It reports false, counting
// the slice lost, when its chunks do not merge (an origin bug).
func (n *Node) emit(now instant, sl *slot, playAt instant) bool {
	p := &n.play
	p.next = sl.seq + 1
	p.stalled = false
	p.pending = false
	if err := wire.CheckMerge(sl.chunks); err != nil {
		n.stats.LostSlices++
		p.disc = true
		return false
	}
	var packets []wire.Packet
	if !n.cfg.NoMerge {
		packets, _ = wire.AppendMerge(n.ready.packets, sl.chunks)
		n.ready.packets = nil
	}
	var params []wire.Param
	for _, c := range sl.chunks {
		if len(c.Params) > 0 {
			params = c.Params
			break
		}
	}
	for _, c := range sl.chunks {
		for i := range c.Packets {
			n.stats.PlayerBytes += uint64(len(c.Packets[i].RTP))
		}
	}
	r := n.out()
	from := len(r.chunks)
	r.chunks = append(r.chunks, sl.chunks...)
	r.Play = append(r.Play, Slice{
		Seq:           sl.seq,
		Capture:       sl.capture.Time(),
		Duration:      sl.duration,
		Keyframe:      sl.keyframe,
		Params:        params,
		Packets:       packets,
		Chunks:        r.chunks[from:len(r.chunks):len(r.chunks)],
		PlayAt:        playAt.Time(),
		Done:          sl.doneAt.Time(),
		Discontinuity: p.disc,
	})
	p.disc = false
	if !p.emitted {
		p.emitted = true
		n.stats.StartupDelay = now.Sub(n.firstAt)
	}
	return true
}
