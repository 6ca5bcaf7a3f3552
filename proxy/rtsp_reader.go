package proxy

import (
	"errors"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/bluenviron/gortsplib/v5/pkg/ntp"
	"github.com/pion/rtcp"
)

// srPeriod is how often a reader gets an RTCP sender report per SSRC (at
// the next packet whose timestamp maps linearly to capture time).
const srPeriod = 5 * time.Second

// readerMedia is a reader's state for one media.
type readerMedia struct {
	setup  bool   // set up by this session
	seq    uint16 // next sequence number
	seqSet bool   // seq initialised
}

// srState is a reader's sender-report state for one SSRC.
type srState struct {
	packets, octets uint32
	last            time.Time // wall clock of the last report; zero: none yet
}

// reader is one playing session. Its fields are guarded by the server's
// mu; writes go to gortsplib's per-session queue, which never blocks.
//
// The reader sends its own RTCP sender reports (gortsplib's are off): each
// one carries the exact RTP timestamp and capture time of a packet just
// queued, and is queued after it, so a player always knows the SSRC of a
// report when it arrives.
type reader struct {
	ss     *gortsplib.ServerSession
	st     *streamState
	medias []readerMedia
	sr     map[uint32]*srState
	// waitKey: skip slices until a keyframe slice.
	waitKey bool
	playAt  time.Time
	started bool // a keyframe has been queued (startup sample taken)
}

func newReader(ss *gortsplib.ServerSession, st *streamState, now time.Time) *reader {
	r := &reader{
		ss:     ss,
		st:     st,
		medias: make([]readerMedia, len(st.medias)),
		sr:     make(map[uint32]*srState),
		playAt: now,
	}
	for _, sm := range ss.Medias() {
		for i := range st.medias {
			if st.medias[i].media == sm {
				r.medias[i].setup = true
			}
		}
	}
	return r
}

// start queues the held GOP, or makes the reader wait for the next
// keyframe. It reports false if the reader's queue overflowed.
func (r *reader) start(now time.Time, s *RTSPServer) bool {
	if !r.st.keyed {
		return true
	}
	if r.st.gop == nil {
		r.waitKey = true
		return true
	}
	for _, o := range r.st.gop {
		if !r.writeSlice(o, now, s) {
			return false
		}
	}
	return true
}

// writeSlice queues one slice for the reader. It reports false if the
// reader's queue is full: the reader is too slow.
func (r *reader) writeSlice(o *outSlice, now time.Time, s *RTSPServer) bool {
	if o.discontinuity && r.st.keyed && !o.keyframe {
		r.waitKey = true
	}
	if r.waitKey {
		if !o.keyframe {
			return true
		}
		r.waitKey = false
	}
	for i := range o.packets {
		p := &o.packets[i]
		rm := &r.medias[p.media]
		if !rm.setup {
			continue
		}
		if !rm.seqSet {
			rm.seq, rm.seqSet = p.pkt.SequenceNumber, true
		}
		media := r.st.medias[p.media]
		pkt := p.pkt // copy: gortsplib sets the SSRC
		pkt.SequenceNumber = rm.seq
		if err := r.ss.WritePacketRTPWithNTP(media.media, &pkt, p.ntp); err != nil {
			if isQueueFull(err) {
				return false
			}
			s.stats.PacketsUnusable++
			continue
		}
		rm.seq++
		s.stats.BytesServed += uint64(p.size)
		s.stats.PacketsServed++

		sr := r.sr[pkt.SSRC]
		if sr == nil {
			sr = &srState{}
			r.sr[pkt.SSRC] = sr
		}
		sr.packets++
		sr.octets += uint32(len(pkt.Payload))
		if (sr.last.IsZero() || now.Sub(sr.last) >= srPeriod) && media.formats[pkt.PayloadType].PTSEqualsDTS(&pkt) {
			err := r.ss.WritePacketRTCP(media.media, &rtcp.SenderReport{
				SSRC:        pkt.SSRC,
				NTPTime:     ntp.Encode(p.ntp),
				RTPTime:     pkt.Timestamp,
				PacketCount: sr.packets,
				OctetCount:  sr.octets,
			})
			if isQueueFull(err) {
				return false
			}
			sr.last = now
		}
	}
	if o.keyframe && !r.started {
		r.started = true
		s.addStartupLocked(max(0, now.Sub(r.playAt)))
	}
	return true
}

func isQueueFull(err error) bool {
	var full liberrors.ErrServerWriteQueueFull
	return errors.As(err, &full)
}
