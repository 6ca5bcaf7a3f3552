package swarm

import (
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
func (n *Node) checkParents(now time.Time) time.Time {
	var next time.Time
	for s := range n.stripes {
		st := &n.stripes[s]
		if st.parent == "" || (s > 0 && n.stripes[s-1].parent == st.parent) {
			continue // none, or judged with the previous stripe
		}
		var t time.Time
		switch {
		case !st.up:
			t = st.since.Add(n.cfg.ParentConnectTimeout)
		case !n.seen:
			continue // nothing flows yet: silence proves nothing
		default:
			t = st.since.Add(n.cfg.ParentTimeout)
			newest, ok := n.parentNewest(st.parent)
			if ok && newest >= n.newestSeq {
				// No newer slice elsewhere: wait until the next slice
				// is predicted to have arrived.
				if !n.play.started {
					continue
				}
				c, ok := n.captureOf(newest + 1)
				if !ok {
					continue
				}
				if arrive := c.Add(n.play.skew); arrive.After(t) {
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

// parentNewest returns the highest seq received on the stripes parent
// feeds; ok is false when none received anything.
func (n *Node) parentNewest(parent NodeID) (newest uint64, ok bool) {
	for s := range n.stripes {
		if st := &n.stripes[s]; st.parent == parent && st.seen {
			newest, ok = max(newest, st.newest), true
		}
	}
	return newest, ok
}

// eagerFrom returns from when the missing chunks of stripe s are fetched
// as soon as their slice should exist rather than FetchMargin before it
// is due: at once when the stripe has no parent or its parent is not up
// yet, else once the parent has been silent for half of ParentTimeout
// (so a node whose parent died forwards fetched chunks to its children
// before they could find it silent for ParentTimeout).
func (n *Node) eagerFrom(s int) time.Time {
	st := &n.stripes[s]
	if st.parent == "" || !st.up {
		return time.Time{}
	}
	return st.since.Add(n.cfg.ParentTimeout / 2)
}

// scanFetches queues fetches to the origin for the chunks the node is
// waiting for and will not get in time otherwise, and returns when it
// next needs to look.
//
// Before anything arrived, a stripe without a parent that is up asks the
// origin for slice 0 — the newest keyframe slice it holds (see
// NewestKeyframe) — once ParentConnectTimeout has passed since the
// node's first input, so a node the tracker could not place still plays.
// Once playout runs, a missing chunk of a slice from the next one to
// play up to a few past the newest seen is fetched FetchMargin before
// its slice is due; on a stripe without a parent that is up, or whose
// parent has been silent for half of ParentTimeout, as soon as its slice
// is predicted to exist. Before playout starts (no skew yet), the
// missing chunks of the slices from the newest keyframe held on are
// fetched once ParentTimeout has passed since that slice's first chunk
// arrived — a push that late is not coming, and without them a node
// with a lossy or missing parent would never start — and at once on a
// stripe without a parent that is up. Each chunk is asked at most once
// per FetchRetry, at most MaxFetches at once.
func (n *Node) scanFetches(now time.Time) time.Time {
	for id, at := range n.fetching { // deletes only: order does not matter
		if !at.Add(n.cfg.FetchRetry).After(now) {
			delete(n.fetching, id)
		}
	}
	if n.cfg.MaxFetches == 0 {
		return time.Time{}
	}
	var next time.Time
	blocked := false
	consider := func(id wire.ID, at time.Time) {
		if asked, ok := n.fetching[id]; ok {
			next = earliest(next, asked.Add(n.cfg.FetchRetry))
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
		n.fetching[id] = now
		n.ready.Fetches = append(n.ready.Fetches, id)
		n.stats.Fetches++
		next = earliest(next, now.Add(n.cfg.FetchRetry))
	}

	cutoff := n.newestCap.Add(-n.cfg.Window)
	switch {
	case !n.seen:
		at := n.startAt.Add(n.cfg.ParentConnectTimeout)
		for s := range n.stripes {
			if st := &n.stripes[s]; st.parent == "" || !st.up {
				consider(wire.ID{Seq: 0, Stripe: uint8(s)}, at)
			}
		}
	case n.play.started:
		var eagerBuf [wire.MaxStripes]time.Time
		eager := eagerBuf[:n.k]
		for s := range eager {
			eager[s] = n.eagerFrom(s)
		}
		lo := n.play.next
		hi := max(n.newestSeq, lo) + fetchAhead
		for seq := lo; seq <= hi && seq-lo < maxFetchScan; seq++ {
			c, ok := n.captureOf(seq)
			if !ok || c.Before(cutoff) {
				continue
			}
			margin := c.Add(n.play.skew + n.cfg.PlayoutDelay - n.cfg.FetchMargin)
			exists := c.Add(n.play.skew)
			sl := n.slots[seq]
			for s := 0; s < n.k; s++ {
				if sl != nil && sl.chunks[s] != nil {
					continue
				}
				at := margin
				e := exists
				if eager[s].After(e) {
					e = eager[s]
				}
				if e.Before(at) {
					at = e
				}
				consider(wire.ID{Seq: seq, Stripe: uint8(s)}, at)
			}
		}
	default:
		kf := n.newestKeyframe()
		if kf == nil {
			break
		}
		for seq := kf.seq; seq <= n.newestSeq && seq-kf.seq < maxFetchScan; seq++ {
			sl := n.slots[seq]
			for s := 0; s < n.k; s++ {
				if sl != nil && sl.chunks[s] != nil {
					continue
				}
				at := kf.firstAt.Add(n.cfg.ParentTimeout)
				if st := &n.stripes[s]; st.parent == "" || !st.up {
					at = kf.firstAt
				}
				consider(wire.ID{Seq: seq, Stripe: uint8(s)}, at)
			}
		}
	}
	if blocked {
		for _, asked := range n.fetching { // a minimum: order does not matter
			next = earliest(next, asked.Add(n.cfg.FetchRetry))
		}
	}
	return next
}

// newestKeyframe returns the newest keyframe slice held, or nil.
func (n *Node) newestKeyframe() *slot {
	for i := len(n.seqs) - 1; i >= 0; i-- {
		if sl := n.slots[n.seqs[i]]; sl.keyframe {
			return sl
		}
	}
	return nil
}
