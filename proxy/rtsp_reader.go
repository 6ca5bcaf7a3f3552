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
	// The media's timestamp shift (see reader.shiftFor) at the capture
	// time shAt of its last packet, and how fast it moves towards the
	// reader's shift during the current slice (shift per media time).
	sh    time.Duration
	shAt  time.Time
	shSet bool
	rate  float64
	// shFrom is sh where the current slice, or the slice it continues,
	// began.
	shFrom time.Duration
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
	// RTP timestamp rescaling (see shiftFor): shift is how far the
	// reader's timeline has moved from the broadcaster's at the end of
	// the last slice written; ref is the playout delay (play time minus
	// capture) it counts from.
	shift    time.Duration
	ref      time.Duration
	refValid bool
	// lastDur is the duration of the last slice written that lasted
	// more than 0; cont: the last slice written lasted 0 (the next
	// continues it).
	lastDur time.Duration
	cont    bool
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
	to := r.shiftFor(o)
	// A slice lasting 0 (the origin's size cap closed it) goes on in the
	// next slice, from the same capture: the two share one move, spread
	// over the next one's duration from where the first began, and the
	// first moves at the last rate meanwhile.
	for m := range r.medias {
		rm := &r.medias[m]
		if !r.cont {
			rm.shFrom = rm.sh
		}
		switch {
		case o.duration > 0:
			rm.rate = min(maxShiftRate, float64((to-rm.shFrom).Abs())/float64(o.duration))
		case r.lastDur == 0:
			rm.rate = 0
		}
	}
	r.cont = o.duration == 0
	if o.duration > 0 {
		r.lastDur = o.duration
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
		var sh time.Duration
		if media.codecs[pkt.PayloadType] == codecOpaque {
			// Audio (and anything else not looked inside): its frames
			// have fixed lengths, so shorter timestamps would overlap
			// them. It gets its share of a catch-up by dropping whole
			// packets instead.
			var drop bool
			if sh, drop = rm.dropFor(p.ntp, to); drop {
				continue
			}
		} else {
			sh = rm.shiftAt(p.ntp, to)
		}
		ntpAt := p.ntp
		if sh != 0 {
			rate := int64(90000)
			if f := media.formats[pkt.PayloadType]; f != nil && f.ClockRate() > 0 {
				rate = int64(f.ClockRate())
			}
			pkt.Timestamp += uint32(int64(sh) * rate / int64(time.Second))
			ntpAt = ntpAt.Add(sh) // sender reports pair RTP time with NTP linearly
		}
		if err := r.ss.WritePacketRTPWithNTP(media.media, &pkt, ntpAt); err != nil {
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
				NTPTime:     ntp.Encode(ntpAt),
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
	r.shift = to
	if o.keyframe && !r.started {
		r.started = true
		s.addStartupLocked(max(0, now.Sub(r.playAt)))
	}
	return true
}

// maxShiftRate bounds how fast a media's timestamp shift moves, per
// media time: timestamps never advance slower than half the stream's
// pace (nor faster than one and a half), so they stay monotonic.
const maxShiftRate = 0.5

// shiftAt moves the media's shift towards to for a packet captured at
// ntp, at most rm.rate per media time since its last packet — across a
// slice, so every frame is shortened (or stretched) alike — and returns
// it.
func (rm *readerMedia) shiftAt(ntp time.Time, to time.Duration) time.Duration {
	if !rm.shSet {
		rm.sh, rm.shAt, rm.shSet = to, ntp, true
		return rm.sh
	}
	if d := ntp.Sub(rm.shAt); d > 0 {
		step := time.Duration(float64(d) * rm.rate)
		switch {
		case rm.sh < to:
			rm.sh = min(to, rm.sh+step)
		case rm.sh > to:
			rm.sh = max(to, rm.sh-step)
		}
		rm.shAt = ntp
	}
	return rm.sh
}

// dropFor decides a packet of a media whose frames cannot be shortened
// (audio), captured at ntp, while the reader's shift is to: when the
// media's shift is ahead of to by at least the time since its last
// packet (about one packet's length), the packet is dropped and the
// media's shift moves back by that much, so the packets kept run on
// without overlap or gap; a shift behind to moves forward at most
// maxShiftRate of the media time (small gaps: slower playout). It
// returns the shift for the packet and whether to drop it.
func (rm *readerMedia) dropFor(ntp time.Time, to time.Duration) (time.Duration, bool) {
	if !rm.shSet {
		rm.sh, rm.shAt, rm.shSet = to, ntp, true
		return rm.sh, false
	}
	d := ntp.Sub(rm.shAt)
	if d <= 0 {
		return rm.sh, false
	}
	rm.shAt = ntp
	switch {
	case rm.sh-to >= d:
		rm.sh -= d
		return rm.sh, true
	case rm.sh < to:
		rm.sh = min(to, rm.sh+time.Duration(float64(d)*maxShiftRate))
	}
	return rm.sh, false
}

// shiftFor returns the reader's timestamp shift at the end of slice o.
//
// The core plays slices at their capture timing a playout delay behind,
// but while it catches up (after a stall, or a start on an old group of
// pictures) or slows down (a start with a short margin) that delay
// shrinks or grows by up to swarm.Config.CatchUp of each slice. A player
// schedules frames by their RTP timestamps, not by when they arrive, so
// unchanged timestamps would leave the gain (or the margin) in its own
// buffer. The reader therefore moves each media's timestamps by the
// change of the delay since its first slice: its timeline follows the
// core's playout exactly, frames a little shorter while catching up,
// longer while slowing down. The move per slice is bounded by half the
// slice's duration backwards, so timestamps stay monotonic even when the
// core's clock restarts (a resync); a larger jump back re-bases the
// reader instead. Sender reports carry capture time plus the same shift,
// so RTP and NTP time stay linear for the player (equal to capture time
// whenever no catch-up has happened since the reader started).
func (r *reader) shiftFor(o *outSlice) time.Duration {
	if o.playAt.IsZero() {
		return r.shift
	}
	delay := o.playAt.Sub(o.capture)
	if !r.refValid {
		r.ref, r.refValid = delay-r.shift, true
	}
	sh := delay - r.ref
	dur := o.duration
	if dur == 0 {
		dur = r.lastDur // a slice the size cap closed: bounded as the one before
	}
	if lo := r.shift - dur/2; sh < lo {
		r.ref += sh - lo
		sh = lo
	}
	return sh
}

func isQueueFull(err error) bool {
	var full liberrors.ErrServerWriteQueueFull
	return errors.As(err, &full)
}
