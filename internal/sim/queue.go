package sim

import (
	"math/bits"
	"slices"
)

// kind says what an event does when it fires.
type kind uint8

const (
	evPublish        kind = iota + 1 // the origin publishes slice aux
	evTick                           // node's timer, generation aux
	evChunk                          // chunk raw (aux seq, stripe) pushed by from arrives at node
	evFetched                        // chunk raw fetched from the origin (from) arrives at node
	evFetch                          // fetch of (aux, stripe) from node from arrives at the origin (aux: see fetchAux)
	evMissing                        // the origin's "missing (aux, stripe)" arrives at node
	evHello                          // child from's hello (aux: the slice it asks from; mask, relay) arrives at parent node
	evLinkDown                       // node's connection to from is gone
	evBye                            // child from unsubscribes from node
	evJoin                           // node (re)joins: join request leaves
	evTrackerJoin                    // node's join request reaches the tracker
	evJoined                         // join answer (peer.answer) reaches node
	evHeartbeat                      // node's heartbeat timer
	evTrackerBeat                    // node's heartbeat reaches the tracker
	evBeatAnswer                     // heartbeat answer (peer.answer) reaches node
	evTrackerLost                    // node's "parent from lost" reaches the tracker
	evLostAnswer                     // parent-lost answer (peer.answer) reaches node
	evLeave                          // node leaves (aux 1: crash)
	evTrackerLeave                   // node's leave reaches the tracker
	evCheck                          // invariants, samples, progress
	evChurn                          // one churn step: a peer leaves, a new one joins
	evKillTracker                    // the tracker process dies
	evRestartTracker                 // the tracker comes back, empty
	evRegister                       // the origin (re)registers its channel
	evLinkUp                         // parent from accepted node's hello: the link is up
	evJoinBatch                      // the tracker runs the joins gathered in a batch
	evRound                          // the tracker's periodic placement round
	evBulk                           // node's upload may send its next backlog chunk (aux: when it was armed)
	evFetchServe                     // the origin's fetch budget may send its next answer (Sim.serveFetches)
	evCancel                         // node from's cancel of its fetch (aux, stripe) arrives at the origin
)

// evDead marks a slab entry whose event was canceled (queue.cancel): it
// is dropped when its bucket is gathered, never popped.
const evDead kind = 255

// event is one entry of the queue. Events are values (no per-event
// allocation); raw aliases a chunk encoding shared by every node.
type event struct {
	at     int64  // virtual nanoseconds since the start
	seq    uint64 // the tie-break for equal times: the part that pushed it, then its order there (queue.push)
	raw    []byte
	aux    int64
	node   int32
	from   int32
	kind   kind
	stripe uint8
	booked bool   // a transfer that booked its receiver's download link (Sim.book)
	relay  bool   // evHello: the link runs through a relay
	cross  bool   // evChunk: sent across an ISP border
	mask   uint16 // evHello: the stripes the child takes from node
}

// key is an event's place in the queue: its time, its seq (the
// tie-break for equal times) and where the event waits in the slab.
type key struct {
	at   int64
	seq  uint64
	slot int32
}

// before orders keys by time, then by seq: the part that pushed the
// event, then the order in which that part pushed it.
func (k *key) before(o *key) bool {
	return k.at < o.at || (k.at == o.at && k.seq < o.seq)
}

// The queue is a calendar: a ring of buckets, each bucketNs of virtual
// time wide, covering the next ringBuckets buckets; events further out
// wait in a heap until the ring reaches them. A bucket's keys are kept
// unsorted until the queue gets to it, then sorted once — almost every
// event is due within a few seconds, so a push is an append and a pop
// reads the next key of a sorted run, instead of sifting a heap of every
// waiting event. Wide buckets keep the ring's headers (4,096 of them) in
// the cache, and a bucket's appends near each other. Each part has a
// queue of its own; at 10,000 peers a viewer part's bucket of 2 ms holds
// about 70 events. Sim.warm prefetches from a bucket's sorted run only,
// up to 12 events ahead, so a short run leaves more events unwarmed:
// with two parts of viewers, 1 ms buckets were best (131 µs: 8 % more
// CPU in a 10,000-peer run, 524 µs: 3 %); with 16, 2 ms buckets took
// about a tenth less CPU than 1 ms in two paired runs on a noisy
// machine.
const (
	bucketShift = 21 // a bucket is 2^21 ns (2 ms) of virtual time
	ringBits    = 12 // 2^12 buckets: the ring spans about 8.6 s
	ringBuckets = 1 << ringBits
)

