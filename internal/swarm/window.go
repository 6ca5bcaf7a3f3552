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
	capture  instant
	duration time.Duration
	keyframe bool
	chunks   []*wire.Chunk // by stripe; nil = not held
	raws     [][]byte      // encodings, by stripe
	have     int           // chunks held
	fetched  uint16        // stripes whose chunk came by an origin fetch
	firstAt  instant       // when its first chunk arrived
	doneAt   instant       // when its last chunk arrived; zero until complete
	// asked: stripes whose chunk came in answer to a fetch or a pull;
	// pushAt: when the last of the others arrived (zero: none yet). See
	// catchUp.
	asked  uint16
	pushAt instant
	// sent: by child index (child.ci), the stripes of this slice already
	// queued for that child; shorter than a child's index means none.
	sent []uint16
}

// entry indexes one held slot in Node.idx: what the fetch scan, the
// playout clock and lookups read, kept apart from the slots so that they
// touch a slot only when they need its chunks.
type entry struct {
	seq     uint64
	capture int64   // the slot's capture, Unix ns (as in its chunks)
	done    instant // the slot's doneAt (playout reads it here)
	held    uint16  // stripes held
	dur     uint32  // the slot's duration, µs (as in its chunks): the next slice's capture is capture + dur
}

// captureTime is the entry's capture time, equal to its slot's capture.
func (e *entry) captureTime() instant { return instant(e.capture) }

// full is the mask of all stripes held.
func (n *Node) full() uint16 { return uint16(1)<<n.k - 1 }

// sameID is a == b, settling the usual unequal pair by their last bytes
// before comparing whole strings.
func sameID(a, b NodeID) bool {
	return len(a) == len(b) && (len(a) == 0 || a[len(a)-1] == b[len(b)-1]) && a == b
}

// idTag is a word of id — its last 8 bytes — that lookups compare
// before the whole ID: unequal tags prove the IDs unequal without
// reading the other ID's bytes (a cache miss of its own at 10,000
// simulated peers), and the IDs, fingerprints in hex, rarely share
// their last 8 bytes.
func idTag(id NodeID) uint64 {
	var t uint64
	for i := max(0, len(id)-8); i < len(id); i++ {
		t = t<<8 | uint64(id[i])
	}
	return t
}

// maxSpare bounds the evicted slots kept for reuse.
const maxSpare = 4

// find returns the index in n.win of slice seq, or where it would be
// inserted. The window is usually a run of consecutive seqs, so the
// offset from the first one is tried before a binary search.
func (n *Node) find(seq uint64) (int, bool) {
	w := n.idx
	if len(w) == 0 || seq < w[0].seq {
		return 0, false
	}
	if seq > w[len(w)-1].seq {
		return len(w), false
	}
	if d := seq - w[0].seq; d < uint64(len(w)) && w[d].seq == seq {
		return int(d), true
	}
	lo, hi := 0, len(w)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if w[m].seq < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(w) && w[lo].seq == seq
}

// skipDone returns the first seq from lo on that the node does not hold
// complete, and its index in n.idx (where it would be, if not held): the
// fetch and pull scans start there, as their walks pass complete slices
// by. It keeps the run of complete slices it found (doneFrom to doneTo)
// for the next scans, which start at the same slice or a later one: a
// held chunk stays held and only the oldest slices leave the window
// (evict), so the run holds for every start from doneFrom on, and from
// the oldest slice held on.
func (n *Node) skipDone(lo uint64) (uint64, int) {
	seq := lo
	if !n.uncached && n.doneFrom <= lo && lo <= n.doneTo && len(n.idx) > 0 && n.idx[0].seq <= lo {
		seq = n.doneTo
	}
	j, _ := n.find(seq)
	full := n.full()
	for j < len(n.idx) && n.idx[j].seq == seq && n.idx[j].held == full {
		seq, j = seq+1, j+1
	}
	n.doneFrom, n.doneTo = lo, seq
	return seq, j
}

// slot returns the held slot of slice seq, or nil.
func (n *Node) slot(seq uint64) *slot {
	if i, ok := n.find(seq); ok {
		return n.win[i]
	}
	return nil
}

