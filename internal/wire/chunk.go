package wire

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Version is the chunk format version this package writes and reads.
const Version = 1

// Limits on decoded values; anything larger is malformed.
const (
	MaxChannelLen = 64
	MaxStripes    = 16
	MaxParams     = 16
	MaxPackets    = 4096
	MaxParamLen   = 4096
	MaxRTPLen     = 65535
	// MaxChunkLen bounds an encoded chunk (a 40 Mbit/s stream in 100 ms
	// slices on one stripe is 500 kB).
	MaxChunkLen = 4 << 20
)

// SignatureSize is the size of the Ed25519 signature that ends a chunk.
const SignatureSize = ed25519.SignatureSize

const flagKeyframe = 1 << 0

// Errors returned by the decoders and by VerifyChunk.
var (
	ErrMalformed    = errors.New("wire: malformed input")
	ErrVersion      = errors.New("wire: unsupported version")
	ErrBadSignature = errors.New("wire: bad chunk signature")
)

// Param is a codec parameter set (for H.264: an SPS or a PPS NAL unit)
// carried by the chunks of a slice that starts at a keyframe.
type Param struct {
	Media uint8
	Data  []byte
}

// Packet is one RTP packet of a slice.
type Packet struct {
	// Media is the index of the packet's media in the channel's SDP.
	Media uint8
	// Offset is the packet's capture time after the slice's, in microseconds.
	Offset uint32
	// RTP is the marshaled RTP packet as the broadcaster sent it.
	RTP []byte
}

// Chunk is one stripe's share of one time slice. Decoded chunks alias the
// buffer they were parsed from.
type Chunk struct {
	Channel  string
	Seq      uint64
	Stripe   uint8
	Stripes  uint8
	Capture  int64  // Unix nanoseconds
	Duration uint32 // microseconds
	Keyframe bool
	Params   []Param
	Packets  []Packet
	// Signature is set by Sign and by ParseChunk.
	Signature [SignatureSize]byte
}

// ID names a chunk within a channel.
type ID struct {
	Seq    uint64
	Stripe uint8
}

// ID returns the chunk's ID.
func (c *Chunk) ID() ID { return ID{c.Seq, c.Stripe} }

func (c *Chunk) validate() error {
	switch {
	case len(c.Channel) == 0 || len(c.Channel) > MaxChannelLen:
		return fmt.Errorf("%w: channel name length %d", ErrMalformed, len(c.Channel))
	case c.Stripes == 0 || c.Stripes > MaxStripes:
		return fmt.Errorf("%w: %d stripes", ErrMalformed, c.Stripes)
	case c.Stripe >= c.Stripes:
		return fmt.Errorf("%w: stripe %d of %d", ErrMalformed, c.Stripe, c.Stripes)
	case len(c.Params) > MaxParams:
		return fmt.Errorf("%w: %d parameter sets", ErrMalformed, len(c.Params))
	case len(c.Packets) > MaxPackets:
		return fmt.Errorf("%w: %d packets", ErrMalformed, len(c.Packets))
	}
	for _, p := range c.Params {
		if len(p.Data) > MaxParamLen {
			return fmt.Errorf("%w: parameter set of %d bytes", ErrMalformed, len(p.Data))
		}
	}
	for _, p := range c.Packets {
		if len(p.RTP) > MaxRTPLen {
			return fmt.Errorf("%w: RTP packet of %d bytes", ErrMalformed, len(p.RTP))
		}
	}
	return nil
}

// appendBody appends everything the signature covers.
func (c *Chunk) appendBody(b []byte) []byte {
	flags := byte(0)
	if c.Keyframe {
		flags |= flagKeyframe
	}
	b = append(b, Version, flags)
	b = appendString(b, c.Channel)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	b = append(b, c.Stripe, c.Stripes)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Capture))
	b = binary.BigEndian.AppendUint32(b, c.Duration)
	b = binary.AppendUvarint(b, uint64(len(c.Params)))
	for _, p := range c.Params {
		b = append(b, p.Media)
		b = appendBytes(b, p.Data)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Packets)))
	for _, p := range c.Packets {
		b = append(b, p.Media)
		b = binary.BigEndian.AppendUint32(b, p.Offset)
		b = appendBytes(b, p.RTP)
	}
	return b
}

// Sign encodes c, signs it with key, stores the signature in c and returns
// the encoded chunk appended to b.
func (c *Chunk) Sign(b []byte, key ed25519.PrivateKey) ([]byte, error) {
	if err := c.validate(); err != nil {
		return b, err
	}
	start := len(b)
	b = c.appendBody(b)
	if len(b)-start+SignatureSize > MaxChunkLen {
		return b[:start], fmt.Errorf("%w: chunk of %d bytes", ErrMalformed, len(b)-start)
	}
	sig := ed25519.Sign(key, b[start:])
	copy(c.Signature[:], sig)
	return append(b, sig...), nil
}

// Append appends c with its current Signature (as set by Sign or
// ParseChunk) to b. It does not sign.
func (c *Chunk) Append(b []byte) ([]byte, error) {
	if err := c.validate(); err != nil {
		return b, err
	}
	b = c.appendBody(b)
	return append(b, c.Signature[:]...), nil
}

