package origin

// This file is pure: no clock, no I/O, no goroutines, no randomness.

import (
	"github.com/pion/rtp"
)

// MaxRTPPacket bounds the RTP packets the origin puts into chunks, header
// included: small enough for one QUIC datagram or WebRTC packet, and for
// every RTSP player. Larger H.264 packets are fragmented (FU-A, RFC 6184
// §5.8), larger AAC packets that aggregate access units are split between
// units (RFC 3640); packets of other codecs pass as they are.
const MaxRTPPacket = 1200

// H.264 NAL unit types the fragmenter handles (RFC 6184 §5.2).
const (
	nalSTAPA = 24
	nalFUA   = 28
)

// fragmentH264 splits an H.264 RTP packet longer than max bytes into
// packets of at most max bytes carrying the same NAL units: a single NAL
// unit becomes FU-A fragments, a STAP-A is taken apart into its units
// (each alone, or as FU-A fragments when still too long), and an FU-A
// fragment is cut into smaller fragments keeping its start and end bits.
// The packets share pkt's header and number on from its sequence number;
// the marker bit, if set, stays on the last one. It returns nil when
// pkt fits or cannot be split (other packetizations, a header that
// leaves no room).
func fragmentH264(pkt *rtp.Packet, max int) [][]byte {
	hdr := pkt.Header
	hdr.Padding = false
	hdrLen := hdr.MarshalSize()
	room := max - hdrLen - 2 // an FU indicator and header per fragment
	p := pkt.Payload
	if hdrLen+len(p) <= max || room < 1 || len(p) < 2 {
		return nil
	}
	var payloads [][]byte
	switch typ := p[0] & 0x1f; {
	case typ >= 1 && typ <= 23:
		payloads = fuA(p, room, true, true)
	case typ == nalSTAPA:
		units, ok := stapUnits(p[1:])
		if !ok {
			return nil
		}
		for _, u := range units {
			if len(u) <= max-hdrLen {
				payloads = append(payloads, u)
				continue
			}
			payloads = append(payloads, fuA(u, room, true, true)...)
		}
	case typ == nalFUA:
		fuHdr := p[1]
		data := p[2:]
		if len(data) == 0 {
			return nil
		}
		nal := []byte{p[0]&0xe0 | fuHdr&0x1f}
		payloads = fuA(append(nal, data...), room, fuHdr&0x80 != 0, fuHdr&0x40 != 0)
	default:
		return nil
	}
	out := make([][]byte, len(payloads))
	for i, pl := range payloads {
		h := hdr
		h.Marker = pkt.Marker && i == len(payloads)-1
		h.SequenceNumber = hdr.SequenceNumber + uint16(i)
		b, err := (&rtp.Packet{Header: h, Payload: pl}).Marshal()
		if err != nil {
			return nil
		}
		out[i] = b
	}
	return out
}

// fuA cuts NAL unit nal (header byte first) into FU-A payloads of at most
// room data bytes each. start and end say whether the first and last
// fragments carry the S and E bits (false when nal is itself the middle
// of a larger unit).
func fuA(nal []byte, room int, start, end bool) [][]byte {
	ind := nal[0]&0xe0 | nalFUA
	typ := nal[0] & 0x1f
	data := nal[1:]
	var out [][]byte
	for first := true; first || len(data) > 0; first = false {
		n := min(room, len(data))
		h := typ
		if first && start {
			h |= 0x80
		}
		if n == len(data) && end {
			h |= 0x40
		}
		pl := make([]byte, 0, 2+n)
		pl = append(pl, ind, h)
		out = append(out, append(pl, data[:n]...))
		data = data[n:]
	}
	return out
}

// stapUnits returns the NAL units of a STAP-A payload (after its type
// byte): 16-bit sizes, each followed by a unit.
func stapUnits(b []byte) ([][]byte, bool) {
	var units [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, false
		}
		n := int(b[0])<<8 | int(b[1])
		b = b[2:]
		if n == 0 || n > len(b) {
			return nil, false
		}
		units = append(units, b[:n])
		b = b[n:]
	}
	return units, len(units) > 0
}

// aacSamplesPerAU is the RTP timestamp step from one AAC access unit to
// the next (AAC-LC frames; the same assumption as gortsplib's packetizer).
const aacSamplesPerAU = 1024

// fragmentAAC splits an MPEG-4 audio RTP packet (RFC 3640, AAC-hbr:
// 13-bit sizes and 3-bit indexes, 16-bit AU headers) that aggregates
// several access units and is longer than max bytes into packets of at
// most max bytes, each with whole access units; a packet's timestamp is
// that of its first unit. It returns nil when pkt fits or cannot be split
// that way (one unit too large, interleaving, malformed headers).
func fragmentAAC(pkt *rtp.Packet, max int) [][]byte {
	hdr := pkt.Header
	hdr.Padding = false
	hdrLen := hdr.MarshalSize()
	p := pkt.Payload
	if hdrLen+len(p) <= max || len(p) < 4 {
		return nil
	}
	bitsLen := int(p[0])<<8 | int(p[1])
	n := bitsLen / 16
	if bitsLen%16 != 0 || n < 2 || 2+2*n > len(p) {
		return nil
	}
	sizes := make([]int, n)
	total := 0
	for i := range n {
		h := int(p[2+2*i])<<8 | int(p[3+2*i])
		if h&0x7 != 0 { // an AU-Index or -Index-delta: interleaved
			return nil
		}
		sizes[i] = h >> 3
		total += sizes[i]
	}
	data := p[2+2*n:]
	if total != len(data) {
		return nil
	}
	var out [][]byte
	for first := 0; first < n; {
		last, size := first, hdrLen+4+sizes[first]
		if size > max {
			return nil
		}
		for last+1 < n && size+2+sizes[last+1] <= max {
			last++
			size += 2 + sizes[last]
		}
		m := last - first + 1
		pl := make([]byte, 0, size-hdrLen)
		pl = append(pl, byte(16*m>>8), byte(16*m))
		off := 0
		for i := range first {
			off += sizes[i]
		}
		end := off
		for i := first; i <= last; i++ {
			pl = append(pl, byte(sizes[i]<<3>>8), byte(sizes[i]<<3))
			end += sizes[i]
		}
		pl = append(pl, data[off:end]...)
		h := hdr
		h.SequenceNumber = hdr.SequenceNumber + uint16(len(out))
		h.Timestamp = hdr.Timestamp + uint32(first*aacSamplesPerAU)
		b, err := (&rtp.Packet{Header: h, Payload: pl}).Marshal()
		if err != nil {
			return nil
		}
		out = append(out, b)
		first = last + 1
	}
	return out
}
