package wire

import (
	"encoding/binary"
	"fmt"
)

// Frames of the partner mesh and of parent liveness.
//
// A node pulls chunks its stripe parents did not deliver in time from a
// few partners. It opens a partner stream to each with a Partner frame;
// the partner then sends its BufferMap on the stream at once and in
// answer to each MapRequest frame the node sends on it, and answers the
// Request frames with a Chunk or a Missing frame, in order.
//
// A parent sends an Alive frame on a child's subscription stream when it
// had nothing to push to the child for a while, so that the child can
// tell a parent starved by its own upstream (alive, its newest chunks
// behind) from a dead one (silent).
const (
	FramePartner   FrameType = 6 // Partner: opens a partner stream
	FrameBufferMap FrameType = 7 // BufferMap: what the sender holds
	FrameAlive     FrameType = 8 // Alive: a parent is alive, and what it holds
	// FrameMapRequest (MapRequest) asks a partner for its BufferMap.
	FrameMapRequest FrameType = 10
)

// MaxMapSlices bounds the slices one BufferMap describes.
const MaxMapSlices = 64

// Partner opens a partner stream.
//
//	version  u8 = 1
//	channel  string
type Partner struct {
	Channel string
}

// Append appends p's encoding to b.
func (p Partner) Append(b []byte) []byte {
	b = append(b, Version)
	return appendString(b, p.Channel)
}

// ParsePartner decodes a Partner payload.
func ParsePartner(b []byte) (Partner, error) {
	r := reader{b: b}
	if v := r.u8(); r.err == nil && v != Version {
		return Partner{}, fmt.Errorf("%w: partner version %d", ErrVersion, v)
	}
	p := Partner{Channel: r.string(MaxChannelLen)}
	r.end("partner")
	if r.err == nil && p.Channel == "" {
		r.fail("partner without channel")
	}
	if r.err != nil {
		return Partner{}, r.err
	}
	return p, nil
}

// BufferMap says which chunks of a run of consecutive slices the sender
// holds.
//
//	version  u8 = 1
//	first    uvarint  seq of the first slice described
//	stripes  u8       K, 1..MaxStripes
//	n        uvarint  slices described, at most MaxMapSlices
//	bits     ceil(n·K / 8) bytes: bit i·K+s (least significant bit of
//	         each byte first) is set when stripe s of slice first+i is
//	         held; the unused high bits of the last byte are zero
//
// Four stripes and 32 slices take 22 bytes.
type BufferMap struct {
	First   uint64
	Stripes int
	// Held has one mask per slice from First: bit s is set when stripe
	// s is held. Bits at or above Stripes are not encoded.
	Held []uint16
}

// Has reports whether the map says stripe of slice seq is held.
func (m *BufferMap) Has(seq uint64, stripe int) bool {
	if seq < m.First || seq-m.First >= uint64(len(m.Held)) || stripe < 0 || stripe >= m.Stripes {
		return false
	}
	return m.Held[seq-m.First]&(1<<stripe) != 0
}

// Last returns the seq of the last slice described; ok is false for an
// empty map.
func (m *BufferMap) Last() (seq uint64, ok bool) {
	if len(m.Held) == 0 {
		return 0, false
	}
	return m.First + uint64(len(m.Held)) - 1, true
}

// Append appends m's encoding to b; it fails for a map with a stripe
// count out of range or more than MaxMapSlices slices.
func (m BufferMap) Append(b []byte) ([]byte, error) {
	if m.Stripes < 1 || m.Stripes > MaxStripes || len(m.Held) > MaxMapSlices {
		return b, fmt.Errorf("%w: buffer map of %d stripes and %d slices", ErrMalformed, m.Stripes, len(m.Held))
	}
	b = append(b, Version)
	b = binary.AppendUvarint(b, m.First)
	b = append(b, byte(m.Stripes))
	b = binary.AppendUvarint(b, uint64(len(m.Held)))
	nbits := len(m.Held) * m.Stripes
	start := len(b)
	b = append(b, make([]byte, (nbits+7)/8)...)
	bits := b[start:]
	for i, h := range m.Held {
		for s := range m.Stripes {
			if h&(1<<s) != 0 {
				k := i*m.Stripes + s
				bits[k/8] |= 1 << (k % 8)
			}
		}
	}
	return b, nil
}