// queue orders events by (at, seq). seq is the part that pushed the
// event (src when it was pushed: see Sim's parts) in its top bits and
// that part's count of pushes below, so it is unique, the order is total
// and a run is deterministic; equal times are broken by part, then by
// the order a part pushed them in, which does not depend on how the
// parts' events interleave. Keys are small; the events wait in a slab
// (freed slots are reused) until their bucket's turn, when they are
// gathered, in order, into the run: the pops then read the run from
// front to back (which the hardware prefetches), and the gathering reads
// the slab in one tight loop whose cache misses overlap, instead of a
// miss per pop between two events' work. Events are never pushed before
// the last one popped (Sim.push clamps them to now).
type queue struct {
	ring   [][]key // by bucket number mod ringBuckets: unsorted keys
	inRing int     // keys in ring
	cur    int64   // the bucket cur holds (at >> bucketShift)
	keys   []key   // scratch: the keys of the bucket being gathered
	run    []event // bucket cur, sorted; run[pos:] are still to pop
	pos    int
	far    farHeap // keys of buckets at or beyond cur + ringBuckets
	ev     []event // the slab, indexed by key.slot
	free   []int32 // free slab slots
	src    int     // the part pushing now (Sim.run sets it per event)
	seqs   [numParts]uint64
	dead   int // canceled events whose keys still wait in the ring or far

	canceled uint64 // events canceled so far
}

// len is the number of events waiting (canceled ones not counted).
func (q *queue) len() int { return len(q.run) - q.pos + q.inRing + len(q.far) - q.dead }

// push adds e, stamping its sequence number. It returns the slab slot e
// waits in (a handle for cancel), or -1 when e went straight into the
// sorted run (it is due within the current bucket) and cannot be
// canceled.
func (q *queue) push(e event) int32 {
	q.stamp(&e)
	return q.insert(e)
}

// stamp gives e its seq: the part pushing it now (src) and that part's
// count of pushes.
func (q *queue) stamp(e *event) {
	q.seqs[q.src]++
	e.seq = uint64(q.src)<<partShift | q.seqs[q.src]
}

// insert adds e, stamped already (by this queue or another part's: see
// Sim.merge), as push does.
func (q *queue) insert(e event) int32 {
	if q.ring == nil {
		q.ring = make([][]key, ringBuckets)
	}
	b := e.at >> bucketShift
	if b <= q.cur {
		// Into the sorted run (b < cur cannot happen: nothing is pushed
		// before the last pop).
		i, _ := slices.BinarySearchFunc(q.run[q.pos:], key{at: e.at, seq: e.seq}, func(a event, k key) int {
			if a.at < k.at || (a.at == k.at && a.seq < k.seq) {
				return -1
			}
			return 1
		})
		q.run = slices.Insert(q.run, q.pos+i, e)
		return -1
	}
	var slot int32
	if n := len(q.free); n > 0 {
		slot = q.free[n-1]
		q.free = q.free[:n-1]
		q.ev[slot] = e
	} else {
		slot = int32(len(q.ev))
		q.ev = append(q.ev, e)
	}
	k := key{at: e.at, seq: e.seq, slot: slot}
	if b < q.cur+ringBuckets {
		r := &q.ring[b&(ringBuckets-1)]
		*r = append(*r, k)
		q.inRing++
		return slot
	}
	q.far.push(k)
	return slot
}

// cancel drops the event push returned slot for, if that slot still
// holds an event of kind at node with aux (a slot is reused once its
// event was gathered into the run, so the check tells a later event
// apart): the event never pops. Its key stays in its bucket and is
// dropped when the bucket is gathered. It reports whether it dropped
// one.
func (q *queue) cancel(slot int32, k kind, node int32, aux int64) bool {
	if slot < 0 || int(slot) >= len(q.ev) {
		return false
	}
	e := &q.ev[slot]
	if e.kind != k || e.node != node || e.aux != aux {
		return false
	}
	*e = event{kind: evDead}
	q.dead++
	q.canceled++
	return true
}

