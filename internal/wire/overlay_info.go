package wire

import "fmt"

// FrameOverlayInfo asks a member for the channel's description, and
// carries the answer: how a viewer given only a running peer's address
// (swarmtv peer --bootstrap HOST:PORT) joins while the tracker is
// unreachable. The asker opens a stream with a request; the member
// answers with one response and closes the stream.
//
//	request    version u8, channel string
//	response   version u8, info bytes (at most MaxOverlayInfoLen)
//
// The info is opaque here (the peer puts the tracker's channel
// description in it, as JSON).
const FrameOverlayInfo FrameType = 0x42

// MaxOverlayInfoLen bounds a channel description.
const MaxOverlayInfoLen = 32 << 10

// AppendInfoRequest appends a request for channel's description.
func AppendInfoRequest(b []byte, channel string) []byte {
	b = append(b, Version)
	return appendString(b, channel)
}

// ParseInfoRequest decodes a request and returns the channel asked for.
func ParseInfoRequest(p []byte) (string, error) {
	r := reader{b: p}
	if v := r.u8(); r.err == nil && v != Version {
		return "", fmt.Errorf("%w: info request version %d", ErrVersion, v)
	}
	ch := r.string(MaxChannelLen)
	r.end("info request")
	if r.err == nil && ch == "" {
		r.fail("info request without channel")
	}
	if r.err != nil {
		return "", r.err
	}
	return ch, nil
}

// AppendInfo appends a response carrying info; it fails for info over
// MaxOverlayInfoLen.
func AppendInfo(b []byte, info []byte) ([]byte, error) {
	if len(info) > MaxOverlayInfoLen {
		return b, fmt.Errorf("%w: channel info of %d bytes", ErrMalformed, len(info))
	}
	b = append(b, Version)
	return appendBytes(b, info), nil
}

// ParseInfo decodes a response; the info owns its memory.
func ParseInfo(p []byte) ([]byte, error) {
	r := reader{b: p}
	if v := r.u8(); r.err == nil && v != Version {
		return nil, fmt.Errorf("%w: info version %d", ErrVersion, v)
	}
	info := r.bytes(MaxOverlayInfoLen)
	r.end("info")
	if r.err != nil {
		return nil, r.err
	}
	return append([]byte{}, info...), nil
}