// ParseBufferMap decodes a BufferMap payload.
func ParseBufferMap(p []byte) (BufferMap, error) {
	return ParseBufferMapInto(p, nil)
}

// ParseBufferMapInto decodes a BufferMap payload as ParseBufferMap does,
// reusing held's array for the map's Held when it is large enough (held
// nil: a new one), so a caller that reads the map before its next parse
// decodes without allocating.
func ParseBufferMapInto(p []byte, held []uint16) (BufferMap, error) {
	r := reader{b: p}
	if v := r.u8(); r.err == nil && v != Version {
		return BufferMap{}, fmt.Errorf("%w: buffer map version %d", ErrVersion, v)
	}
	m := BufferMap{First: r.uvarint(), Stripes: int(r.u8())}
	if r.err == nil && (m.Stripes < 1 || m.Stripes > MaxStripes) {
		r.fail("buffer map stripe count")
	}
	n := r.count(MaxMapSlices)
	if r.err == nil && m.First+uint64(n) < m.First {
		r.fail("buffer map beyond the last seq")
	}
	nbits := n * m.Stripes
	bits := r.take((nbits + 7) / 8)
	r.end("buffer map")
	if r.err != nil {
		return BufferMap{}, r.err
	}
	if nbits%8 != 0 && bits[len(bits)-1]>>(nbits%8) != 0 {
		return BufferMap{}, fmt.Errorf("%w: buffer map padding bits set", ErrMalformed)
	}
	if held != nil && cap(held) >= n {
		m.Held = held[:n]
	} else {
		m.Held = make([]uint16, n)
	}
	// The bits, least significant first, through a word: a byte is
	// taken when the next slice's mask needs it (all of them are read:
	// nbits fills them but for the padding checked above).
	var acc uint32
	have, b := 0, 0
	mask := uint32(1)<<m.Stripes - 1
	for i := range m.Held {
		for have < m.Stripes {
			acc |= uint32(bits[b]) << have
			b, have = b+1, have+8
		}
		m.Held[i] = uint16(acc & mask)
		acc >>= m.Stripes
		have -= m.Stripes
	}
	return m, nil
}

// MapRequest asks a partner for its buffer map now.
//
//	version  u8 = 1
type MapRequest struct{}

// Append appends r's encoding to b.
func (MapRequest) Append(b []byte) []byte { return append(b, Version) }

// ParseMapRequest decodes a MapRequest payload.
func ParseMapRequest(p []byte) (MapRequest, error) {
	r := reader{b: p}
	if v := r.u8(); r.err == nil && v != Version {
		return MapRequest{}, fmt.Errorf("%w: map request version %d", ErrVersion, v)
	}
	r.end("map request")
	return MapRequest{}, r.err
}

// Alive tells a child its parent is alive, and how far the parent got.
//
//	version  u8 = 1
//	n        u8       stripes, 1..MaxStripes
//	newest   n × uvarint: per stripe, the newest seq the parent holds
//	         (0: none)
type Alive struct {
	Newest []uint64
}

// Append appends a's encoding to b; it fails for a stripe count out of
// range.
func (a Alive) Append(b []byte) ([]byte, error) {
	if len(a.Newest) < 1 || len(a.Newest) > MaxStripes {
		return b, fmt.Errorf("%w: alive for %d stripes", ErrMalformed, len(a.Newest))
	}
	b = append(b, Version, byte(len(a.Newest)))
	for _, s := range a.Newest {
		b = binary.AppendUvarint(b, s)
	}
	return b, nil
}

// ParseAlive decodes an Alive payload.
func ParseAlive(p []byte) (Alive, error) {
	r := reader{b: p}
	if v := r.u8(); r.err == nil && v != Version {
		return Alive{}, fmt.Errorf("%w: alive version %d", ErrVersion, v)
	}
	n := int(r.u8())
	if r.err == nil && (n < 1 || n > MaxStripes) {
		r.fail("alive stripe count")
	}
	if r.err != nil {
		return Alive{}, r.err
	}
	a := Alive{Newest: make([]uint64, n)}
	for i := range a.Newest {
		a.Newest[i] = r.uvarint()
	}
	r.end("alive")
	if r.err != nil {
		return Alive{}, r.err
	}
	return a, nil
}