// fill makes run[pos] the earliest event, moving to later buckets as
// needed; it reports false when the queue is empty.
func (q *queue) fill() bool {
	for q.pos >= len(q.run) {
		if q.inRing == 0 && len(q.far) == 0 {
			return false
		}
		q.cur++
		if q.inRing == 0 {
			q.cur = max(q.cur, q.far[0].at>>bucketShift) // skip the empty ring
		}
		// The ring now reaches bucket cur + ringBuckets - 1.
		for len(q.far) > 0 && q.far[0].at>>bucketShift < q.cur+ringBuckets {
			k := q.far.pop()
			r := &q.ring[(k.at>>bucketShift)&(ringBuckets-1)]
			*r = append(*r, k)
			q.inRing++
		}
		// Take bucket cur's keys (giving it the spent scratch storage),
		// sort them and gather their events into the run.
		r := &q.ring[q.cur&(ringBuckets-1)]
		keys := *r
		*r = q.keys[:0]
		q.inRing -= len(keys)
		sortKeys(keys)
		clear(q.run) // the popped events' raw references
		q.run, q.pos = slices.Grow(q.run[:0], len(keys)), 0
		for _, k := range keys {
			if q.ev[k.slot].kind == evDead {
				q.dead--
			} else {
				q.run = append(q.run, q.ev[k.slot])
			}
			q.ev[k.slot] = event{} // drop the raw reference
			q.free = append(q.free, k.slot)
		}
		q.keys = keys[:0]
	}
	return true
}

// pop removes and returns the earliest event. The queue must not be empty.
func (q *queue) pop() event {
	q.fill()
	e := q.run[q.pos]
	q.pos++
	return e
}

// peekAt returns the time of the earliest event; the queue must not be
// empty.
func (q *queue) peekAt() int64 {
	q.fill()
	return q.run[q.pos].at
}

// farHeap is a binary min-heap of keys.
type farHeap []key

func (h *farHeap) push(k key) {
	*h = append(*h, k)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !k.before(&a[p]) {
			break
		}
		a[i] = a[p]
		i = p
	}
	a[i] = k
}

func (h *farHeap) pop() key {
	a := *h
	top := a[0]
	n := len(a) - 1
	last := a[n]
	*h = a[:n]
	a = a[:n]
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && a[c+1].before(&a[c]) {
			c++
		}
		if !a[c].before(&last) {
			break
		}
		a[i] = a[c]
		i = c
	}
	a[i] = last
	return top
}

// sortKeys sorts keys by before: a quicksort on the middle of three
// with insertion sorts below 16 keys, falling back to slices.SortFunc
// when it recurses too deep (a bad pivot sequence). Keys are distinct
// (seq is unique), so any correct sort gives the same order; this one
// compares inline, where slices.SortFunc called a comparison function
// per comparison (a bucket's sort was ~4 % of a run's instructions).
func sortKeys(ks []key) { sortKeysDepth(ks, 2*bits.Len(uint(len(ks)))) }

// sortKeysDepth is sortKeys recursing at most depth levels before the
// fallback.
func sortKeysDepth(ks []key, depth int) {
	for len(ks) > 16 {
		if depth == 0 {
			slices.SortFunc(ks, func(a, b key) int {
				if a.before(&b) {
					return -1
				}
				return 1
			})
			return
		}
		depth--
		// The middle of the first, middle and last keys to ks[0].
		m, l := len(ks)/2, len(ks)-1
		if ks[m].before(&ks[0]) {
			ks[m], ks[0] = ks[0], ks[m]
		}
		if ks[l].before(&ks[m]) {
			ks[l], ks[m] = ks[m], ks[l]
			if ks[m].before(&ks[0]) {
				ks[m], ks[0] = ks[0], ks[m]
			}
		}
		ks[0], ks[m] = ks[m], ks[0]
		p := ks[0]
		// Hoare partition around p: ks[1:i] before p, ks[j+1:] after.
		i, j := 1, l
		for {
			for i <= j && ks[i].before(&p) {
				i++
			}
			for i <= j && p.before(&ks[j]) {
				j--
			}
			if i >= j {
				break
			}
			ks[i], ks[j] = ks[j], ks[i]
			i++
			j--
		}
		ks[0], ks[j] = ks[j], ks[0]
		// Recurse into the smaller side, loop on the larger.
		if j < len(ks)-1-j {
			sortKeysDepth(ks[:j], depth)
			ks = ks[j+1:]
		} else {
			sortKeysDepth(ks[j+1:], depth)
			ks = ks[:j]
		}
	}
	for i := 1; i < len(ks); i++ {
		k := ks[i]
		j := i
		for ; j > 0 && k.before(&ks[j-1]); j-- {
			ks[j] = ks[j-1]
		}
		ks[j] = k
	}
}
