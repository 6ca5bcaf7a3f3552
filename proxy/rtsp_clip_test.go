package proxy

// A real H.264 + AAC stream for the tests: ffmpeg encodes a test pattern
// and publishes it (ANNOUNCE/RECORD) into a tiny gortsplib server; the
// packets it sends, with its own SDP, are cut into swarm slices and fed to
// the server under test at real-time pace, looped with continuous
// timestamps.

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

const (
	clipSeconds   = 6
	clipGOP       = 30 // frames at 30 fps: one keyframe a second
	sliceDuration = 100 * time.Millisecond
)

type clipPacket struct {
	media int
	pkt   *rtp.Packet
	at    time.Duration // media time since the clip's start
}

type clipSlice struct {
	at       time.Duration
	keyframe bool
	packets  []clipPacket
}

// testClip is a captured stream, cut into slices.
type testClip struct {
	sdp    []byte // ffmpeg's own SDP
	desc   *description.Session
	video  int      // index of the H.264 media
	params [][]byte // SPS, PPS from the SDP
	slices []clipSlice
	loop   time.Duration // clip length
	loopTS []uint32      // per media: timestamp advance per loop
}

var (
	clipOnce sync.Once
	clip     *testClip
	clipErr  error
)

// loadClip returns the shared test clip, capturing it on first use.
func loadClip(t *testing.T) *testClip {
	t.Helper()
	clipOnce.Do(func() { clip, clipErr = captureClip() })
	if clipErr != nil {
		t.Fatalf("capturing the test stream: %v", clipErr)
	}
	return clip
}

// captureHandler is the publish-only server ffmpeg sends the clip to.
type captureHandler struct {
	mu      sync.Mutex
	sdp     []byte
	desc    *description.Session
	packets []clipPacket
	first   map[int]uint32
	done    chan struct{}
	once    sync.Once
}

func (h *captureHandler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	h.mu.Lock()
	h.sdp, h.desc = bytes.Clone(ctx.Request.Body), ctx.Description
	h.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *captureHandler) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil, nil
}

