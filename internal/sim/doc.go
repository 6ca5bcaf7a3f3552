// Package sim is swarmtv's deterministic discrete-event simulator: many
// peers running the real protocol cores (internal/swarm for every viewer
// and for the origin in source mode, and the tracker's Tracker with the
// chandelier placement, or the baseline with --placer baseline, called
// directly with a virtual clock) on a simulated network, replayable from
// one seed.
//
// There is no second implementation of the protocol. The simulator is a
// driver, like internal/transport: it feeds the cores inputs at virtual
// times, drains their Ready outputs and turns them into timed network
// events, and arms one timer per core at its NextDeadline.
//
// # Time, order, randomness
//
// Time is virtual: int64 nanoseconds since the start, handed to the cores
// as a fixed epoch plus that offset. The event queue orders events by
// (time, pushing part, that part's push sequence), so equal times break
// ties the same way every run (parts.go: the origin, the tracker and
// the run's own events are one part, the viewers 16 more). Randomness
// comes from math/rand/v2 PCG streams derived from
// Config.Seed: one per peer (index i uses stream i: jitter, loss, its
// heartbeat phase) and a few for the population, churn and topology. Map
// iteration never reaches an output. The trace hash (SHA-256 over the
// per-part hashes, in part order, of every event each part ran, in
// order) proves two runs identical.
//
// # Network model
//
// Every peer has an upload and a download capacity: a transfer queues
// behind earlier ones on the sender's upload link and takes size ÷ rate
// there, crosses the network, and queues on the receiver's download link.
// One-way delay is last-mile (per peer) plus backbone (inside an ISP,
// between ISPs of a region, or between regions), plus jitter; a lost
// packet costs a retransmission round (the transport is reliable QUIC).
// NATs follow RFC 4787 (mapping and filtering behaviours, bindings with
// lifetimes, time passed in); a parent link is a hole punch through both
// NATs, else a relay (or a failure when relays are off). The origin and the
// tracker sit in a data centre; the origin has its own upload capacity.
//
// # Stripe trees and repair
//
// The tracker answers joins, heartbeats and parent-lost reports with a
// parent and ranked backups per stripe; a peer keeps one connection per
// parent, subscribed (wire.Hello.Stripes) to the stripes that parent
// feeds it, and the core learns each stripe's parent (SetParent). A
// stripe whose parent the core reports lost switches at once to the
// first usable backup (chandelier.Repair; a node the peer lost lately is
// not usable) and the report carries the switch (Switched). Joins that
// reach the tracker within 10 ms run in one placement round
// (Tracker.JoinBatch); the tracker's periodic round runs every second of
// virtual time. A peer's capacity is its stripe feeds (upload ÷ stripe
// rate, less headroom) and it reports its upload; its core accepts a few
// children more than that while moved children's byes are in flight.
//
// Partners (Config.Partners, mesh.go): each viewer pulls from the first
// few of its tracker backups, rank by rank and stripe by stripe, over a
// partner connection punched like a parent link; a partner sends its
// buffer map at once and whenever the viewer asks for it (when it has a
// chunk to pull that no partner's map shows) and answers pulls from its
// own upload, only when the chunk would leave within 100 ms (else
// Missing). Parents send Alives to quiet children
// (Config.AliveInterval). The report's mesh section counts pulls, pulled
// bytes and the maps' and Alives' control bytes.
//
// The origin serves its seeds (children) first; fetches come from a
// separate budget (the rest of its upload) and are refused when that is
// booked 250 ms ahead, so a fetch flood cannot starve the seeds.
//
// # Verification
//
// By default (Config.Verify "fast") the cores check chunks with a cheap
// stand-in for Ed25519 (swarm.Config.Verify): a chunk passes when its
// encoding is one the simulated origin signed — the very buffer, which
// every node shares. Any tampered copy fails; "ed25519" checks the
// signatures as real nodes do, and runs the same trace.
//
// The origin numbers slices from 1, as the real one does: a fetch of
// slice 0 is answered with the newest keyframe slice (a peer that has
// nothing asks so).
//
// # Invariants
//
// While it runs the simulator checks that no stripe tree has a cycle, no
// node has more children than it accepts, every played slice is exactly
// what the origin made (so every chunk in it passed verification), chunks
// from honest nodes always verify, and every due slice was played or
// counted lost. The first violation stops the run with an *InvariantError
// holding the seed and the command that replays it.
//
// # Two cores
//
// The run goes in windows of the lookahead, the shortest one-way delay
// between two viewers (5 ms at DelayScale 1): the viewers, dealt into
// 16 parts by index, run a window each, taken one at a time by two
// goroutines (Config.Workers; by default when GOMAXPROCS is 2 or more),
// then the origin, the tracker and the run's own events (part 0) run
// the same window while the viewer parts wait (parts.go, crew.go). A
// viewer part's events read and write only its own peers; another peer's alive flag is read as it
// was at the window's start, and a hello carries what the parent reads
// of its child. One worker or two give the same trace and report.
//
// A Sim is not safe for concurrent use.
package sim
