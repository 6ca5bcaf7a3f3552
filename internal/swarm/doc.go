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
// driver calls Tick once when it starts the node (its clock starts at its
// first input), arms one timer for NextDeadline and calls Tick when it
// fires:
//
//	n.Tick(now)
//	for {
//		// ... an input: n.HandleChunk(now, from, raw), n.AddChild(...),
//		// n.SetParent(now, -1, p) and, once p accepted the subscription,
//		// n.ParentUp(now, p), n.NodeGone(now, id), or n.Tick(now) when
//		// the timer fires.
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
// # Time
//
// The inputs take now as a time.Time; inside, every time is an instant,
// Unix nanoseconds as an int64 (the unit of a chunk's capture time), so
// the core's clock is the wall clock its driver reads (the simulator's:
// a fixed epoch plus virtual time). NextDeadline and the played slices'
// times come back as time.Time without a monotonic reading: a driver
// arms its timer from NextDeadline().Sub(now), which then follows the
// wall clock like the core itself.
//
// # Data path
//
// A chunk is verified against the channel key (or Config.Verify) before
// it is stored, forwarded or played; a bad one cuts its sender off. New
// chunks are kept for Config.Window of capture time and pushed at once to
// every child subscribed to their stripe; a child never gets a chunk
// twice. A new child first gets a backlog of what it can use: from the
// slice its Hello names, bounded to Config.MaxBacklog before the newest
// held; or, when it names none, the group of pictures from the newest
// keyframe held (with Config.KeyframeWait set, nothing but live chunks
// when the next keyframe is expected within it).
//
// Playout starts at the first keyframe slice held complete; slice s is
// then due at capture(s) + skew + PlayoutDelay, where skew is the start
// slice's first arrival minus its capture. Slices are played strictly in
// order. A slice incomplete when due stalls playout until it completes
// (a late slice; skew grows by the stall) or until StallLimit passes (a
// lost slice, skipped together with the slices after it that are also
// missing and overdue; skew grows by StallLimit). Skew shrinks again by
// catch-up: while every one of the last slices played completed more
// than PlayoutDelay before it was due, playout runs up to Config.CatchUp
// faster than the stream (PlayAt of consecutive slices closer than their
// captures) until it is PlayoutDelay behind the slowest of them. Seqs
// are consecutive, so the node predicts when slices it has not seen are
// due.
//
// A missing chunk of a slice the node waits for is fetched from the
// origin FetchMargin before the slice is due, or as soon as the slice
// should exist when its stripe has no parent. While the stripe's parent
// still pushes the stripe in order (it pushed an earlier chunk of it
// within the last two slices), the chunk is most likely queued there:
// it is pulled and fetched only PushedMargin before the slice is due,
// or at once when the stripe stops flowing.
//
// # Parent liveness
//
// A parent named by SetParent has ParentConnectTimeout to come up: the
// driver calls ParentUp when the parent accepted the subscription (a
// chunk from it counts too). From then on liveness is judged per parent,
// not per stripe: any chunk from the parent, on any of its stripes, or
// an Alive from it, proves it alive. A parent silent for ParentTimeout while the stream
// evidently goes on is lost: it is reported in Ready.Lost (once per
// stripe) and its stripes fetched as soon as their slices should exist
// until the driver sets a new parent. With Alives on, a parent that sent
// nothing at all — no chunk, no Alive — for four Alive intervals, while
// others were heard after it went quiet, is dead and lost at once,
// whatever ParentTimeout is (see silenceLimit). A live parent whose
// chunks lag on one stripe is not lost: the stripe is repaired by
// pulling, then fetching, at the margin. A parent that falls behind altogether — Config.LagSlices
// slices in a row whose chunks from it arrive only after the node fetched
// them from the origin, with none in time between — is lost like a failed
// one (Stats.LaggingParents), so the driver's owner switches to a backup.
//
// A parent silent for half of ParentTimeout is quiet: every half
// ParentTimeout a node with children fetches the oldest chunk of its
// stripes that should have arrived (it needs it anyway) and forwards it. So a node
// whose own parent died keeps forwarding while it repairs, and its
// children keep hearing from it: only the node whose parent failed
// reports it lost, as long as its fetch round trip to the origin stays
// below half of ParentTimeout. The children, which see the same silence,
// fetch at most one such chunk per half ParentTimeout themselves until
// the forwarded ones arrive.
//
// # Partner mesh and Alive
//
// Push, then pull, then origin (mesh.go): the driver names a few
// partners (SetPartners), which send their buffer maps (HandleMap) at
// once and when the node asks (Ready.MapRequests: when it has a chunk to
// pull that their maps do not show, at most once per MapInterval); a
// chunk of a stripe whose parent was lost is pulled at once (Ready.Pulls;
// answers through HandlePulled and HandleMissing) from a partner whose
// map shows it — of one whose new parent is still connecting,
// PullMargin before it is due; of one whose parent is up but late, just
// before FetchMargin, and only from a partner whose map shows it — and
// fetched from the origin only when no pull can help: at FetchMargin, or
// when a pull fails, or pullPatience after it. Before playout starts,
// the missing chunks of the start picture (the newest keyframe slice
// held and its continuations) are pulled from a partner whose map shows
// them, at once when no parent will push them, else StartPull after the
// picture's first chunk; a start on a picture completed by asking waits
// for the slices after it held complete (see startSkew). Partners that do not answer or send bad
// data are dropped (Ready.DropPartners). Nodes that made this node their
// partner (AddWatcher) get its map at once and on request
// (HandleMapRequest; Ready.Maps). A
// parent sends an Alive to each child that had nothing pushed for
// AliveInterval (Ready.Alives; HandleAlive): an Alive proves the parent
// alive like a chunk, so a short ParentTimeout tells a dead parent from
// one starved by its own upstream.
//
// # Detached nodes
//
// A node that has received nothing and has no parent on a stripe asks
// the origin for slice 0 of that stripe once
// ParentConnectTimeout has passed since its first input. Origins number
// slices from 1; a driver serving fetches answers slice 0 with the chunk
// of the newest keyframe slice it holds (NewestKeyframe), and answers
// Missing with the requested ID when it has none. From that chunk on the
// node fetches the rest of its slices and plays from the origin until
// the driver gives it a parent.
//
// # Ownership and concurrency
//
// The node keeps the raw chunk bytes passed to HandleChunk and Publish
// and hands them out in Sends and Lookup: callers must not modify them
// afterwards. Decoded slices alias them too. A Node is not safe for
// concurrent use: one goroutine owns it.
package swarm