// newSlot returns an empty slot, reusing an evicted one when it can. A
// reused slot is cleared here, not when it was evicted (release): the
// evicted slot is long out of the cache, and clearing it then cost a
// miss of its own besides the one its reuse takes.
func (n *Node) newSlot() *slot {
	if n.nSpare > 0 {
		n.nSpare--
		sl := n.spare[n.nSpare]
		n.spare[n.nSpare] = nil
		clear(sl.chunks)
		clear(sl.raws)
		*sl = slot{chunks: sl.chunks, raws: sl.raws, sent: sl.sent[:0]}
		return sl
	}
	if n.k <= smallK {
		// One allocation: the slot and its stripes side by side.
		s := &smallSlot{}
		s.slot.chunks, s.slot.raws, s.slot.sent = s.chunks[:n.k], s.raws[:n.k], s.sent[:0]
		return &s.slot
	}
	return &slot{chunks: make([]*wire.Chunk, n.k), raws: make([][]byte, n.k)}
}

// smallK is the most stripes a smallSlot holds.
const smallK = 4

// smallSlot is a slot with room for up to smallK stripes and the sent
// masks of smallSent children in the same allocation.
type smallSlot struct {
	slot   slot
	chunks [smallK]*wire.Chunk
	raws   [smallK][]byte
	sent   [smallSent]uint16
}

// smallSent is how many children's sent masks a smallSlot holds inline.
const smallSent = 8

// release keeps an evicted slot for reuse (newSlot clears it) without
// reading it. Its chunks stay referenced until then: a few slots' worth.
func (n *Node) release(sl *slot) {
	if n.nSpare < maxSpare {
		n.spare[n.nSpare] = sl
		n.nSpare++
	}
}

// maxSlots bounds the slots held even when captures do not advance.
func (n *Node) maxSlots() int {
	return int(4*n.cfg.Window/n.cfg.SliceDuration) + 64
}

// stale reports whether a chunk of slice seq captured at capture is too
// old to be of use: outside the window, or already passed by playout.
func (n *Node) stale(seq uint64, capture instant) bool {
	if n.seen && capture.Before(n.newestCap.Add(-n.cfg.Window)) {
		return true
	}
	return n.play.started && seq < n.play.next
}

