// Package proxy is the viewer side of swarmtv: the local proxy an
// unmodified media player (ffmpeg, ffplay, GStreamer, VLC) talks to.
//
// # RTSP server
//
// RTSPServer serves one channel at rtsp://127.0.0.1:8554/<channel>, over
// TCP (interleaved) and UDP. The player believes it talks to the
// broadcaster's own server: DESCRIBE answers with the origin's session
// description (handed over with SetDescription) and every RTP payload
// passes through untouched, whatever the codec.
//
// The swarm core plays slices out in order at their capture timing,
// whether or not a player is attached; the driver hands each played slice
// to WriteSlice. A new viewer starts at once on its start keyframe slice
// with a short margin and converges to the playout delay; after a stall
// or a start on an old group of pictures it catches up
// (swarm.Config.StartMargin, CatchUp): meanwhile the core plays up to a
// quarter slower or faster than the stream. A player schedules frames by
// their RTP timestamps, so each reader moves its timestamps with the
// core's playout (reader.shiftFor): video frames a little shorter while
// catching up, longer while slowing down, continuous and monotonic;
// audio, whose frames have fixed lengths, gets its share by whole
// packets dropped (catching up) or small gaps (slowing down). The server
// keeps the slices since the newest keyframe (the current GOP, bounded)
// and starts every new reader there: on PLAY it queues the held GOP for
// that reader, then the live slices. Each reader gets its own RTP
// sequence numbers per media, continuous across skipped slices,
// inserted and dropped packets; each media has one SSRC for the life of
// the description; RTCP sender reports (the first right after a reader's
// first packet of each media, then every few seconds) pair a packet's
// RTP timestamp with its capture time (slice capture + packet offset)
// plus the reader's timestamp shift as NTP time, so players see the
// origin's clock unchanged through every hop while no catch-up happened,
// and RTP and NTP time stay linear when one did.
//
// A keyframe slice of an H.264 or H.265 media whose parameter sets are
// not in band (ffmpeg sends them only in the SDP) gets them inserted, from
// the slice's Params, in front of the keyframe — as one aggregation packet
// (STAP-A, AP) with the keyframe's timestamp — so a late joiner and a
// player that ignores the SDP's parameter sets decode from its first
// frame.
//
// After a discontinuity (slices skipped by the playout) every reader of a
// stream with H.264/H.265 video waits for the next keyframe rather than
// receive pictures whose references are missing: the player freezes
// briefly instead of showing corruption.
//
// # Peer: stripes, repair and upload
//
// A Peer takes the tracker's per-stripe assignments (a parent and ranked
// backups for each stripe, from join, heartbeat and parent-lost answers)
// and hands the parents to the driver, which keeps one link per distinct
// parent; only stripes whose parent changed are re-dialed. When a parent
// fails, its stripes switch at once, on the driver's goroutine, to their
// first backup that is not this peer and has not failed lately
// (chandelier.Repair); the peer then reports the loss and its switches
// (ParentLostRequest.Switched) and applies the tracker's answer. An
// answer to a request sent before the loss does not bring the lost
// parent back. A stripe with no usable backup stays without a parent
// until the tracker answers; the origin's fallback covers it.
//
// The peer measures its upload capacity rather than being told it: a
// timed upload to the tracker at start (tracker.ProbePath), raised later
// by the peak rate it forwards at while its children are backlogged
// (transport.Driver.PeakUploadBPS). PeerConfig.MaxUploadBPS only caps the
// figure reported as UploadBPS in joins and heartbeats.
//
// # Concurrency
//
// All RTSPServer methods are safe for concurrent use. WriteSlice never
// blocks on a player: each reader has a bounded queue (gortsplib's
// per-session write queue, drained by its own goroutine); a reader whose
// queue is full is too slow and is disconnected. Close waits for every
// goroutine the server started.
package proxy
