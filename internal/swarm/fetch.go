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

// checkParents loses the parents that went silent: no chunk of their
// stripe for ParentTimeout while the node has newer slices on other
// stripes or predicts that the stripe's next slice should have arrived.
// It returns the next time a parent may time out.
func (n *Node) checkParents(now time.Time) time.Time {
	var next time.Time
	if !n.seen {
		return next // nothing flows yet: silence proves nothing
	}
	for s := range n.stripes {
		st := &n.stripes[s]
		if st.parent == "" {
			continue
		}
		t := st.since.Add(n.cfg.ParentTimeout)
		if st.seen && st.newest >= n.newestSeq {
			// No newer slice elsewhere: wait until the stripe's next
			// slice is predicted to have arrived.
			if !n.play.started {
				continue
			}
			c, ok := n.captureOf(st.newest + 1)
			if !ok {
				continue
			}
			if arrive := c.Add(n.play.skew); arrive.After(t) {
				t = arrive
			}
		}
		if !t.After(now) {
			n.lose(now, s)
			continue
		}
		next = earliest(next, t)
	}
	return next
}

// scanFetches queues fetches to the origin for the chunks the node is
// waiting for and will not get in time otherwise, and returns when it
// next needs to look.
//
// Once playout runs, a missing chunk of a slice from the next one to
// play up to a few past the newest seen is fetched FetchMargin before
// its slice is due; on a stripe without a parent, as soon as its slice
// is predicted to exist. Before playout starts (no skew yet), the
// missing chunks of the slices from the newest keyframe held on are
// fetched once ParentTimeout has passed since that slice's first chunk
// arrived — a push that late is not coming, and without them a node
// with a lossy or missing parent would never start. Each chunk is asked
// at most once per FetchRetry, at most MaxFetches at once.
func (n *Node) scanFetches(now time.Time) time.Time {
	for id, at := range n.fetching { // deletes only: order does not matter
		if !at.Add(n.cfg.FetchRetry).After(now) {
			delete(n.fetching, id)
		}
	}
	if !n.seen || n.cfg.MaxFetches == 0 {
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
	if n.play.started {
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
				if n.stripes[s].parent == "" && exists.Before(at) {
					at = exists
				}
				consider(wire.ID{Seq: seq, Stripe: uint8(s)}, at)
			}
		}
	} else if kf := n.newestKeyframe(); kf != nil {
		at := kf.firstAt.Add(n.cfg.ParentTimeout)
		for seq := kf.seq; seq <= n.newestSeq && seq-kf.seq < maxFetchScan; seq++ {
			sl := n.slots[seq]
			for s := 0; s < n.k; s++ {
				if sl != nil && sl.chunks[s] != nil {
					continue
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