func (h *captureHandler) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	ctx.Session.OnPacketRTPAny(func(m *description.Media, f format.Format, pkt *rtp.Packet) {
		h.mu.Lock()
		defer h.mu.Unlock()
		mi := slices.Index(h.desc.Medias, m)
		first, ok := h.first[mi]
		if !ok {
			first = pkt.Timestamp
			h.first[mi] = first
		}
		at := time.Duration(int64(int32(pkt.Timestamp-first))) * time.Second / time.Duration(f.ClockRate())
		cp := *pkt
		cp.Payload = bytes.Clone(pkt.Payload)
		h.packets = append(h.packets, clipPacket{media: mi, pkt: &cp, at: at})
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *captureHandler) OnSessionClose(*gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.once.Do(func() { close(h.done) })
}

func captureClip() (*testClip, error) {
	h := &captureHandler{first: map[int]uint32{}, done: make(chan struct{})}
	srv := &gortsplib.Server{Handler: h, RTSPAddress: "127.0.0.1:0"}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := fmt.Sprintf("rtsp://%s/src", srv.NetListener().Addr())
	cmd := exec.CommandContext(ctx, "/usr/bin/ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(clipSeconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", fmt.Sprint(clipGOP), "-bf", "0", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-ac", "1", "-b:a", "64k",
		"-f", "rtsp", "-rtsp_transport", "tcp", url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ffmpeg publish: %v: %s", err, stderr.String())
	}
	select {
	case <-h.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("publish session did not end")
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	c := &testClip{sdp: h.sdp, desc: h.desc, video: -1, loopTS: make([]uint32, len(h.desc.Medias))}
	for i, m := range h.desc.Medias {
		if f, ok := m.Formats[0].(*format.H264); ok {
			c.video = i
			c.params = [][]byte{f.SPS, f.PPS}
		}
	}
	if c.video < 0 || len(c.params[0]) == 0 {
		return nil, fmt.Errorf("no H.264 media with parameter sets in %q", h.sdp)
	}
	pk := h.packets
	slices.SortStableFunc(pk, func(a, b clipPacket) int { return int(a.at - b.at) })

	// Loop lengths: last timestamp + one frame step, per media.
	for m := range h.desc.Medias {
		var last, prev uint32
		n := 0
		for _, p := range pk {
			if p.media == m && (n == 0 || p.pkt.Timestamp != last) {
				prev, last = last, p.pkt.Timestamp
				n++
			}
		}
		if n < 2 {
			return nil, fmt.Errorf("media %d: %d packets", m, n)
		}
		c.loopTS[m] = last - h.first[m] + (last - prev)
	}
	c.loop = time.Duration(c.loopTS[c.video]) * time.Second / 90000

	// Slices: a keyframe access unit starts one, else every 100 ms.
	var cur *clipSlice
	var lastTS uint32
	seenVideo := false
	for i, p := range pk {
		newAU := p.media == c.video && (!seenVideo || p.pkt.Timestamp != lastTS)
		key := false
		if newAU {
			seenVideo, lastTS = true, p.pkt.Timestamp
			for _, q := range pk[i:] {
				if q.media == c.video && q.pkt.Timestamp != lastTS {
					break
				}
				if q.media == c.video && idrStart(q.pkt.Payload) {
					key = true
				}
			}
		}
		if cur == nil || key || p.at-cur.at >= sliceDuration {
			c.slices = append(c.slices, clipSlice{at: p.at, keyframe: key})
			cur = &c.slices[len(c.slices)-1]
		}
		cur.packets = append(cur.packets, p)
	}
	if !c.slices[0].keyframe {
		return nil, fmt.Errorf("clip does not start with a keyframe")
	}
	return c, nil
}

// idrStart reports whether an H.264 payload starts an IDR picture (an
// independent check from the server's own parser).
func idrStart(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch p[0] & 0x1f {
	case 5:
		return true
	case 28:
		return len(p) > 1 && p[1]&0x80 != 0 && p[1]&0x1f == 5
	}
	return false
}

var spropRE = regexp.MustCompile(`;?\s*sprop-parameter-sets=[^;\r\n]*`)

// sdpWithoutParams returns the clip's SDP without sprop-parameter-sets, as
// some encoders send it: then only in-band parameter sets let a player
// decode.
func (c *testClip) sdpWithoutParams() []byte {
	return spropRE.ReplaceAll(c.sdp, nil)
}

// feedOptions tune a feeder.
type feedOptions struct {
	skip     func(seq uint64, s *clipSlice) bool // drop this slice (playout skipped it)
	noParams bool                                // send keyframe slices without Params
	// onSlice is called with every slice written (from the feeder's goroutine).
	onSlice func(sl swarm.Slice)
	// pace, when set, maps the stream's media time (since the feeder
	// started) to when the slice is played, as the core's playout clock
	// does while it catches up or slows down (nil: real time).
	pace func(media time.Duration) time.Duration
	// split writes every keyframe slice as two, as the origin's size cap
	// cuts it: the first half of its packets lasting 0, the rest a
	// continuation with the same capture and play time.
	split bool
}

// feeder writes the clip, looped, to a server at real-time pace.
type feeder struct {
	stop chan struct{}
	done chan struct{}
}

// startFeeder starts writing the clip to srv; it stops at test cleanup.
func startFeeder(t *testing.T, srv *RTSPServer, c *testClip, opt feedOptions) *feeder {
	f := &feeder{stop: make(chan struct{}), done: make(chan struct{})}
	go f.run(srv, c, opt)
	t.Cleanup(f.Stop)
	return f
}

// Stop stops the feeder and waits for it.
func (f *feeder) Stop() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

func (f *feeder) run(srv *RTSPServer, c *testClip, opt feedOptions) {
	defer close(f.done)
	start := time.Now()
	seq := uint64(0)
	skipped := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for loop := 0; ; loop++ {
		for i := range c.slices {
			cs := &c.slices[i]
			seq++
			media := time.Duration(loop)*c.loop + cs.at
			due := start.Add(media)
			if opt.pace != nil {
				due = start.Add(opt.pace(media))
			}
			timer.Reset(time.Until(due))
			select {
			case <-f.stop:
				return
			case <-timer.C:
			}
			if opt.skip != nil && opt.skip(seq, cs) {
				skipped = true
				continue
			}
			sl := c.slice(cs, loop, seq, start.Add(media), opt.noParams)
			sl.PlayAt = due
			sl.Discontinuity, skipped = skipped, false
			parts := []swarm.Slice{sl}
			if opt.split && sl.Keyframe && len(sl.Packets) > 1 {
				rest := sl
				h := len(sl.Packets) / 2
				sl.Packets, sl.Duration = sl.Packets[:h], 0
				seq++
				rest.Seq, rest.Keyframe, rest.Params, rest.Discontinuity, rest.Packets = seq, false, nil, false, rest.Packets[h:]
				parts = []swarm.Slice{sl, rest}
			}
			for _, sl := range parts {
				if opt.onSlice != nil {
					opt.onSlice(sl)
				}
				srv.WriteSlice(sl)
			}
		}
	}
}

// slice builds the swarm slice for clip slice cs in loop number loop.
func (c *testClip) slice(cs *clipSlice, loop int, seq uint64, due time.Time, noParams bool) swarm.Slice {
	capture := due.Add(-500 * time.Millisecond) // a playout delay behind capture
	sl := swarm.Slice{
		Seq:      seq,
		Capture:  capture,
		Duration: sliceDuration,
		Keyframe: cs.keyframe,
		PlayAt:   due,
	}
	if cs.keyframe && !noParams {
		for _, p := range c.params {
			sl.Params = append(sl.Params, wire.Param{Media: uint8(c.video), Data: p})
		}
	}
	for _, p := range cs.packets {
		pkt := *p.pkt
		pkt.Timestamp += uint32(loop) * c.loopTS[p.media]
		raw, err := pkt.Marshal()
		if err != nil {
			continue // never: the packet was unmarshaled
		}
		sl.Packets = append(sl.Packets, wire.Packet{
			Media:  uint8(p.media),
			Offset: uint32((p.at - cs.at) / time.Microsecond),
			RTP:    raw,
		})
	}
	return sl
}
