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
// to WriteSlice. The server keeps the slices since the newest keyframe
// (the current GOP, bounded) and starts every new reader there: on PLAY it
// queues the held GOP for that reader, then the live slices. Each reader
// gets its own RTP sequence numbers per media, continuous across skipped
// slices and inserted packets; timestamps stay the broadcaster's; each
// media has one SSRC for the life of the description; RTCP sender reports
// (the first right after a reader's first packet of each media, then
// every few seconds) pair a packet's RTP timestamp with its capture time
// (slice capture + packet offset) as NTP time, so players see the
// origin's clock unchanged through every hop.
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
// # Concurrency
//
// All RTSPServer methods are safe for concurrent use. WriteSlice never
// blocks on a player: each reader has a bounded queue (gortsplib's
// per-session write queue, drained by its own goroutine); a reader whose
// queue is full is too slow and is disconnected. Close waits for every
// goroutine the server started.
package proxy