// VerifyChunk checks the signature at the end of an encoded chunk against
// the channel's public key without decoding the rest.
func VerifyChunk(raw []byte, pub ed25519.PublicKey) error {
	if len(raw) <= SignatureSize || len(raw) > MaxChunkLen {
		return fmt.Errorf("%w: chunk of %d bytes", ErrMalformed, len(raw))
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key of %d bytes", ErrBadSignature, len(pub))
	}
	n := len(raw) - SignatureSize
	if !ed25519.Verify(pub, raw[:n], raw[n:]) {
		return ErrBadSignature
	}
	return nil
}

// PeekID reads an encoded chunk's slice and stripe from its header
// without decoding the rest (a fetch answer names the request it answers
// so). A chunk ParseChunk accepts has the same ID.
func PeekID(raw []byte) (ID, error) {
	r := reader{b: raw}
	if v := r.u8(); r.err == nil && v != Version {
		return ID{}, fmt.Errorf("%w: chunk version %d", ErrVersion, v)
	}
	r.u8()
	r.bytes(MaxChannelLen)
	id := ID{Seq: r.u64(), Stripe: r.u8()}
	return id, r.err
}

// ParseChunk decodes an encoded chunk. It does not verify the signature;
// call VerifyChunk on the same bytes for that. The result aliases raw.
func ParseChunk(raw []byte) (*Chunk, error) {
	if len(raw) > MaxChunkLen {
		return nil, fmt.Errorf("%w: chunk of %d bytes", ErrMalformed, len(raw))
	}
	r := reader{b: raw}
	if v := r.u8(); r.err == nil && v != Version {
		return nil, fmt.Errorf("%w: chunk version %d", ErrVersion, v)
	}
	c := &Chunk{}
	flags := r.u8()
	if flags&^flagKeyframe != 0 {
		r.fail("unknown flags")
	}
	c.Keyframe = flags&flagKeyframe != 0
	c.Channel = string(r.bytes(MaxChannelLen))
	c.Seq = r.u64()
	c.Stripe = r.u8()
	c.Stripes = r.u8()
	c.Capture = int64(r.u64())
	c.Duration = r.u32()
	if n := r.count(MaxParams); n > 0 {
		c.Params = make([]Param, n)
		for i := range c.Params {
			c.Params[i].Media = r.u8()
			c.Params[i].Data = r.bytes(MaxParamLen)
		}
	}
	if n := r.count(MaxPackets); n > 0 {
		c.Packets = make([]Packet, n)
		for i := range c.Packets {
			c.Packets[i].Media = r.u8()
			c.Packets[i].Offset = r.u32()
			c.Packets[i].RTP = r.bytes(MaxRTPLen)
		}
	}
	sig := r.take(SignatureSize)
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b))
	}
	copy(c.Signature[:], sig)
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Deal splits a slice's packets among k stripes: packet i goes to stripe
// i mod k. It returns k slices that share packets' backing array.
func Deal(packets []Packet, k int) [][]Packet {
	out := make([][]Packet, k)
	for s := range out {
		out[s] = make([]Packet, 0, (len(packets)+k-1-s)/k)
	}
	for i, p := range packets {
		out[i%k] = append(out[i%k], p)
	}
	return out
}

// Merge restores a slice's packet order from its chunks indexed by stripe
// (chunks[s].Stripe == s, all of one slice), undoing Deal.
func Merge(chunks []*Chunk) ([]Packet, error) { return AppendMerge(nil, chunks) }

// CheckMerge reports whether chunks merge (Merge): the chunks of one
// slice in stripe order, each holding its share of the slice's packets
// as Deal dealt them (stripe s holds packets s, s+k, s+2k, ...). It
// returns the error Merge would return, without building the packets.
func CheckMerge(chunks []*Chunk) error {
	total := 0
	for s, c := range chunks {
		if c == nil || int(c.Stripe) != s || c.Seq != chunks[0].Seq {
			return fmt.Errorf("%w: merge needs the %d chunks of one slice in stripe order", ErrMalformed, len(chunks))
		}
		total += len(c.Packets)
	}
	// Deal gives stripe s the packets i < total with i%k == s: their
	// count is ceil((total-s)/k). Counts that sum to total but differ
	// leave some stripe short.
	k := len(chunks)
	for s, c := range chunks {
		if len(c.Packets) != (total-s+k-1)/k {
			return fmt.Errorf("%w: stripe %d holds %d packets of %d, not its share", ErrMalformed, s, len(c.Packets), total)
		}
	}
	return nil
}

// AppendMerge is Merge appending the packets to dst, so a caller can
// reuse one array for many slices. On error dst is returned unchanged.
func AppendMerge(dst []Packet, chunks []*Chunk) ([]Packet, error) {
	if err := CheckMerge(chunks); err != nil {
		return dst, err
	}
	total := 0
	for _, c := range chunks {
		total += len(c.Packets)
	}
	// Packet i of the slice is packet i/k of stripe i%k: row j holds
	// packets jk to jk+k-1 (rows and stripes walked without a division
	// per packet: a player's every slice comes through here).
	out := slices.Grow(dst, total)
	for j, n := 0, 0; n < total; j++ {
		for _, c := range chunks {
			if n == total {
				break
			}
			out = append(out, c.Packets[j])
			n++
		}
	}
	return out, nil
}
