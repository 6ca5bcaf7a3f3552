// Package origin is the broadcaster's side of swarmtv: it ingests a live
// stream, cuts it into chunks and (in the service files) signs them,
// registers the channel with the tracker, seeds the first peers and serves
// fallback fetches.
//
// # Ingest
//
// A [Source] delivers a live stream: Run reports the stream's description
// (the SDP, as a gortsplib description.Session) once and then every RTP
// packet with its capture time, the origin's wall clock when the packet
// arrived. Three sources exist:
//
//   - [NewClipSource]: the bundled test clip (package origin/testclip),
//     looped forever at real-time pace with continuous RTP timestamps.
//   - [NewRTSPSource]: pulls rtsp://host/path from a camera, an encoder or
//     another server, over TCP, UDP or whichever works.
//   - [NewPublishSource]: an RTSP server that accepts one publisher at a
//     time (ANNOUNCE/RECORD, e.g. ffmpeg -f rtsp or OBS) at
//     rtsp://listen/<channel>.
//
// Sources relay any codec the SDP describes; payloads are opaque except to
// the chunker's keyframe detection. A source does not reconnect: Run
// returns the reason it stopped and the caller decides whether to retry.
//
// # Chunker
//
// [Chunker] is pure (no clock, no I/O, no goroutines): [Chunker.Push] takes
// packets in capture order and returns the chunks of each completed slice,
// unsigned. A slice lasts about SliceDuration (default 100 ms); a video
// keyframe always starts a new slice, marked Keyframe and carrying the
// codec parameter sets (H.264 SPS/PPS, H.265 VPS/SPS/PPS) so a late joiner
// can decode from it. Packet i of a slice goes to stripe i mod K
// (wire.Deal), so wire.Merge restores the slice from its K chunks.
//
// # Concurrency
//
// A Source's Run calls its callbacks from its own goroutines, one call at a
// time; Run returns only after every goroutine it started has ended. A
// Chunker is not safe for concurrent use; feed it from one goroutine (the
// emit callback).
package origin
