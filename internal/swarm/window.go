package swarm

import (
	"slices"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// maxRepairTimes bounds Stats.RepairTimes.
const maxRepairTimes = 1024

// maxGap bounds the slice counts used in capture predictions, so a jump
// in sequence numbers cannot overflow a time.Duration.
const maxGap = 1 << 24

// slot is one slice's chunks held in the window.
type slot struct {
	seq      uint64
	capture  time.Time
	duration time.Duration
	keyframe bool
	chunks   []*wire.Chunk // by stripe; nil = not held
	raws     [][]byte      // encodings, by stripe
	have     int           // chunks held
	fetched  uint16        // stripes whose chunk came by an origin fetch
	firstAt  time.Time     // when its first chunk arrived
	doneAt   time.Time     // when its last chunk arrived; zero until complete
}

// maxSlots bounds the slots held even when captures do not advance.
func (n *Node) maxSlots() int {
	return int(4*n.cfg.Window/n.cfg.SliceDuration) + 64
}

// stale reports whether a chunk of slice seq captured at capture is too
// old to be of use: outside the window, or already passed by playout.
func (n *Node) stale(seq uint64, capture time.Time) bool {
	if n.seen && capture.Before(n.newestCap.Add(-n.cfg.Window)) {
		return true
	}
	return n.play.started && seq < n.play.next
}

// accept stores a new, verified chunk and forwards it. counted says
// whether its bytes count as received (false for Publish).
func (n *Node) accept(now time.Time, from NodeID, c *wire.Chunk, raw []byte, counted bool) {
	capture := time.Unix(0, c.Capture)
	s := int(c.Stripe)
	sl := n.slots[c.Seq]
	if sl != nil && sl.chunks[s] != nil {
		n.judgeLag(now, from, sl, s)
		n.duplicate(now, from)
		return
	}
	if n.stale(c.Seq, capture) {
		return
	}
	if sl == nil {
		sl = &slot{
			seq:      c.Seq,
			capture:  capture,
			duration: time.Duration(c.Duration) * time.Microsecond,
			keyframe: c.Keyframe,
			chunks:   make([]*wire.Chunk, n.k),
			raws:     make([][]byte, n.k),
			firstAt:  now,
		}
		n.slots[c.Seq] = sl
		n.gen++
		i, _ := slices.BinarySearch(n.seqs, c.Seq)
		n.seqs = slices.Insert(n.seqs, i, c.Seq)
	}
	sl.chunks[s] = c
	sl.raws[s] = raw
	sl.have++
	if sl.have == n.k {
		sl.doneAt = now
	}
	if counted {
		if from != "" && from == n.cfg.Origin {
			n.stats.OriginBytesIn += uint64(len(raw))
		} else {
			n.stats.P2PBytesIn += uint64(len(raw))
		}
	}
	if !n.seen {
		n.seen = true
		n.firstAt = now
		n.newestSeq = c.Seq
		n.newestCap = capture
	}
	n.newestSeq = max(n.newestSeq, c.Seq)
	if capture.After(n.newestCap) {
		n.newestCap = capture
	}

	n.heard(now, from)
	st := &n.stripes[s]
	if !st.seen || c.Seq > st.newest {
		st.newest, st.seen = c.Seq, true
	}
	if !st.lostAt.IsZero() {
		n.stats.Repairs++
		n.stats.RepairTimes = append(n.stats.RepairTimes, now.Sub(st.lostAt))
		if over := len(n.stats.RepairTimes) - maxRepairTimes; over > 0 {
			n.stats.RepairTimes = slices.Delete(n.stats.RepairTimes, 0, over)
		}
		st.lostAt = time.Time{}
	}
	n.judgeLag(now, from, sl, s)
	if _, ok := n.fetching[c.ID()]; ok {
		sl.fetched |= 1 << s
		delete(n.fetching, c.ID())
		n.gen++ // a fetch slot is free
	}

	for _, ch := range n.children {
		n.sendTo(ch, sl, s, from)
	}
	if sl.have == n.k && sl.keyframe && !n.cfg.Source && !n.play.started {
		n.startPlayout(sl)
	}
	n.evict()
}

// duplicate handles a second copy of a held chunk.
func (n *Node) duplicate(now time.Time, from NodeID) {
	n.stats.Duplicates++
	n.heard(now, from) // the parent is alive, if slow
}

// sendTo queues stripe s of sl for ch unless ch is not subscribed to it
// or already has it. A chunk is never sent back to the node it came from.
func (n *Node) sendTo(ch *child, sl *slot, s int, from NodeID) {
	bit := uint16(1) << s
	if ch.mask&bit == 0 || ch.sent[sl.seq]&bit != 0 {
		return
	}
	ch.sent[sl.seq] |= bit
	if ch.id == from && from != "" {
		return
	}
	raw := sl.raws[s]
	n.ready.Sends = append(n.ready.Sends, Send{To: ch.id, ID: wire.ID{Seq: sl.seq, Stripe: uint8(s)}, Chunk: raw})
	n.stats.BytesForwarded += uint64(len(raw))
}

// evict drops the slots that fell out of the window.
func (n *Node) evict() {
	cutoff := n.newestCap.Add(-n.cfg.Window)
	limit := n.maxSlots()
	i := 0
	for ; i < len(n.seqs); i++ {
		sl := n.slots[n.seqs[i]]
		if !sl.capture.Before(cutoff) && len(n.seqs)-i <= limit {
			break
		}
		delete(n.slots, sl.seq)
		for _, ch := range n.children {
			delete(ch.sent, sl.seq)
		}
		for s := 0; s < n.k; s++ {
			delete(n.fetching, wire.ID{Seq: sl.seq, Stripe: uint8(s)})
		}
		n.gen++
	}
	if i > 0 {
		n.seqs = slices.Delete(n.seqs, 0, i)
	}
}

// captureOf returns the capture time of slice seq: its own when held,
// else predicted from the nearest held slice below it (or above it) at
// one SliceDuration per slice. ok is false when nothing is held.
func (n *Node) captureOf(seq uint64) (t time.Time, ok bool) {
	if sl := n.slots[seq]; sl != nil {
		return sl.capture, true
	}
	i, _ := slices.BinarySearch(n.seqs, seq)
	if i > 0 {
		b := n.slots[n.seqs[i-1]]
		return b.capture.Add(time.Duration(min(seq-b.seq, maxGap)) * n.cfg.SliceDuration), true
	}
	if i < len(n.seqs) {
		a := n.slots[n.seqs[i]]
		return a.capture.Add(-time.Duration(min(a.seq-seq, maxGap)) * n.cfg.SliceDuration), true
	}
	return time.Time{}, false
}

// lagCount is a parent's run of late slices.
type lagCount struct {
	slices  int    // slices in a row it delivered late
	lastSeq uint64 // the last of them
}

// judgeLag counts the slices whose chunk of stripe s from, the stripe's
// parent, delivers after the node fetched it from the origin (sl holds the
// chunk already); Config.LagSlices of them in a row lose the parent. A
// chunk in time resets the count. The origin is never judged.
func (n *Node) judgeLag(now time.Time, from NodeID, sl *slot, s int) {
	if n.cfg.LagSlices == 0 || from == "" || from == n.cfg.Origin || n.stripes[s].parent != from {
		return
	}
	if sl.chunks[s] == nil || sl.fetched&(1<<s) == 0 {
		delete(n.late, from) // in time (or a copy that was not fetched)
		return
	}
	if n.late == nil {
		n.late = make(map[NodeID]lagCount)
	}
	lc := n.late[from]
	if lc.slices > 0 && lc.lastSeq == sl.seq {
		return // this slice is counted
	}
	lc.slices++
	lc.lastSeq = sl.seq
	n.late[from] = lc
	if lc.slices >= n.cfg.LagSlices {
		delete(n.late, from)
		n.stats.LaggingParents++
		n.loseParent(now, from)
	}
}
