// Package swarmtest makes signed test streams for the swarm core and its
// drivers: a deterministic channel key and a generator of slices dealt
// into K stripes, with keyframes at a fixed interval and fake RTP
// payloads whose bytes name their slice and packet, so a test can check
// what a player got.
package swarmtest

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// Key returns a deterministic channel key derived from seed.
func Key(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s)
}

// Stream generates a channel's slices. The zero value is not usable; use
// NewStream.
type Stream struct {
	Channel       string
	Key           ed25519.PrivateKey
	Stripes       int
	SliceDuration time.Duration
	// KeyframeEvery: slices whose seq is a multiple of it start at a
	// keyframe and carry parameter sets.
	KeyframeEvery uint64
	// PacketsPerSlice is how many RTP packets each slice holds.
	PacketsPerSlice int
	// Start is the capture time of slice 0.
	Start time.Time
	// SplitKeyframes makes every keyframe slice one the origin's size
	// cap closed (origin.ChunkerConfig.SliceCap): it lasts 0, and the
	// slice after it continues it at the same capture, lasting two
	// slice durations.
	SplitKeyframes bool
}

// NewStream returns a stream of channel ch with k stripes, 100 ms
// slices, a keyframe every 10 slices and 7 packets per slice (so
// stripes hold unequal shares), captured from start.
func NewStream(ch string, k int, start time.Time) *Stream {
	return &Stream{
		Channel:         ch,
		Key:             Key(1),
		Stripes:         k,
		SliceDuration:   100 * time.Millisecond,
		KeyframeEvery:   10,
		PacketsPerSlice: 7,
		Start:           start,
	}
}

// Public returns the stream's channel public key.
func (s *Stream) Public() ed25519.PublicKey { return s.Key.Public().(ed25519.PublicKey) }

// Capture returns the capture time of slice seq.
func (s *Stream) Capture(seq uint64) time.Time {
	if s.continues(seq) {
		seq--
	}
	return s.Start.Add(time.Duration(seq) * s.SliceDuration)
}

// continues reports whether slice seq continues a split keyframe slice.
func (s *Stream) continues(seq uint64) bool {
	return s.SplitKeyframes && seq > 0 && s.Keyframe(seq-1)
}

// Duration returns slice seq's duration: the time to the next slice's
// capture.
func (s *Stream) Duration(seq uint64) time.Duration {
	switch {
	case s.SplitKeyframes && s.Keyframe(seq):
		return 0
	case s.continues(seq):
		return 2 * s.SliceDuration
	}
	return s.SliceDuration
}

// Packets returns slice seq's packets in order. Packet i's RTP bytes are
// a 12-byte header followed by seq and i, so they are unique.
func (s *Stream) Packets(seq uint64) []wire.Packet {
	out := make([]wire.Packet, s.PacketsPerSlice)
	for i := range out {
		rtp := make([]byte, 12, 12+16)
		rtp[0] = 0x80
		rtp[1] = 96
		binary.BigEndian.PutUint16(rtp[2:], uint16(seq*uint64(s.PacketsPerSlice)+uint64(i)))
		rtp = binary.BigEndian.AppendUint64(rtp, seq)
		rtp = binary.BigEndian.AppendUint64(rtp, uint64(i))
		out[i] = wire.Packet{Media: 0, Offset: uint32(i * 1000), RTP: rtp}
	}
	return out
}

// Keyframe reports whether slice seq starts at a keyframe.
func (s *Stream) Keyframe(seq uint64) bool {
	return s.KeyframeEvery > 0 && seq%s.KeyframeEvery == 0
}

// Params are the parameter sets keyframe slices carry.
var Params = []wire.Param{{Media: 0, Data: []byte{0x67, 0x42, 0x00, 0x1f}}, {Media: 0, Data: []byte{0x68, 0xce, 0x3c, 0x80}}}

// Slice returns slice seq's chunks and their signed encodings, by stripe.
func (s *Stream) Slice(seq uint64) ([]*wire.Chunk, [][]byte) {
	dealt := wire.Deal(s.Packets(seq), s.Stripes)
	chunks := make([]*wire.Chunk, s.Stripes)
	raws := make([][]byte, s.Stripes)
	for st := range chunks {
		c := &wire.Chunk{
			Channel:  s.Channel,
			Seq:      seq,
			Stripe:   uint8(st),
			Stripes:  uint8(s.Stripes),
			Capture:  s.Capture(seq).UnixNano(),
			Duration: uint32(s.Duration(seq) / time.Microsecond),
			Keyframe: s.Keyframe(seq),
			Packets:  dealt[st],
		}
		if c.Keyframe {
			c.Params = Params
		}
		raw, err := c.Sign(nil, s.Key)
		if err != nil {
			panic(fmt.Sprintf("swarmtest: signing slice %d: %v", seq, err)) // a bug in the test stream
		}
		chunks[st] = c
		raws[st] = raw
	}
	return chunks, raws
}
