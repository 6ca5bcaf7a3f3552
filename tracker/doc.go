// Package tracker is swarmtv's tracker service: the channel registry and the
// per-channel tree of peers behind an HTTP JSON API, plus [Client], the
// typed client that origins and peers use to talk to it.
//
// # API
//
// All bodies are JSON with snake_case field names, at most 64 KiB.
// Unknown fields are ignored (forward compatibility); malformed JSON, wrong
// types and out-of-range values are rejected with 400.
//
//	POST /v1/channels                     RegisterRequest → ChannelInfo (201 new, 200 origin restart)
//	GET  /v1/channels                     → ChannelList
//	GET  /v1/channels/{name}              → ChannelInfo
//	POST /v1/channels/{name}/join         JoinRequest → JoinResponse
//	POST /v1/channels/{name}/heartbeat    HeartbeatRequest → HeartbeatResponse
//	POST /v1/channels/{name}/leave        LeaveRequest → 204 (also for an unknown peer)
//	POST /v1/channels/{name}/parent-lost  ParentLostRequest → ParentLostResponse
//	GET  /v1/channels/{name}/tree         → TreeView
//	GET  /healthz                         → {"status":"ok"}
//
// Every error is {"error": code, "message": text} with a 4xx/5xx status;
// the codes are the Code* constants. [Client] turns them into an
// [*APIError] that matches the package's sentinel errors with [errors.Is].
//
// # Placement
//
// The tree of a channel is kept by a pure core (tree.go, placement.go: no
// clock, no I/O, no goroutines, no randomness; the time is an argument).
// Where a peer attaches is decided by a [Placer]; the default, [Shallowest],
// fills the origin's capacity, then puts each peer under the shallowest
// node with a free slot (ties: earliest join, then ID). A peer that stops
// heartbeating for 3 heartbeat intervals, leaves, or is reported lost by a
// child while silent for one interval is removed; its children are
// re-placed by the same rule with their own subtrees still under them, so
// no node ever ends up under its own descendant.
//
// When no attached node has a free slot, a peer that can forward takes the
// place of the shallowest leaf-only peer (capacity 0), which becomes its
// child, so leaf-only peers that came first cannot block a channel. If that
// is impossible too, a new join fails with "no_capacity" (503, retry
// later) and an orphaned subtree waits detached: its root's heartbeat
// response carries an empty parent until a slot frees up, and the tree
// view shows it with depth 0. A peer whose parent changes learns it from
// its next heartbeat response.
//
// # Concurrency
//
// A [Tracker] is safe for concurrent use: one mutex guards all channels.
// [Tracker.Run] is the only goroutine the package needs (the expiry sweep);
// its caller owns it. Expiry also runs lazily on every request for a
// channel, so the view is never staler than the clock.
package tracker
