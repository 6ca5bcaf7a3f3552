package chandelier

import (
	"cmp"
	"slices"
	"time"
)

// Placer computes stripe trees round by round. [Optimizer] and [Baseline]
// implement it.
type Placer interface {
	// Round applies changes and returns what changed. now is the
	// tracker's clock; it only ages sessions.
	Round(now time.Time, changes Changes) Plan
	// Assignments returns every current assignment, by peer ID then
	// stripe.
	Assignments() []Assignment
	// PeerAssignments returns one peer's current assignments, by stripe
	// (nil for an unknown peer).
	PeerAssignments(id string) []Assignment
}

// Changes is what the tracker learned since the previous round.
type Changes struct {
	// Join adds peers; a known ID is treated as an update.
	Join []Peer
	// Update replaces the measurements of known peers (upload, ISP,
	// region, NAT); an unknown ID is treated as a join.
	Update []Peer
	// Leave removes peers by ID; unknown IDs are ignored.
	Leave []string
	// Switched are switches peers made on their own ([Repair]); each is
	// kept when it is valid, so the next round does not undo the repair.
	Switched []Switch
}

// Switch reports that Peer now receives Stripe from Parent.
type Switch struct {
	Peer   string
	Stripe int
	// Parent is a peer ID or [Origin]; "" reports that the peer lost the
	// stripe's parent and had no backup to switch to: the round places
	// the stripe afresh.
	Parent string
}

// Assignment is one peer's place in one stripe tree.
type Assignment struct {
	Peer   string
	Stripe int
	// Parent is the peer (or [Origin]) that feeds Peer this stripe; ""
	// when none could (the origin's fallback covers the deficit).
	Parent string
	// Backups are ranked alternatives: none is Peer, the parent, or one of
	// their descendants in this stripe, and each can reach Peer directly.
	Backups []string
	// Relayed marks a parent that can reach Peer only through a relay
	// (their NATs forbid a direct path; [Config.Relay], a last resort).
	Relayed bool
}

func (a Assignment) equal(b Assignment) bool {
	return a.Peer == b.Peer && a.Stripe == b.Stripe && a.Parent == b.Parent && a.Relayed == b.Relayed && slices.Equal(a.Backups, b.Backups)
}

func compareAssignments(a, b Assignment) int {
	return cmp.Or(cmp.Compare(a.Peer, b.Peer), cmp.Compare(a.Stripe, b.Stripe))
}

// Plan is the outcome of one round.
type Plan struct {
	// Changed are the assignments whose parent or backups changed (new
	// peers included), by peer ID then stripe.
	Changed []Assignment
	// Left are the peers removed this round, sorted.
	Left []string
	// Rejected are IDs of changes that were ignored (empty or reserved
	// ID, unknown switch target, stripe out of range), sorted.
	Rejected []string

	Peers int // peers after the round
	// Moved counts parent changes of peers present before and after the
	// round: the edges the round changed.
	Moved int
	// Placed counts stripes that got a parent for a peer that had none
	// (new peers, repaired deficits).
	Placed int
	// BackupChanges counts assignments whose backups alone changed.
	BackupChanges int
	// Deficit counts (peer, stripe) pairs with no parent after the round:
	// stripes the origin must cover by fallback beyond its feeds.
	Deficit int
	// Relayed counts the edges this round placed through a relay (a
	// last resort, [Config.Relay]); RelayedEdges those standing after
	// it.
	Relayed, RelayedEdges int
}
