// Package wire holds swarmtv's binary codecs: the signed chunk that travels
// between origin and peers, and the frames that carry it and the control
// messages on a QUIC stream.
//
// # Chunk (version 1)
//
// A chunk is one stripe's share of one time slice. All integers are
// big-endian; "uvarint" is encoding/binary's unsigned varint; a "string" or
// "bytes" field is a uvarint length followed by that many bytes.
//
//	version    u8      = 1
//	flags      u8      bit 0: the slice starts at a keyframe
//	channel    string  at most MaxChannelLen bytes
//	seq        u64     slice sequence number, consecutive from the origin
//	stripe     u8      this chunk's stripe, < stripes
//	stripes    u8      K, the number of stripes (1..MaxStripes)
//	capture    i64     capture time of the slice, Unix nanoseconds
//	duration   u32     slice duration, microseconds
//	nparams    uvarint codec parameter sets (e.g. H.264 SPS and PPS), then each:
//	  media    u8      index of the media in the channel's SDP
//	  data     bytes
//	npackets   uvarint RTP packets of this stripe, then each:
//	  media    u8      index of the media in the channel's SDP
//	  offset   u32     microseconds after the slice's capture time
//	  rtp      bytes   one RTP packet as the broadcaster sent it
//	signature  [64]    Ed25519 over every byte before it
//
// The packets of a slice are dealt round-robin: packet i of the slice goes
// to stripe i mod K, so [Merge] restores the slice's order from its K
// chunks without any index on the wire.
//
// # Frames
//
// A QUIC stream between two nodes carries frames:
//
//	type    u8
//	length  uvarint (at most MaxFrameLen)
//	payload
//
// Types: Hello (first frame a subscriber sends), Chunk (payload is an
// encoded chunk), Request (fallback fetch: seq u64, stripe u8, and when
// the asker names a deadline, due u32 milliseconds) and Missing (the
// asked seq and stripe: not held, refused or canceled), Cancel (the
// asker no longer needs a chunk it requested with a due: the seq and
// stripe), Bye (the sender is
// closing, with a reason), Partner, BufferMap, MapRequest and Alive (the
// partner mesh and parent liveness; see mesh.go), and OverlayHello and Overlay (the
// channel's structured overlay; see overlay.go for their payloads).
//
// Every decoder in this package takes untrusted input: it never panics and
// returns an error wrapping [ErrMalformed] on anything it cannot parse.
// This package is a pure protocol core: no I/O beyond io.Reader/Writer, no
// clock, no randomness.
package wire
