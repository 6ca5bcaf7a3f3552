package proxy

import (
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// Codec families the server looks inside.
const (
	codecOpaque = iota
	codecH264
	codecH265
)

// mediaInfo is what the server knows about one media of the description.
type mediaInfo struct {
	media   *description.Media      // the stream's own pointer (gortsplib keys on it)
	codecs  map[uint8]int           // payload type → codec family; only these are served
	formats map[uint8]format.Format // payload type → format
}

// streamState is one description's stream: the gortsplib stream readers
// are set up on, and the GOP held for new readers. Replaced as a whole when
// the description changes. Fields other than stream are guarded by the
// server's mu.
type streamState struct {
	stream *gortsplib.ServerStream
	medias []mediaInfo
	// keyed: some media is H.264 or H.265, so readers start at keyframes
	// and the GOP is held. Otherwise readers start with the next slice.
	keyed bool

	gop        []*outSlice // slices since the newest keyframe; nil when none held
	gopPackets int
}

// newStreamInfo checks desc and returns its streamState without a
// gortsplib stream.
func newStreamInfo(desc *description.Session) (*streamState, error) {
	st := &streamState{medias: make([]mediaInfo, len(desc.Medias))}
	for i, m := range desc.Medias {
		if len(m.Formats) == 0 {
			return nil, fmt.Errorf("%w: media %d has no format", ErrDescription, i)
		}
		mi := mediaInfo{media: m, codecs: make(map[uint8]int, len(m.Formats)), formats: make(map[uint8]format.Format, len(m.Formats))}
		for _, f := range m.Formats {
			c := codecOpaque
			switch f := f.(type) {
			case *format.H264:
				if f.PacketizationMode == 0 {
					return nil, fmt.Errorf("%w: H.264 packetization mode 0 is not supported", ErrDescription)
				}
				c = codecH264
			case *format.H265:
				c = codecH265
				if f.MaxDONDiff != 0 {
					c = codecOpaque // DON fields: pass through, insert nothing
				}
			}
			if c != codecOpaque {
				st.keyed = true
			}
			mi.codecs[f.PayloadType()] = c
			mi.formats[f.PayloadType()] = f
		}
		st.medias[i] = mi
	}
	return st, nil
}

// outPacket is one RTP packet ready to be written to readers.
type outPacket struct {
	media int
	pkt   rtp.Packet // never modified once built; readers copy the header
	ntp   time.Time  // capture time
	size  int        // marshaled size
}

// outSlice is a played slice ready to be written to readers.
type outSlice struct {
	keyframe      bool
	discontinuity bool
	capture       time.Time
	duration      time.Duration
	// playAt is when the core played the slice (zero: unknown); its
	// distance from capture moves while the core catches up or slows
	// down, and readers move their RTP timestamps with it (see
	// reader.shiftFor).
	playAt  time.Time
	packets []outPacket
}

// prepare parses a slice's packets, drops those that cannot be served and
// inserts parameter sets before keyframes. It returns the prepared slice
// and the number of packets dropped.
func (st *streamState) prepare(sl *swarm.Slice) (*outSlice, int) {
	out := &outSlice{
		keyframe:      sl.Keyframe || !st.keyed,
		discontinuity: sl.Discontinuity,
		capture:       sl.Capture,
		duration:      sl.Duration,
		playAt:        sl.PlayAt,
		packets:       make([]outPacket, 0, len(sl.Packets)+2),
	}
	unusable := 0
	for _, p := range sl.Packets {
		m := int(p.Media)
		if m >= len(st.medias) || len(p.RTP) > maxPacketSize {
			unusable++
			continue
		}
		var op outPacket
		if err := op.pkt.Unmarshal(p.RTP); err != nil {
			unusable++
			continue
		}
		if _, ok := st.medias[m].codecs[op.pkt.PayloadType]; !ok {
			unusable++
			continue
		}
		op.media = m
		op.ntp = sl.Capture.Add(time.Duration(p.Offset) * time.Microsecond)
		op.size = len(p.RTP)
		out.packets = append(out.packets, op)
	}
	if sl.Keyframe {
		for m := range st.medias {
			out.packets = insertParams(out.packets, m, st.medias[m].codecs, sl)
		}
	}
	return out, unusable
}

// hold updates the held GOP with a played slice.
func (st *streamState) hold(o *outSlice) {
	switch {
	case !st.keyed:
		return
	case o.discontinuity && !o.keyframe:
		st.gop, st.gopPackets = nil, 0 // the held GOP no longer leads to now
	case o.keyframe:
		st.gop, st.gopPackets = []*outSlice{o}, len(o.packets)
	case st.gop != nil:
		st.gop = append(st.gop, o)
		st.gopPackets += len(o.packets)
		if st.gopPackets > maxHeldPackets || o.capture.Sub(st.gop[0].capture) > maxHeldDuration {
			// Too long to hold: new readers wait for the next keyframe.
			st.gop, st.gopPackets = nil, 0
		}
	}
}
