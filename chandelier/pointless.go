package chandelier

import "time"

// Starved is how old a peer's newest chunk of a stripe must be (capture
// to now) for the stripe to count as starved: well above the lag a fed
// viewer runs at (about 1–2 s), below the 10 s a subtree cut off from
// every source reaches within seconds.
const Starved = 3 * time.Second

// Pointless reports whether switching a starved stripe to a candidate
// parent cannot help: the peer's newest chunk of the stripe (own, of
// capture age ownAge) is older than Starved, and the candidate holds
// nothing newer of it (candNewest, as its buffer maps, Alives or the
// simulator show; known false: not known, and worth a try). The cut-off
// side of a network partition is the case: every member starves alike,
// and switching from one starved parent to another only churns the trees
// (5,605 switches in 60 s from 150 peers at 300 peers). A stripe whose
// parent left while the stream flowed is not starved, and any live
// candidate will do.
func Pointless(own uint64, ownAge time.Duration, candNewest uint64, known bool) bool {
	return known && ownAge > Starved && candNewest <= own
}
