// Package overlay is the pure core of a channel's structured overlay: a
// ring of random 64-bit IDs (Chord-like, with the relaxed ring's join
// that needs only the successor) giving membership, failure detection,
// routing in O(log N) hops, partner discovery, gossip-based estimates of
// global figures, and the merge of rings split by a network partition.
//
// # Driving a Node
//
// A Node does no I/O and owns no timer, goroutine or clock. Its driver
// (internal/transport for real sockets, internal/sim for the simulator)
// owns it from one goroutine and:
//
//   - creates it with New (Config.Self carries a random ID, Config.Rand a
//     source derived from the run's seed);
//   - calls Join(now, via) with any known member (the tracker's answer, a
//     --bootstrap address, a cached peer) or nothing, to found a ring;
//     on JoinFailed it tries another;
//   - hands every received overlay message to Step(now, from, msg);
//   - calls Tick(now) at NextDeadline();
//   - calls NodeFailed(now, id) when its transport finds a peer
//     unreachable (the core also times out its own probes);
//   - calls Contact(now, peer) for members it learns of by other means
//     (tracker hints, cached peers): a contact in another ring starts a
//     merge;
//   - after each of these, drains Ready: Messages to send (each to a
//     Peer: ID and address) and Events (Joined, JoinFailed, LookupDone,
//     MemberFailed, PartnerFound, RingMerge).
//
// Queries that cost no messages: Successor, Successors, Predecessor,
// Members, Partners, Estimates. Queries that do: Lookup (answered by a
// LookupDone) and DiscoverPartners (PartnerFound events).
//
// # Mechanisms
//
//   - ring.go: join, stabilisation (each Round: GetPred to the successor,
//     Notify), successor list, relaxed-ring SuccHint, recursive routing
//     (answered from the successor list when the key falls in it, else
//     forwarded to the closest preceding finger or successor).
//   - node.go: inputs, outputs, timeouts, failure handling.
//   - merge.go: remembered failed members, contacts, merge probes and
//     their fanout-bounded spreading (the cost parameter MergeFanout).
//   - gossip.go: push-sum estimates of peer count, mean upload, health.
//   - offers.go: partner discovery: offers of room per stripe (depth, free
//     child slots) carried by the gossip, the best few kept (Offers).
//
// Messages are typed Go values (messages.go); a wire encoding belongs in
// internal/wire. Map iteration never reaches an output: all outputs are
// produced in a deterministic order, so a seed replays a run exactly.
package overlay
