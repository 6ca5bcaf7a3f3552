// Package chandelier is swarmtv's topology-aware placement core (DESIGN.md,
// "Chandelier" and "Stripes"): the tracker side decides, for every peer and
// stripe, a parent and ranked backups; the peer side ([Repair]) decides
// which backup to switch to when a parent fails.
//
// # Placement
//
// An [Optimizer] is run by the tracker about once a second. Each call to
// [Optimizer.Round] takes what changed since the last round (joins,
// leaves, updated measurements, switches the peers made on their own) and
// returns a [Plan] holding only the assignments that changed, plus counts.
// Edges that are still valid are kept, so a round with little churn moves
// few peers.
//
// The trees follow SplitStream: a peer with upload to spare is interior in
// exactly one stripe tree, where its whole upload serves children, and a
// leaf in the others. Within a stripe, detached peers are placed best
// first (capacity × maturity, then the hardest NAT first, then age), each
// at the shallowest free slot of a parent it can connect to directly,
// preferring its own ISP ([Config.ISPSlack]); the origin's slots go first
// to the first interior peer of each ISP, so each ISP's stripe tree is fed
// once from outside and then grows inside the ISP. Interior stripes are
// dealt per ISP so every ISP has upload for every stripe, and re-dealt
// when churn drains one. A peer with no free slot in reach may take a
// leaf's place (the leaf becomes its child); what still finds none is
// retried after the others in the same round. Each round then spends a
// small budget ([Config.Moves]) lifting deep forwarders and cross-ISP
// peers into free slots closer to the origin or inside their ISP.
//
// Backups are forwarders of the same stripe no deeper than the parent,
// so they are never below the peer or its parent: switching to one
// cannot close a cycle and does not fail along with the parent. Valid
// backups are kept across rounds.
//
// Goals, in order: every peer receives every stripe (a pair that cannot be
// placed counts in [Plan.Deficit]; the origin's fallback covers it); no
// parent above its capacity; no pair that NATs forbid ([Direct]); interior
// in at most one stripe; shallow trees; traffic inside an ISP; few changes.
//
// [Baseline] is the naive placement the figures compare against: a random
// parent with spare capacity, blind to ISPs and NATs. Both implement
// [Placer]; [Measure] checks the invariants and computes the figures of
// any set of assignments.
//
// # Purity and concurrency
//
// The package is a pure core: no I/O, no goroutines, no clock (now is an
// argument), no global randomness (Baseline takes a source). Map iteration
// never reaches an output. Nothing here is safe for concurrent use: the
// tracker owns one Optimizer per channel under its lock.
package chandelier
