// Package swarm is one node's per-channel protocol, as a pure state
// machine: the chunk window, the children it pushes to and their
// subscriptions, its parent for each stripe, parent-failure detection,
// fallback fetches from the origin, and the playout clock.
//
// The core does no I/O. A driver (internal/transport for the real network,
// internal/sim for the simulator) feeds it inputs — chunks received, parent
// and child changes, the current time — and after each input drains Ready
// for what to do: chunks to send to children, chunks to fetch from the
// origin, slices to play, senders to cut off, parents it found lost. The
// driver arms one timer for NextDeadline and calls Tick when it fires:
//
//	for {
//		// ... an input: n.HandleChunk(now, from, raw), n.AddChild(...),
//		// n.NodeGone(now, id), or n.Tick(now) when the timer fires.
//		for n.HasReady() {
//			rd := n.Ready()
//			// send rd.Sends, ask the origin for rd.Fetches, play rd.Play,
//			// close rd.CutOff, report rd.Lost and find new parents.
//		}
//		timer.Reset(n.NextDeadline().Sub(now)) // none when zero
//	}
//
// The origin runs the same core in source mode (Config.Source): it
// publishes the chunks it makes and serves them to its children and to
// fallback requests; it does not play out or fetch.
//
// # Data path
//
// A chunk is verified against the channel key before it is stored,
// forwarded or played; a bad one cuts its sender off. New chunks are kept
// for Config.Window of capture time and pushed at once to every child
// subscribed to their stripe; a child never gets a chunk twice, and a new
// child first gets the backlog from the newest keyframe slice held (or
// from the slice its Hello names).
//
// Playout starts at the first keyframe slice held complete; slice s is
// then due at capture(s) + skew + PlayoutDelay, where skew is the start
// slice's first arrival minus its capture. Slices are played strictly in
// order. A slice incomplete when due stalls playout until it completes
// (a late slice; skew grows by the stall) or until StallLimit passes (a
// lost slice, skipped together with the slices after it that are also
// missing and overdue; skew grows by StallLimit). Seqs are consecutive,
// so the node predicts when slices it has not seen are due.
//
// A missing chunk of a slice the node waits for is fetched from the
// origin FetchMargin before the slice is due, or as soon as the slice
// should exist when its stripe has no parent. A parent that delivers
// nothing on its stripe for ParentTimeout while the stream evidently
// goes on is lost: it is reported in Ready.Lost and its stripe fetched
// until the driver sets a new parent.
//
// Because the rule is local, the children of a node whose own parent
// failed see a gap of ParentTimeout plus that node's fetch round trip,
// and report their parent lost too; their playout stays continuous.
//
// # Ownership and concurrency
//
// The node keeps the raw chunk bytes passed to HandleChunk and Publish
// and hands them out in Sends and Lookup: callers must not modify them
// afterwards. Decoded slices alias them too. A Node is not safe for
// concurrent use: one goroutine owns it.
package swarm
