package sim

// kind says what an event does when it fires.
type kind uint8

const (
	evPublish        kind = iota + 1 // the origin publishes slice aux
	evTick                           // node's timer, generation aux
	evChunk                          // chunk raw (aux seq, stripe) pushed by from arrives at node
	evFetched                        // chunk raw fetched from the origin (from) arrives at node
	evFetch                          // fetch of (aux, stripe) from node from arrives at the origin
	evMissing                        // the origin's "missing (aux, stripe)" arrives at node
	evHello                          // child from's hello (aux: the slice it asks from) arrives at parent node
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
)

// event is one entry of the queue. Events are values (no per-event
// allocation); raw aliases a chunk encoding shared by every node.
type event struct {
	at     int64  // virtual nanoseconds since the start
	seq    uint64 // insertion order: the tie-break for equal times
	raw    []byte
	aux    int64
	node   int32
	from   int32
	kind   kind
	stripe uint8
}

// key is an event's place in the queue: its time, its insertion order
// (the tie-break for equal times) and where the event waits in the slab.
type key struct {
	at   int64
	seq  uint64
	slot int32
}

// before orders keys by time, then by insertion.
func (k *key) before(o *key) bool {
	return k.at < o.at || (k.at == o.at && k.seq < o.seq)
}

// queue is a 4-ary min-heap of events ordered by (at, seq). seq is
// unique, so the order is total and a run is deterministic. The heap
// holds small keys; the events wait in a slab (freed slots are reused),
// so sifting moves 24 bytes, not a whole event, and a node's four
// children sit side by side in memory.
type queue struct {
	h    []key
	ev   []event // the slab, indexed by key.slot
	free []int32 // free slab slots
	seq  uint64
}

func (q *queue) len() int { return len(q.h) }

// push adds e, stamping its sequence number.
func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
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
	q.h = append(q.h, k)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !k.before(&q.h[p]) {
			break
		}
		q.h[i] = q.h[p]
		i = p
	}
	q.h[i] = k
}

// pop removes and returns the earliest event. The queue must not be empty.
func (q *queue) pop() event {
	top := q.h[0]
	e := q.ev[top.slot]
	q.ev[top.slot] = event{} // drop the raw reference
	q.free = append(q.free, top.slot)
	n := len(q.h) - 1
	last := q.h[n]
	q.h = q.h[:n]
	if n == 0 {
		return e
	}
	// Sift last down from the root, moving the hole.
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < c+4 && j < n; j++ {
			if q.h[j].before(&q.h[m]) {
				m = j
			}
		}
		if !q.h[m].before(&last) {
			break
		}
		q.h[i] = q.h[m]
		i = m
	}
	q.h[i] = last
	return e
}

// peekAt returns the time of the earliest event; the queue must not be
// empty.
func (q *queue) peekAt() int64 { return q.h[0].at }
