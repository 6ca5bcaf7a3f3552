// Package tracker is swarmtv's tracker service: the channel registry and the
// per-channel stripe trees of peers behind an HTTP JSON API, plus [Client], the
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
// Each channel has K stripe trees, placed by the pure chandelier core
// (channel.go is the pure glue: no clock, no I/O, no goroutines): the
// [chandelier.Optimizer] by default, or the random [chandelier.Baseline]
// for comparison (Config.Placer). For every peer and stripe it gives a
// parent and ranked backups, from the peer's measured upload (UploadBPS,
// capped by Capacity — the stripe feeds the peer accepts; without a
// measurement exactly Capacity feeds), NAT class (unprobed peers are
// placed as port-restricted), ISP (from the IP-prefix table, [ISPTable])
// and session age. The origin feeds Capacity × K stripe feeds, as many
// bytes as Capacity whole streams.
//
// A join runs a round at once, so its answer carries a parent for every
// stripe that can have one; a stripe no peer can feed yet has a zero
// parent and the peer's origin fallback covers it. [Tracker.Round] (every
// Config.RoundInterval under [Tracker.Run]; the simulator calls it in
// virtual time) applies leaves, expiries, new measurements and the
// peers' own switches, and spends a small budget of improving moves. A
// peer that lost a parent switches to a backup at once and reports it
// (ParentLostRequest.Switched): valid switches are kept; a stripe it
// could not switch is placed afresh in a round run at once. A lost parent
// silent for more than one interval is removed. A peer silent
// for 3 heartbeat intervals is removed; expiry pops a deadline heap, so a
// sweep costs O(log N) per peer due, not a walk over every peer.
//
// # Concurrency
//
// A [Tracker] is safe for concurrent use: one mutex guards all channels.
// [Tracker.Run] is the only goroutine the package needs (expiry and rounds);
// its caller owns it. Expiry also runs lazily on every request for a
// channel, so the view is never staler than the clock.
package tracker
