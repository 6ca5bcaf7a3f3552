package swarm

import (
	"slices"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// fetchAhead is how many slices past the newest seen the node predicts
// and may fetch.
const fetchAhead = 4

// maxFetchScan bounds the slices scanned for fetches in one step.
const maxFetchScan = 256

// checkParents loses the parents that failed: one not up
// ParentConnectTimeout after SetParent named it, or one up that sent no
// chunk on any of its stripes for ParentTimeout while the node has newer
// slices than it got on those stripes or predicts that their next slice
// should have arrived. Liveness is judged per parent, so a parent that
// forwards anything — even chunks it fetched from the origin after its
// own parent failed — is alive; a stripe of a live parent that lags is
// repaired by fetching. It returns the next time a parent may fail.
func (n *Node) checkParents(now instant) instant {
	var next instant
	// The newest seq of each parent group, gathered in one pass when a
	// stripe first needs it (it runs at every step).
	var newest [wire.MaxStripes]uint64
	var got [wire.MaxStripes]bool
	gathered := false
	// The groups mostly share their newest seq: the capture after it is
	// looked up once for them all.
	var capSeq uint64
	var capAt instant
	capOK, capped := false, false
	for s := range n.stripes {
		st := &n.stripes[s]
		if st.group != uint8(s) {
			continue // none, or judged with an earlier stripe
		}
		var t instant
		switch {
		case !st.up:
			t = st.since.Add(n.cfg.ParentConnectTimeout)
		case !n.seen:
			continue // nothing flows yet: silence proves nothing
		default:
			t = st.since.Add(n.cfg.ParentTimeout)
			// Silent, while others were heard well after it went
			// quiet: a node whose own link is clogged hears nobody and
			// blames no parent.
			if sl := n.silenceLimit(); sl > 0 && n.heardAny.Sub(st.heardAt) >= sl/2 {
				t = earliest(t, st.heardAt.Add(sl))
			}
			if !gathered {
				newest, got = n.groupsNewest()
				gathered = true
			}
			if g := st.group; got[g] && newest[g] >= n.newestSeq {
				// No newer slice elsewhere: wait until the next slice
				// is predicted to have arrived.
				if !n.play.started {
					continue
				}
				if !capped || capSeq != newest[g]+1 {
					capSeq, capped = newest[g]+1, true
					capAt, capOK = n.captureOf(capSeq)
				}
				if !capOK {
					continue
				}
				if arrive := capAt.Add(n.play.skew); arrive.After(t) {
					t = arrive
				}
			}
		}
		if !t.After(now) {
			n.loseParent(now, st.parent)
			continue
		}
		next = earliest(next, t)
	}
	return next
}

// silenceLimit is how long a parent that is up may send nothing at all —
// no chunk, no Alive — before it is lost while the stream evidently goes
// on (0: no such limit, when Alives are off). A live parent sends its
// child a chunk or, once the child's stripes had nothing new for
// AliveInterval, an Alive: a starved parent keeps sending Alives, and a
// congested one's chunks keep arriving, late; only a dead one (crashed,
// or cut off) goes silent. So a crash is found after a few Alive
// intervals rather than after ParentTimeout, which stays the limit for a
// parent that is heard but does not move (see heardStuck). Only while
// others were heard at least half of it after the parent went quiet
// (other parents' chunks, Alives, pulled or fetched chunks): when
// nothing reaches the node at all, its own link may be the one that is
// clogged, and ParentTimeout applies. (Without that, 2,000 simulated
// peers under churn whose download links queued a second of chunks lost
// every parent in turn: continuity 0.41.) Parents and children run the
// same AliveInterval.
func (n *Node) silenceLimit() time.Duration {
	if n.cfg.AliveInterval <= 0 {
		return 0
	}
	return silenceAlives * n.cfg.AliveInterval
}

// silenceAlives is silenceLimit in Alive intervals.
const silenceAlives = 4

// groupsNewest returns, by parent group (the first stripe one parent
// feeds), the highest seq received on the group's stripes; got[g] is
// false when none of them received anything.
func (n *Node) groupsNewest() (newest [wire.MaxStripes]uint64, got [wire.MaxStripes]bool) {
	for s := range n.stripes {
		if st := &n.stripes[s]; st.seen && st.group != noGroup {
			newest[st.group], got[st.group] = max(newest[st.group], st.newest), true
		}
	}
	return newest, got
}

// keepaliveDue reports whether stripe s's parent is up, silent for half
// of ParentTimeout and owed a keepalive fetch now; when not, next is
// when it may be (zero: not while nothing changes).
//
// A node whose parent went quiet fetches, every half ParentTimeout, the
// oldest chunk of that parent's stripes that should have arrived: it
// needs it anyway (it would fetch it at the margin), and it forwards it,
// so its own children keep hearing from it and do not find it silent
// for ParentTimeout while it repairs — the lost-parent cascade. Its
// children, which see the same silence, fetch at most one such chunk
// per half ParentTimeout themselves until the forwarded ones arrive. A
// node without children has nobody to keep waiting and does not.
func (n *Node) keepaliveDue(now instant, s int) (due bool, next instant) {
	st := &n.stripes[s]
	if st.parent == "" || !st.up || len(n.children) == 0 {
		return false, 0 // a leaf keeps nobody waiting
	}
	at := st.since.Add(n.cfg.ParentTimeout / 2)
	if st.keepAt.After(at) {
		at = st.keepAt
	}
	if at.After(now) {
		return false, at
	}
	return true, 0
}

// keptAlive records a keepalive fetch for parent's stripes.
func (n *Node) keptAlive(now instant, parent NodeID) {
	for s := range n.stripes {
		if st := &n.stripes[s]; st.parent == parent {
			st.keepAt = now.Add(n.cfg.ParentTimeout / 2)
		}
	}
}

// scanFetches queues fetches to the origin for the chunks the node is
// waiting for and will not get in time otherwise, and returns when it
// next needs to look.
//
// Before anything arrived, a stripe without a parent asks the origin for
// slice 0 — the newest keyframe slice it holds (see NewestKeyframe) —
// once ParentConnectTimeout has passed since the node's first input, so
// a node the tracker could not place still plays. Once playout runs, a
// missing chunk of a slice from the next one to play up to a few past
// the newest seen is fetched FetchMargin before its slice is due; on a
// stripe without a parent, as soon as its slice is predicted to exist;
// and one chunk per half ParentTimeout of the stripes of a parent that is
// up but quiet (see keepaliveDue). Before playout starts
// (no skew yet), the missing chunks of the slices from the newest
// keyframe held on are fetched once ParentTimeout (StartFetch for the
// start picture: the keyframe slice and its continuations) has passed
// since that slice's first chunk arrived — a push that late is not
// coming, and
// without them a node with a lossy or missing parent would never start —
// and at once on a stripe without a parent. Each chunk is asked at most
// once per FetchRetry, at most MaxFetches at once.
func (n *Node) scanFetches(now instant) instant {
	n.fetching = slices.DeleteFunc(n.fetching, func(f fetch) bool { return !f.at.Add(n.cfg.FetchRetry).After(now) })
	if n.cfg.MaxFetches == 0 {
		return 0
	}
	var next instant
	blocked := false
	consider := func(id wire.ID, at, due instant) {
		if i := n.fetchIndex(id); i >= 0 {
			next = earliest(next, n.fetching[i].at.Add(n.cfg.FetchRetry))
			return
		}
		if at.After(now) {
			next = earliest(next, at)
			return
		}
		if len(n.fetching) >= n.cfg.MaxFetches {
			blocked = true
			return
		}
		n.fetching = append(n.fetching, fetch{id, now})
		r := n.out()
		r.Fetches = append(r.Fetches, id)
		r.FetchDue = append(r.FetchDue, due.Time())
		n.stats.Fetches++
		next = earliest(next, now.Add(n.cfg.FetchRetry))
	}

	cutoff := n.newestCap.Add(-n.cfg.Window)
	switch {
	case !n.seen:
		at := n.startAt.Add(n.cfg.ParentConnectTimeout)
		for s := range n.stripes {
			if n.stripes[s].parent == "" {
				consider(wire.ID{Seq: 0, Stripe: uint8(s)}, at, 0)
			}
		}
	case n.play.started:
		var keep [wire.MaxStripes]bool
		for s := range n.k {
			var at instant
			keep[s], at = n.keepaliveDue(now, s)
			next = earliest(next, at)
		}
		// Each stripe's pushing state, read once per scan (see later).
		var push [wire.MaxStripes]pushState
		for s := range n.k {
			push[s] = n.pushing(now, s)
		}
		lo := n.play.next
		hi := max(n.newestSeq, lo) + fetchAhead
		// The slices past the newest are predicted, held by nobody yet:
		// every chunk of one is asked for, and names a time, no earlier
		// than the slice's bound below (when it exists, or its margin),
		// except for the retries of fetches in flight and a pushing
		// stripe's end. Predicted captures grow with the seq, so once a
		// slice's bound is past now and past next, and neither of those
		// could come before next, the slices after it change nothing:
		// the walk stops there.
		var fetchedTo uint64 // the highest seq fetched, plus one; 0: none
		for i := range n.fetching {
			fetchedTo = max(fetchedTo, n.fetching[i].id.Seq+1)
		}
		var ends instant // the earliest pushing stripe's end (see later)
		for s := range n.k {
			if push[s].ok {
				ends = earliest(ends, push[s].until.Add(1))
			}
		}
		pushedShift := min(0, n.cfg.FetchMargin-n.cfg.PushedMargin)
		// Walk the held seqs alongside: captures of slices not held are
		// predicted as captureOf does, from the nearest held slice below
		// (else above), without a lookup per seq.
		start, j := n.skipDone(lo) // complete slices: nothing to fetch
		below := j - 1             // index of the nearest held slot below seq; -1: none
		full := n.full()
		for seq := start; seq <= hi && seq-lo < maxFetchScan; seq++ {
			held := -1 // index of seq's slot; -1: not held
			if j < len(n.idx) && n.idx[j].seq == seq {
				held, below = j, j
				j++
				if n.idx[held].held == full {
					continue // complete: nothing to fetch
				}
			}
			var c instant
			if held >= 0 {
				c = n.idx[held].captureTime()
			} else if p, ok := n.predictCapture(seq, below, j); ok {
				c = p
			} else {
				continue
			}
			if c.Before(cutoff) {
				continue
			}
			due := c.Add(n.play.skew + n.cfg.PlayoutDelay)
			margin := due.Add(-n.cfg.FetchMargin)
			exists := c.Add(n.play.skew)
			if !n.uncached && held < 0 && seq > n.newestSeq && seq >= fetchedTo && !next.IsZero() && (ends.IsZero() || !ends.Before(next)) {
				if bound := min(exists, margin, margin.Add(pushedShift)); bound.After(now) && !bound.Before(next) {
					break
				}
			}
			var have uint16
			if held >= 0 {
				have = n.idx[held].held
			}
			for s := 0; s < n.k; s++ {
				if have&(1<<s) != 0 {
					continue
				}
				id := wire.ID{Seq: seq, Stripe: uint8(s)}
				at := margin
				switch {
				case n.stripes[s].parent == "":
					// At once, unless a partner was asked: the origin is
					// then asked when it answers Missing or not in time,
					// or at the margin. (Waiting for the origin while a
					// partner's map is merely fresh cost the scarce-upload
					// test 0.946 continuity against 0.99.)
					if exists.Before(at) && !n.pulling(id) {
						at = exists
					}
				case keep[s] && exists.After(now):
					next = earliest(next, exists) // a keepalive then
				case keep[s]:
					// The keepalive: this chunk now (or the one in
					// flight), then none for half ParentTimeout.
					at = now
					parent := n.stripes[s].parent
					n.keptAlive(now, parent)
					for o := range n.k {
						if n.stripes[o].parent == parent {
							keep[o] = false
						}
					}
				default:
					// At the margin — a later one while the parent is
					// still pushing the stripe (see pushing) — unless a
					// partner was asked for it just before (see
					// scanPulls): then when it answers Missing, or
					// pullPatience after the pull.
					at = push[s].later(n, now, seq, at, &next)
					if pa, ok := n.pulledAt(id); ok && pa.Add(pullPatience).After(at) {
						at = pa.Add(pullPatience)
					}
				}
				consider(id, at, due)
			}
		}
	default:
		kf := n.newestKeyframe()
		if kf == nil {
			break
		}
		end := n.groupEnd(kf)
		for seq := kf.seq; seq <= max(n.newestSeq, end) && seq-kf.seq < maxFetchScan; seq++ {
			sl := n.slot(seq)
			for s := 0; s < n.k; s++ {
				if sl != nil && sl.chunks[s] != nil {
					continue
				}
				at := kf.firstAt.Add(n.cfg.ParentTimeout)
				if seq <= end {
					at = kf.firstAt.Add(n.cfg.StartFetch) // the start picture itself
				}
				if seq > kf.seq && seq <= end && n.passed(s, seq) {
					at = now // the rest of the start's picture, which its parent went past
				}
				if n.stripes[s].parent == "" {
					at = kf.firstAt
				}
				id := wire.ID{Seq: seq, Stripe: uint8(s)}
				if pa, ok := n.pulledAt(id); ok && pa.Add(pullPatience).After(at) {
					at = pa.Add(pullPatience) // a partner was asked (scanStartPulls)
				}
				consider(id, at, 0) // not playing: no deadline yet
			}
		}
	}
	if blocked {
		for _, f := range n.fetching {
			next = earliest(next, f.at.Add(n.cfg.FetchRetry))
		}
	}
	return next
}

// pushing reports, for stripe s, which chunks its parent is evidently
// still pushing the stripe towards, and until when it counts as such:
// the parent is up, pushed a chunk of the stripe within the last
// pushedSlices slice durations, and the chunks are those after the
// newest it pushed. Its chunks go out in order over one stream, so such
// a chunk is then most likely queued at it and comes moments later: the
// node asks the origin for it at PushedMargin rather than FetchMargin
// while the stripe keeps flowing, and at once when it stops. Measured in
// the simulator (2,000 peers joining in 10 s, 60 s, seed 1): 89 % of the
// origin's fetch answers were chunks the node held by then, 79 % of
// those while its parent held them when the fetch went out, the other
// copy arriving a median 51 ms after the fetch; the origin's fetch
// budget, booked with them, refused three fetches for every one it
// answered. The answer holds for every seq at once, so a scan asks once
// per stripe (scanPulls).
func (n *Node) pushing(now instant, s int) pushState {
	st := &n.stripes[s]
	if st.parent == "" || !st.up || st.pushAt.IsZero() || st.pushSeq == ^uint64(0) {
		return pushState{}
	}
	until := st.pushAt.Add(pushedSlices * n.cfg.SliceDuration)
	return pushState{from: st.pushSeq + 1, until: until, ok: !now.After(until)}
}

// pushState is pushing's answer: with ok, the parent counts as pushing
// the chunks from seq from on until until; without, none.
type pushState struct {
	from  uint64
	until instant
	ok    bool
}

// later returns t, the time chunk seq of a stripe whose pushing state
// is p is due to be asked for at FetchMargin, moved to PushedMargin
// while the stripe's parent is still pushing it (see pushing); while
// that time is ahead, *next is brought forward to when the stripe stops
// counting as flowing, so the chunk is asked for at once then.
func (p pushState) later(n *Node, now instant, seq uint64, t instant, next *instant) instant {
	if p.ok && seq >= p.from {
		t = t.Add(n.cfg.FetchMargin - n.cfg.PushedMargin)
		if t.After(now) {
			*next = earliest(*next, p.until.Add(1))
		}
	}
	return t
}

// pushedSlices: see pushing.
const pushedSlices = 2

// newestKeyframe returns the newest keyframe slice held, or nil.
func (n *Node) newestKeyframe() *slot {
	for i := len(n.win) - 1; i >= 0; i-- {
		if sl := n.win[i]; sl.keyframe {
			return sl
		}
	}
	return nil
}

// fetch is an outstanding fetch: a chunk asked of the origin, and when.
type fetch struct {
	id wire.ID
	at instant
}

// fetchIndex returns the index of id in n.fetching, or -1. There are at
// most MaxFetches, and usually none or a few.
func (n *Node) fetchIndex(id wire.ID) int {
	for i := range n.fetching {
		if n.fetching[i].id == id {
			return i
		}
	}
	return -1
}

// unfetch drops id from the outstanding fetches and reports whether it
// was one.
func (n *Node) unfetch(id wire.ID) bool {
	i := n.fetchIndex(id)
	if i < 0 {
		return false
	}
	n.fetching = slices.Delete(n.fetching, i, i+1)
	return true
}

// unfetchSeq drops the outstanding fetches of slice seq.
func (n *Node) unfetchSeq(seq uint64) {
	n.fetching = slices.DeleteFunc(n.fetching, func(f fetch) bool { return f.id.Seq == seq })
}
