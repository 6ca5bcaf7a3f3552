package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// FrameType says what a frame's payload holds.
type FrameType uint8

// Frame types.
const (
	FrameHello   FrameType = 1 // Hello: the first frame a node sends on a stream
	FrameChunk   FrameType = 2 // an encoded, signed chunk
	FrameRequest FrameType = 3 // Request: fetch one chunk (fallback)
	FrameMissing FrameType = 4 // Request payload: the asked chunk is not held
	FrameBye     FrameType = 5 // Bye: the sender closes the stream
	// FrameCancel's payload is a chunk ID (as Missing): the asker no
	// longer needs a chunk it requested with a Due. Sent only after such
	// a request, so only to builds that read Request.Due.
	FrameCancel FrameType = 9
)

func (t FrameType) String() string {
	switch t {
	case FrameHello:
		return "hello"
	case FrameChunk:
		return "chunk"
	case FrameRequest:
		return "request"
	case FrameMissing:
		return "missing"
	case FrameBye:
		return "bye"
	case FrameCancel:
		return "cancel"
	case FramePartner:
		return "partner"
	case FrameBufferMap:
		return "buffer-map"
	case FrameAlive:
		return "alive"
	case FrameMapRequest:
		return "map-request"
	case FrameOverlayHello:
		return "overlay-hello"
	case FrameOverlay:
		return "overlay"
	case FrameOverlayInfo:
		return "overlay-info"
	}
	return fmt.Sprintf("frame(%d)", uint8(t))
}

// MaxFrameLen bounds a frame's payload.
const MaxFrameLen = MaxChunkLen

// ErrFrameTooLarge is returned for a frame whose length exceeds the limit.
var ErrFrameTooLarge = errors.New("wire: frame too large")

// Frame is one decoded frame; Payload aliases the reader's buffer only
// until the next ReadFrame call when it was read with a shared buffer.
type Frame struct {
	Type    FrameType
	Payload []byte
}

// AppendFrame appends a frame header and payload to b.
func AppendFrame(b []byte, t FrameType, payload []byte) []byte {
	b = append(b, byte(t))
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// WriteFrame writes one frame to w in a single Write call.
func WriteFrame(w io.Writer, t FrameType, payload []byte) error {
	_, err := w.Write(AppendFrame(make([]byte, 0, len(payload)+1+binary.MaxVarintLen64), t, payload))
	return err
}

// ReadFrame reads one frame from r. Payloads longer than max (or
// MaxFrameLen when max <= 0) fail with ErrFrameTooLarge before anything is
// allocated. The payload is a fresh slice owned by the caller.
func ReadFrame(r *bufio.Reader, max int) (Frame, error) {
	if max <= 0 || max > MaxFrameLen {
		max = MaxFrameLen
	}
	t, err := r.ReadByte()
	if err != nil {
		return Frame{}, err
	}
	if (t < byte(FrameHello) || t > byte(FrameMapRequest)) && t != byte(FrameOverlayHello) && t != byte(FrameOverlay) && t != byte(FrameOverlayInfo) {
		return Frame{}, fmt.Errorf("%w: unknown frame type %d", ErrMalformed, t)
	}
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("%w: frame length: %v", ErrMalformed, err)
	}
	if n > uint64(max) {
		return Frame{}, fmt.Errorf("%w: %d bytes over %d", ErrFrameTooLarge, n, max)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return Frame{Type: FrameType(t), Payload: p}, nil
}

// Hello opens a stream. A subscriber (a child) names the channel, the
// stripes it wants pushed, and the first slice it wants; a node that only
// fetches (Request) subscribes to no stripe.
type Hello struct {
	Channel string
	// Stripes is a bit mask: bit s set asks for stripe s to be pushed.
	Stripes uint16
	// From is the first slice sequence number wanted; 0 asks for the
	// newest keyframe slice the sender holds and everything after it.
	From uint64
	// Start, with From 0 and when positive, asks instead for the
	// backlog from the first keyframe slice captured at or after Start
	// (Unix nanoseconds); 0 leaves the choice to the parent. A child
	// sends every parent the same Start, so all of its stripes start at
	// the same keyframe. Encoded only when positive, as 8 trailing
	// bytes: a hello without it reads as before.
	Start int64
}

// Append appends h's encoding to b.
func (h Hello) Append(b []byte) []byte {
	b = append(b, Version)
	b = appendString(b, h.Channel)
	b = binary.BigEndian.AppendUint16(b, h.Stripes)
	b = binary.BigEndian.AppendUint64(b, h.From)
	if h.Start > 0 {
		b = binary.BigEndian.AppendUint64(b, uint64(h.Start))
	}
	return b
}

// ParseHello decodes a Hello payload.
func ParseHello(p []byte) (Hello, error) {
	r := reader{b: p}
	if v := r.u8(); r.err == nil && v != Version {
		return Hello{}, fmt.Errorf("%w: hello version %d", ErrVersion, v)
	}
	var h Hello
	h.Channel = r.string(MaxChannelLen)
	if s := r.take(2); s != nil {
		h.Stripes = binary.BigEndian.Uint16(s)
	}
	h.From = r.u64()
	if r.err == nil && len(r.b) == 8 {
		if h.Start = int64(r.u64()); h.Start <= 0 {
			r.fail("hello start not positive")
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes in hello")
	}
	if r.err == nil && h.Channel == "" {
		r.fail("hello without channel")
	}
	return h, r.err
}

// Append appends the ID's encoding (a Missing or Cancel payload, or a
// Request without a Due) to b.
func (id ID) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, id.Seq)
	return append(b, id.Stripe)
}

