package chandelier

import (
	"math"
	"time"
)

// Status is what a peer knows about one of its backups when a parent
// fails or falls behind.
type Status struct {
	Failed bool // unreachable, refused, or known gone
	// Child: the backup takes this stripe from the repairing peer, so
	// switching to it would close a cycle (it was outside the lost
	// parent's subtree when the tracker ranked it, and has moved under
	// the peer since). Never taken.
	Child bool
	// Stale: switching to it is pointless (see [Pointless]): the stripe
	// starves and it holds nothing newer. Never taken.
	Stale bool
	// Full: the backup is known to have no room for another child (its
	// latest offer of room, see [SpareUpload]). Taken only when no other
	// is left, and not at all while the swarm has upload to spare.
	Full bool
	// Lag is how far behind live the backup is: its newest chunk of the
	// stripe behind the freshest known, or the lag it last reported to
	// the tracker (capture to playout); 0 if unknown.
	Lag time.Duration
}

// RepairSlack is how much further behind live than the repairing peer a
// backup may be and still be taken at once (see [MaxBackupLag]).
const RepairSlack = 500 * time.Millisecond

// MaxBackupLag is the maxLag to give [Repair] for a peer that plays own
// behind live: a backup further behind than that delivers the stripe
// after the peer needs it. With own unknown (0) every backup passes.
func MaxBackupLag(own time.Duration) time.Duration {
	if own <= 0 {
		return time.Duration(math.MaxInt64)
	}
	return own + RepairSlack
}

// Repair is the peer side of Chandelier: the peer lost the parent of a
// stripe (or the parent fell behind) and switches at once, without asking
// the tracker, to the first ranked backup that has not failed and lags
// at most maxLag; failing that, to the non-failed backup that lags least
// (rank breaks ties). A backup that is the peer's own child on the
// stripe, or a stale one, is never taken. ok is false when every backup
// failed: the peer then pulls from partners and the origin until the
// tracker's next round.
// The peer reports the switch ([Switch]) so the next round keeps it.
func Repair(backups []string, status func(id string) Status, maxLag time.Duration) (next string, ok bool) {
	return RepairWith(backups, status, maxLag, Estimates{})
}

// RepairWith is [Repair] with the swarm's global figures (the overlay's
// gossip estimates): a backup known to be full is taken last, and not at
// all while the swarm has upload to spare ([SpareUpload]): the stripe
// then waits on partners and the origin for a placement with room (the
// tracker's next round, or the ring rule's members with room), rather
// than overloading a parent and putting its whole subtree behind live.
func RepairWith(backups []string, status func(id string) Status, maxLag time.Duration, est Estimates) (next string, ok bool) {
	best, full := -1, -1
	var bestLag time.Duration
	for k, b := range backups {
		st := status(b)
		if st.Failed || st.Child || st.Stale {
			continue
		}
		if st.Full {
			if full < 0 {
				full = k
			}
			continue
		}
		if st.Lag <= maxLag {
			return b, true
		}
		if best < 0 || st.Lag < bestLag {
			best, bestLag = k, st.Lag
		}
	}
	switch {
	case best >= 0:
		return backups[best], true
	case full >= 0 && !est.SpareUpload():
		return backups[full], true
	}
	return "", false
}

// Estimates are the swarm's global figures a peer knows without the
// tracker: the overlay's gossip estimates (push-sum over the ring).
type Estimates struct {
	Peers float64 // members of the ring; 0 unknown
	// UploadRatio is the members' mean upload over the stream rate (1:
	// the swarm's upload just carries the stream to everyone); 0 unknown.
	UploadRatio float64
	Health      float64 // the members' mean playout continuity, 0..1
}

// SpareRatio is the mean upload ratio above which the swarm has upload to
// spare: beyond one stream per viewer, a fifth more for the stripes'
// rounding and the peers that cannot reach each other.
const SpareRatio = 1.2

// SpareUpload reports whether the swarm has upload to spare, so that a
// child turned away by a full parent finds room elsewhere. Unknown
// figures count as no.
func (e Estimates) SpareUpload() bool {
	return e.UploadRatio >= SpareRatio
}
