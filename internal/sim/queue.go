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
	evHello                          // child from's hello arrives at parent node
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

// before orders events by time, then by insertion.
func (e *event) before(o *event) bool {
	if e.at != o.at {
		return e.at < o.at
	}
	return e.seq < o.seq
}

// queue is a binary min-heap of events ordered by (at, seq). seq is
// unique, so the order is total and a run is deterministic. It is a typed
// heap (container/heap's interface would box every event).
type queue struct {
	h   []event
	seq uint64
}

func (q *queue) len() int { return len(q.h) }

// push adds e, stamping its sequence number.
func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.h[i].before(&q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

// pop removes and returns the earliest event. The queue must not be empty.
func (q *queue) pop() event {
	top := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h[n] = event{} // drop the raw reference
	q.h = q.h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q.h[r].before(&q.h[l]) {
			m = r
		}
		if !q.h[m].before(&q.h[i]) {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}

// peekAt returns the time of the earliest event; the queue must not be
// empty.
func (q *queue) peekAt() int64 { return q.h[0].at }
