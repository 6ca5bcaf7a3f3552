package proxy

// Parameter-set insertion for H.264 (RFC 6184) and H.265 (RFC 7798)
// keyframes. Pure functions of a prepared slice.

import (
	"slices"

	"github.com/pion/rtp"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// NAL unit types.
const (
	h264IDR   = 5
	h264SPS   = 7
	h264PPS   = 8
	h264AUD   = 9
	h264STAPA = 24
	h264FUA   = 28

	h265IRAPFirst = 16
	h265IRAPLast  = 23
	h265VPS       = 32
	h265SPS       = 33
	h265PPS       = 34
	h265AUD       = 35
	h265AP        = 48
	h265FU        = 49
)

// maxPayload is the largest RTP payload an inserted packet may have.
const maxPayload = maxPacketSize - 12

// naluType returns the type of a NAL unit of codec c, or -1.
func naluType(c int, n []byte) int {
	switch {
	case c == codecH264 && len(n) >= 1:
		return int(n[0] & 0x1f)
	case c == codecH265 && len(n) >= 2:
		return int(n[0]>>1) & 0x3f
	}
	return -1
}

// paramRank orders parameter sets in decoding order (VPS, SPS, PPS) and
// reports -1 for NAL units that are not parameter sets of codec c.
func paramRank(c, typ int) int {
	switch {
	case c == codecH264 && typ == h264SPS, c == codecH265 && typ == h265SPS:
		return 1
	case c == codecH264 && typ == h264PPS, c == codecH265 && typ == h265PPS:
		return 2
	case c == codecH265 && typ == h265VPS:
		return 0
	}
	return -1
}

// forEachNALU calls f with each whole NAL unit an RTP payload of codec c
// carries (single NAL unit or aggregation packet) and, for the first
// fragment of a fragmented one, with its header alone. It stops early if f
// returns false.
func forEachNALU(c int, payload []byte, f func(n []byte) bool) {
	typ := naluType(c, payload)
	var agg []byte // aggregated units after the payload header
	switch {
	case c == codecH264 && typ == h264STAPA:
		agg = payload[1:]
	case c == codecH265 && typ == h265AP:
		agg = payload[2:]
	case c == codecH264 && typ == h264FUA:
		if len(payload) >= 2 && payload[1]&0x80 != 0 {
			f([]byte{payload[0]&0xe0 | payload[1]&0x1f})
		}
		return
	case c == codecH265 && typ == h265FU:
		if len(payload) >= 3 && payload[2]&0x80 != 0 {
			f([]byte{payload[0]&0x81 | (payload[2]&0x3f)<<1, payload[1]})
		}
		return
	case typ < 0:
		return
	default:
		f(payload)
		return
	}
	for len(agg) >= 2 {
		n := int(agg[0])<<8 | int(agg[1])
		if n == 0 || len(agg) < 2+n {
			return
		}
		if !f(agg[2 : 2+n]) {
			return
		}
		agg = agg[2+n:]
	}
}

// isKeyStart reports whether a payload starts a keyframe picture.
func isKeyStart(c int, payload []byte) bool {
	key := false
	forEachNALU(c, payload, func(n []byte) bool {
		t := naluType(c, n)
		key = c == codecH264 && t == h264IDR || c == codecH265 && t >= h265IRAPFirst && t <= h265IRAPLast
		return !key
	})
	return key
}

// insertParams inserts, in front of the keyframe of media m, the slice's
// parameter sets for m that its access unit does not carry in band, as
// one aggregation packet (or single NAL unit packets when they do not fit
// in one) with the keyframe's timestamp.
func insertParams(pkts []outPacket, m int, codecs map[uint8]int, sl *swarm.Slice) []outPacket {
	key, c := -1, codecOpaque
	for i := range pkts {
		if pkts[i].media != m {
			continue
		}
		if pc := codecs[pkts[i].pkt.PayloadType]; pc != codecOpaque && isKeyStart(pc, pkts[i].pkt.Payload) {
			key, c = i, pc
			break
		}
	}
	if key < 0 {
		return pkts
	}
	kp := &pkts[key]
	ts, pt := kp.pkt.Timestamp, kp.pkt.PayloadType

	// The access unit: packets of media m with the keyframe's timestamp.
	var inBand [3]bool
	first := key
	for i := range pkts {
		p := &pkts[i]
		if p.media != m || p.pkt.Timestamp != ts || p.pkt.PayloadType != pt {
			continue
		}
		if i < first {
			first = i
		}
		forEachNALU(c, p.pkt.Payload, func(n []byte) bool {
			if r := paramRank(c, naluType(c, n)); r >= 0 {
				inBand[r] = true
			}
			return true
		})
	}

	var missing [3][]byte
	for _, p := range sl.Params {
		if int(p.Media) != m {
			continue
		}
		if r := paramRank(c, naluType(c, p.Data)); r >= 0 && !inBand[r] && missing[r] == nil {
			missing[r] = p.Data
		}
	}
	var units [][]byte
	for _, n := range missing {
		if n != nil {
			units = append(units, n)
		}
	}
	if len(units) == 0 {
		return pkts
	}

	// All missing: insert at the start of the access unit, after an
	// access unit delimiter (which must come first). Some in band: insert
	// just before the keyframe, after those.
	at := first
	if inBand != [3]bool{} {
		at = key
	} else if at < key {
		if t := naluType(c, pkts[at].pkt.Payload); c == codecH264 && t == h264AUD || c == codecH265 && t == h265AUD {
			at++
		}
	}
	ins := paramPackets(c, units)
	out := make([]outPacket, len(ins))
	for i, pl := range ins {
		// Numbered just before the keyframe, as if the broadcaster had
		// sent them (readers renumber anyway).
		seq := kp.pkt.SequenceNumber - uint16(len(ins)-i)
		out[i] = outPacket{
			media: m,
			pkt:   rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts}, Payload: pl},
			ntp:   kp.ntp,
			size:  12 + len(pl),
		}
	}
	return slices.Insert(pkts, at, out...)
}

// paramPackets returns the RTP payloads carrying units: one aggregation
// packet if they fit, else one packet per unit (units too large for one
// packet are dropped; parameter sets never are in practice).
func paramPackets(c int, units [][]byte) [][]byte {
	hdr := 1
	if c == codecH265 {
		hdr = 2
	}
	size := hdr
	for _, n := range units {
		size += 2 + len(n)
	}
	if len(units) > 1 && size <= maxPayload {
		agg := make([]byte, hdr, size)
		switch c {
		case codecH264:
			nri := byte(0)
			for _, n := range units {
				nri = max(nri, n[0]&0x60)
			}
			agg[0] = nri | h264STAPA
		case codecH265:
			tid := byte(7)
			for _, n := range units {
				tid = min(tid, n[1]&0x07)
			}
			agg[0], agg[1] = h265AP<<1, max(tid, 1)
		}
		for _, n := range units {
			agg = append(agg, byte(len(n)>>8), byte(len(n)))
			agg = append(agg, n...)
		}
		return [][]byte{agg}
	}
	var out [][]byte
	for _, n := range units {
		if len(n) <= maxPayload {
			out = append(out, n)
		}
	}
	return out
}
