package proxy

import (
	"errors"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
)

// reader is one playing session. Its fields are guarded by the server's
// mu; writes go to gortsplib's per-session queue, which never blocks.
type reader struct {
	ss     *gortsplib.ServerSession
	st     *streamState
	setup  []bool   // per media: set up by this session
	seq    []uint16 // per media: next sequence number
	seqSet []bool   // per media: seq initialised
	// waitKey: skip slices until a keyframe slice.
	waitKey bool
	playAt  time.Time
	started bool // a keyframe has been queued (startup sample taken)
}

func newReader(ss *gortsplib.ServerSession, st *streamState, now time.Time) *reader {
	r := &reader{
		ss:     ss,
		st:     st,
		setup:  make([]bool, len(st.medias)),
		seq:    make([]uint16, len(st.medias)),
		seqSet: make([]bool, len(st.medias)),
		playAt: now,
	}
	for _, sm := range ss.Medias() {
		for i := range st.medias {
			if st.medias[i].media == sm {
				r.setup[i] = true
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
// reader's queue is full (the reader is too slow) or the session is gone.
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
		if !r.setup[p.media] {
			continue
		}
		if !r.seqSet[p.media] {
			r.seq[p.media], r.seqSet[p.media] = p.pkt.SequenceNumber, true
		}
		pkt := p.pkt // copy: gortsplib sets the SSRC
		pkt.SequenceNumber = r.seq[p.media]
		err := r.ss.WritePacketRTPWithNTP(r.st.medias[p.media].media, &pkt, p.ntp)
		if err != nil {
			var full liberrors.ErrServerWriteQueueFull
			if errors.As(err, &full) {
				return false
			}
			s.stats.PacketsUnusable++
			continue
		}
		r.seq[p.media]++
		s.stats.BytesServed += uint64(p.size)
		s.stats.PacketsServed++
	}
	if o.keyframe && !r.started {
		r.started = true
		s.addStartupLocked(max(0, now.Sub(r.playAt)))
	}
	return true
}