// ParseID decodes a Missing or Cancel payload (or a Request without a
// Due; see ParseRequest).
func ParseID(p []byte) (ID, error) {
	if len(p) != 9 {
		return ID{}, fmt.Errorf("%w: chunk id of %d bytes", ErrMalformed, len(p))
	}
	id := ID{Seq: binary.BigEndian.Uint64(p), Stripe: p[8]}
	if id.Stripe >= MaxStripes {
		return ID{}, fmt.Errorf("%w: stripe %d", ErrMalformed, id.Stripe)
	}
	return id, nil
}

// Request asks the origin for one chunk (a fallback fetch).
type Request struct {
	ID
	// Due, when positive, is how long after sending the request the
	// asker needs the chunk: its slice's playout time, as the asker's
	// playout clock predicts it. The origin serves the nearest deadlines
	// first and refuses at once what it cannot send in time; 0 names no
	// deadline (a start fetch, or an older build), and the origin keeps
	// the request to its plain backlog bound. Encoded only when positive,
	// as 4 trailing bytes of milliseconds (rounded up, at most
	// MaxRequestDue): a request without it reads as a bare ID. Builds
	// before the field refuse a request that carries it as malformed
	// (the fetch stream is cut off), as they refuse a Hello's Start.
	Due time.Duration
}

// MaxRequestDue bounds a Request's Due.
const MaxRequestDue = time.Hour

// Append appends r's encoding to b.
func (r Request) Append(b []byte) []byte {
	b = r.ID.Append(b)
	if r.Due > 0 {
		ms := (min(r.Due, MaxRequestDue) + time.Millisecond - 1) / time.Millisecond
		b = binary.BigEndian.AppendUint32(b, uint32(ms))
	}
	return b
}

// ParseRequest decodes a Request payload: a bare ID, or an ID and a
// positive Due.
func ParseRequest(p []byte) (Request, error) {
	switch len(p) {
	case 9:
		id, err := ParseID(p)
		return Request{ID: id}, err
	case 13:
		id, err := ParseID(p[:9])
		if err != nil {
			return Request{}, err
		}
		ms := binary.BigEndian.Uint32(p[9:])
		due := time.Duration(ms) * time.Millisecond
		if ms == 0 || due > MaxRequestDue {
			return Request{}, fmt.Errorf("%w: request due %d ms", ErrMalformed, ms)
		}
		return Request{ID: id, Due: due}, nil
	}
	return Request{}, fmt.Errorf("%w: request of %d bytes", ErrMalformed, len(p))
}

// ByeCode says why a node closes a stream.
type ByeCode uint8

// Bye codes.
const (
	ByeNormal       ByeCode = 0 // leaving
	ByeBadChunk     ByeCode = 1 // the peer sent a chunk that failed verification
	ByeProtocol     ByeCode = 2 // the peer broke the protocol
	ByeFull         ByeCode = 3 // no capacity for another child
	ByeWrongChannel ByeCode = 4 // the channel is not served here
	ByeSlow         ByeCode = 5 // the peer did not keep up
)

// Bye is the last frame on a stream.
type Bye struct {
	Code   ByeCode
	Reason string
}

// MaxReasonLen bounds a Bye's reason.
const MaxReasonLen = 256

// Append appends b's encoding.
func (y Bye) Append(b []byte) []byte {
	reason := y.Reason
	if len(reason) > MaxReasonLen {
		reason = reason[:MaxReasonLen]
	}
	b = append(b, byte(y.Code))
	return appendString(b, reason)
}

// ParseBye decodes a Bye payload.
func ParseBye(p []byte) (Bye, error) {
	r := reader{b: p}
	y := Bye{Code: ByeCode(r.u8())}
	y.Reason = r.string(MaxReasonLen)
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes in bye")
	}
	return y, r.err
}