// accept stores a new, verified chunk and forwards it. counted says
// whether its bytes count as received (false for Publish).
func (n *Node) accept(now instant, from NodeID, c *wire.Chunk, raw []byte, counted bool) {
	capture := instant(c.Capture)
	s := int(c.Stripe)
	i, found := n.find(c.Seq)
	var sl *slot
	if found {
		sl = n.win[i]
	}
	if found && n.idx[i].held&(1<<s) != 0 { // held: sl.chunks[s] != nil
		n.judgeLag(now, from, sl, s)
		n.latePush(now, from, sl, s)
		n.notePush(now, from, s, c.Seq)
		n.duplicate(now, from)
		return
	}
	if n.stale(c.Seq, capture) {
		return
	}
	if sl == nil {
		sl = n.newSlot()
		sl.seq = c.Seq
		sl.capture = capture
		sl.duration = time.Duration(c.Duration) * time.Microsecond
		sl.keyframe = c.Keyframe
		sl.firstAt = now
		n.gen++
		n.win, n.winBase = windowInsert(n.win, n.winBase, i, sl)
		n.idx, n.idxBase = windowInsert(n.idx, n.idxBase, i, entry{seq: c.Seq, capture: c.Capture, dur: c.Duration})
	}
	sl.chunks[s] = c
	sl.raws[s] = raw
	sl.have++
	if n.answers(from, c.ID()) {
		sl.asked |= 1 << s
	} else {
		sl.pushAt = now
		n.notePush(now, from, s, c.Seq)
	}
	n.idx[i].held |= 1 << s
	if sl.have == n.k {
		sl.doneAt, n.idx[i].done = now, now
		n.completed++
	}
	if counted {
		if from != "" && sameID(from, n.cfg.Origin) {
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
		st.lostAt = 0
	}
	n.judgeLag(now, from, sl, s)
	if n.unfetch(c.ID()) {
		sl.fetched |= 1 << s
		n.gen++ // a fetch slot is free
	}

	for j := range n.children {
		n.sendTo(&n.children[j], sl, s, from)
	}
	if sl.have == n.k && !n.cfg.Source && !n.play.started {
		if kf := n.startCandidate(i); kf != nil {
			n.startPlayout(kf)
		}
	}
	n.evict()
}

// notePush records chunk seq of stripe s from from, if from is the
// stripe's parent, as the parent's newest push of it (see pushing). A
// copy of a chunk the node had already counts: the parent got that far.
func (n *Node) notePush(now instant, from NodeID, s int, seq uint64) {
	st := &n.stripes[s]
	if from == "" || !sameID(st.parent, from) {
		return
	}
	if st.pushAt.IsZero() || seq > st.pushSeq {
		st.pushSeq, st.pushAt = seq, now
	}
}

// answers reports whether a chunk id from is the answer to a request
// of the node's: a fetch from the origin (not its parent on the
// stripe, whose copy is a push), or a pull from that partner.
func (n *Node) answers(from NodeID, id wire.ID) bool {
	if from == "" {
		return false
	}
	if sameID(from, n.cfg.Origin) && !sameID(n.stripes[id.Stripe].parent, from) && n.fetchIndex(id) >= 0 {
		return true
	}
	for i := range n.mesh.pulls {
		if p := &n.mesh.pulls[i]; p.id == id && sameID(p.to, from) {
			return true
		}
	}
	return false
}

// duplicate handles a second copy of a held chunk.
func (n *Node) duplicate(now instant, from NodeID) {
	n.stats.Duplicates++
	n.heard(now, from) // the parent is alive, if slow
}

// sendTo queues stripe s of sl for ch unless ch is not subscribed to it
// or already has it. A chunk is never sent back to the node it came from.
func (n *Node) sendTo(ch *child, sl *slot, s int, from NodeID) {
	bit := uint16(1) << s
	if ch.mask&bit == 0 || (ch.ci < len(sl.sent) && sl.sent[ch.ci]&bit != 0) {
		return
	}
	if ch.ci >= len(sl.sent) {
		sl.sent = append(sl.sent, make([]uint16, ch.ci+1-len(sl.sent))...)
	}
	sl.sent[ch.ci] |= bit
	if from != "" && sameID(ch.id, from) {
		return
	}
	raw := sl.raws[s]
	r := n.out()
	r.Sends = append(r.Sends, Send{To: ch.id, ID: wire.ID{Seq: sl.seq, Stripe: uint8(s)}, Chunk: raw})
	n.stats.BytesForwarded += uint64(len(raw))
}

// evict drops the slots that fell out of the window.
func (n *Node) evict() {
	cutoff := n.newestCap.Add(-n.cfg.Window)
	limit := n.maxSlots()
	i := 0
	for ; i < len(n.idx); i++ {
		e := &n.idx[i]
		if !e.captureTime().Before(cutoff) && len(n.idx)-i <= limit {
			break
		}
		n.unfetchSeq(e.seq)
		n.gen++
	}
	if i > 0 {
		for j, sl := range n.win[:i] {
			n.release(sl)
			n.win[j] = nil
		}
		// The window moves on in its backing arrays: windowInsert moves
		// it back to their start once their end is reached, one copy
		// per many evictions rather than one per eviction.
		n.win = n.win[i:]
		n.idx = n.idx[i:]
	}
}

// windowInsert inserts v at index i of w, a window of the backing array
// base whose front evict resliced away, and returns the new window and
// backing array. When w has no room at its end and fills at most half of
// base, it moves to the start of base first; else it grows into a new
// backing array.
func windowInsert[T any](w, base []T, i int, v T) ([]T, []T) {
	if len(w) == cap(w) && 2*len(w) <= cap(base) {
		k := copy(base[:cap(base)], w)
		clear(base[k:cap(base)])
		w = base[:k]
	}
	w = slices.Insert(w, i, v)
	if cap(w) > cap(base) { // a new backing array
		base = w[:0]
	}
	return w, base
}

// captureOf returns the capture time of slice seq: its own when held,
// else predicted from the nearest held slice below it (or above it) at
// one SliceDuration per slice. ok is false when nothing is held.
func (n *Node) captureOf(seq uint64) (t instant, ok bool) {
	i, found := n.find(seq)
	if found {
		return n.idx[i].captureTime(), true
	}
	return n.predictCapture(seq, i-1, i)
}

// predictCapture predicts the capture time of seq, a slice the node does
// not hold, from the nearest held slice below it (index below; -1: none)
// or else the nearest above it (index above; len(n.idx): none), one
// SliceDuration per slice between them (at most maxGap). From below, the
// first step is the held slice's own duration, which names the next
// slice's capture: a slice the origin's size cap closed has duration 0,
// its continuation the same capture (origin.ChunkerConfig.SliceCap).
// No prediction is later than the capture of the held slice above. It is
// false when the node holds no slice at all.
func (n *Node) predictCapture(seq uint64, below, above int) (instant, bool) {
	if below >= 0 {
		b := &n.idx[below]
		t := b.captureTime().Add(time.Duration(b.dur)*time.Microsecond +
			time.Duration(min(seq-b.seq, maxGap)-1)*n.cfg.SliceDuration)
		if above < len(n.idx) {
			t = min(t, n.idx[above].captureTime())
		}
		return t, true
	}
	if above < len(n.idx) {
		a := &n.idx[above]
		return a.captureTime().Add(-time.Duration(min(a.seq-seq, maxGap)) * n.cfg.SliceDuration), true
	}
	return 0, false
}

// lagCount is a parent's run of late slices.
type lagCount struct {
	parent  NodeID
	slices  int    // slices in a row it delivered late
	lastSeq uint64 // the last of them
}

// lateOf returns the index of parent's count in n.late, -1: none.
func (n *Node) lateOf(parent NodeID) int {
	for i := range n.late {
		if sameID(n.late[i].parent, parent) {
			return i
		}
	}
	return -1
}

// forgetLate drops parent's count of late slices.
func (n *Node) forgetLate(parent NodeID) {
	if i := n.lateOf(parent); i >= 0 {
		n.late = slices.Delete(n.late, i, i+1)
	}
}

// judgeLag counts the slices whose chunk of stripe s from, the stripe's
// parent, delivers after the node fetched it from the origin (sl holds the
// chunk already); Config.LagSlices of them in a row lose the parent. A
// chunk in time resets the count. The origin is never judged.
func (n *Node) judgeLag(now instant, from NodeID, sl *slot, s int) {
	if n.cfg.LagSlices == 0 || from == "" || sameID(from, n.cfg.Origin) || !sameID(n.stripes[s].parent, from) {
		return
	}
	if sl.chunks[s] == nil || sl.fetched&(1<<s) == 0 {
		if len(n.late) > 0 { // n.late's length is in the Node: no miss per chunk
			n.forgetLate(from) // in time (or a copy that was not fetched)
		}
		return
	}
	i := n.lateOf(from)
	if i < 0 {
		i = len(n.late)
		n.late = append(n.late, lagCount{parent: from})
	}
	lc := &n.late[i]
	if lc.slices > 0 && lc.lastSeq == sl.seq {
		return // this slice is counted
	}
	lc.slices++
	lc.lastSeq = sl.seq
	if lc.slices >= n.cfg.LagSlices {
		n.forgetLate(from)
		n.stats.LaggingParents++
		n.loseParent(now, from)
	}
}

// WarmRefs returns where the arrays an input reads first begin — the
// window index's first and newest entries and the one of the next slice
// to play (where playout and the fetch and pull scans start; a guess
// from the newest seq, as if the window held every seq), the newest
// slot's place in the window, the stripes and the children — computed
// from the Node's own fields without reading the arrays (nil for an
// empty one). A driver
// that knows which node gets an input a few inputs ahead prefetches
// them (after the Node itself), and calls WarmSlots closer to the input:
// WarmSlots' reads then find the arrays in the cache instead of stalling
// on each. Nothing may be written through them; WarmRefs changes
// nothing.
func (n *Node) WarmRefs() (first, newest, next *entry, win **slot, stripes *stripe, children *child) {
	if k := len(n.idx); k > 0 {
		first, newest = &n.idx[0], &n.idx[k-1]
		if d := n.newestSeq - n.play.next; n.play.started && n.play.next <= n.newestSeq && d < uint64(k) {
			next = &n.idx[k-1-int(d)]
		}
	}
	if k := len(n.win); k > 0 {
		win = &n.win[k-1]
	}
	if len(n.stripes) > 0 {
		stripes = &n.stripes[0]
	}
	if len(n.children) > 0 {
		children = &n.children[0]
	}
	return
}

// WarmSlots returns the slots an input about slice seq reads first —
// seq's own (the spare slot a new slice would take, when the window
// holds none for seq), and the one playout plays next — without reading
// them (nil where there is none; seq 0: none of its own). It reads the
// window's index and slot array near their newest entries, whose lines
// a driver prefetched before (WarmRefs). A driver that knows which node
// gets an input a few inputs ahead prefetches the slots then: at 10,000
// peers and more, almost every input touches slots that are not in the
// cache, and a chunk's slot, or the slot played next, is read at once.
// WarmSlots changes nothing.
func (n *Node) WarmSlots(seq uint64) (own, next *slot) {
	if seq != 0 {
		if i, ok := n.find(seq); ok {
			own = n.win[i]
		} else if n.nSpare > 0 {
			own = n.spare[n.nSpare-1]
		}
	}
	if n.play.started {
		if i, ok := n.find(n.play.next); ok {
			next = n.win[i]
		}
	}
	return own, next
}
