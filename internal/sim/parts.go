package sim

// Parts. The run's events fall into numParts parts: part 0 holds the
// origin, the tracker and the events of the whole run (the placement
// rounds, the checks, churn, tracker kill and restart, the partition),
// and the viewers are split into two fixed halves by index, parts 1 and
// 2. Each part numbers the events it pushes (queue.push), and the queue
// breaks ties of equal times by (pushing part, that part's number): an
// order that does not depend on how the parts' events interleave. The
// trace hash is one hash per part (of the events the part ran, in
// order), combined in part order. This is the groundwork for running the
// two halves on two cores in windows of the network's shortest one-way
// delay (docs/ROADMAP.md, #3, "Both cores").
const (
	numParts  = 3
	partShift = 62 // seq: the pushing part in the top bits
)

// partOf returns the part that runs e: 0 for the origin's, the
// tracker's and the run's own events, else the half of e's node.
func partOf(e *event) int {
	if e.node <= originIdx {
		return 0
	}
	switch e.kind {
	case evTrackerJoin, evTrackerBeat, evTrackerLost, evTrackerLeave:
		return 0 // at the tracker, about node
	}
	return 1 + int(e.node&1)
}
