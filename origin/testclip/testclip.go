// Package testclip holds swarmtv's bundled test clip and plays it as a live
// RTP source.
//
// The clip (testdata/clip.ts, embedded) is 10 s of 1280x720 30 fps H.264
// High (a keyframe every 30 frames, no B-frames, so RTP order is decode
// order) and 48 kHz mono AAC-LC, muxed as MPEG-TS, about 1.5 MB. It was
// generated once with ffmpeg 5.1:
//
//	ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=30 \
//	  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 10 \
//	  -map 0:v -map 1:a \
//	  -c:v libx264 -profile:v high -preset veryfast -tune zerolatency \
//	  -bf 0 -g 30 -keyint_min 30 -sc_threshold 0 \
//	  -b:v 1000k -maxrate 1000k -bufsize 1000k -pix_fmt yuv420p \
//	  -c:a aac -b:a 64k -ac 1 -f mpegts clip.ts
//
// [Load] demuxes the clip once and packetizes it with gortsplib's RTP
// encoders (RFC 6184 packetization mode 1 for H.264, RFC 3640 AAC-hbr with
// one access unit per packet). [Clip.Run] then loops it forever: RTP
// sequence numbers and timestamps keep increasing across the loop boundary
// (the loop period is the video's duration, so A/V sync never drifts), and
// every packet is stamped with the wall-clock time it is emitted at.
//
// Run paces packets in real time by default; [Options.NoPace] emits them
// as fast as the consumer takes them (for tests), stamping each with the
// time it would have been emitted at.
package testclip

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	"github.com/pion/rtp"
)

//go:embed testdata/clip.ts
var clipTS []byte

// TS returns the embedded MPEG-TS clip. The caller must not modify it.
func TS() []byte { return clipTS }

// DefaultPayloadMaxSize is the RTP payload limit Load uses when given 0: small
// enough for a QUIC datagram.
const DefaultPayloadMaxSize = 1200

// Payload types in the clip's description.
const (
	videoPayloadType = 96
	audioPayloadType = 97
)

// mpegtsClock is the MPEG-TS PTS/DTS clock rate.
const mpegtsClock = 90000

// ErrBadClip means the embedded clip could not be used.
var ErrBadClip = errors.New("testclip: the bundled clip is unusable")

// Packet is one RTP packet of the clip with its capture time.
type Packet struct {
	// Media is the index of the packet's media in Description().Medias.
	Media int
	// RTP is a fresh header each time; its Payload is shared between loops
	// and must not be modified.
	RTP *rtp.Packet
	// Capture is when the packet was emitted (or, without pacing, when it
	// would have been).
	Capture time.Time
}

// item is one RTP packet of one loop, at its media time.
type item struct {
	media int
	at    int64 // 90 kHz ticks after the loop's start
	ts    uint32
	hdr   rtp.Header // template; SSRC, sequence number and timestamp are rewritten
	pay   []byte
}

type track struct {
	clock    int64 // RTP clock rate
	perLoop  int64 // RTP ticks per loop
	ssrc     uint32
	seq      uint16
	tsOrigin uint32
}

// Clip is the demuxed, packetized clip. It is immutable and safe for
// concurrent use.
type Clip struct {
	video  *format.H264
	audio  *format.MPEG4Audio
	items  []item // one loop, sorted by time
	period int64  // 90 kHz ticks per loop
	clocks []int64
}

// Load demuxes and packetizes the embedded clip with RTP payloads of at
// most payloadMax bytes (0 means DefaultPayloadMaxSize).
func Load(payloadMax int) (*Clip, error) {
	if payloadMax == 0 {
		payloadMax = DefaultPayloadMaxSize
	}
	if payloadMax < 100 {
		return nil, fmt.Errorf("testclip: payload limit %d is too small (need at least 100 bytes)", payloadMax)
	}
	return load(clipTS, payloadMax)
}

type au struct {
	pts, dts int64
	nalus    [][]byte // video
	aac      []byte   // audio
}

func load(ts []byte, payloadMax int) (*Clip, error) {
	r := &mpegts.Reader{R: bytes.NewReader(ts)}
	if err := r.Initialize(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadClip, err)
	}
	var vtrack, atrack *mpegts.Track
	var acfg *mpeg4audio.AudioSpecificConfig
	for _, t := range r.Tracks() {
		switch c := t.Codec.(type) {
		case *mpegts.CodecH264:
			vtrack = t
		case *mpegts.CodecMPEG4Audio:
			atrack = t
			cfg := c.Config
			acfg = &cfg
		}
	}
	if vtrack == nil || atrack == nil {
		return nil, fmt.Errorf("%w: want an H.264 and an AAC track", ErrBadClip)
	}
	var vaus, aaus []au
	var decodeErr error
	r.OnDecodeError(func(err error) {
		if decodeErr == nil {
			decodeErr = err
		}
	})
	r.OnDataH264(vtrack, func(pts, dts int64, nalus [][]byte) error {
		vaus = append(vaus, au{pts: pts, dts: dts, nalus: nalus})
		return nil
	})
	r.OnDataMPEG4Audio(atrack, func(pts int64, frames [][]byte) error {
		for i, f := range frames {
			off := int64(i) * mpeg4audio.SamplesPerAccessUnit * mpegtsClock / int64(acfg.SampleRate)
			aaus = append(aaus, au{pts: pts + off, dts: pts + off, aac: f})
		}
		return nil
	})
	for {
		err := r.Read()
		if err != nil {
			break // io.EOF at the end of the clip
		}
	}
	if decodeErr != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadClip, decodeErr)
	}
	if len(vaus) < 2 || len(aaus) == 0 {
		return nil, fmt.Errorf("%w: too few access units", ErrBadClip)
	}

	c := &Clip{
		video: &format.H264{PayloadTyp: videoPayloadType, PacketizationMode: 1},
		audio: &format.MPEG4Audio{
			PayloadTyp:       audioPayloadType,
			Config:           acfg,
			SizeLength:       13,
			IndexLength:      3,
			IndexDeltaLength: 3,
		},
		clocks: []int64{90000, int64(acfg.SampleRate)},
	}
	for _, a := range vaus {
		for _, n := range a.nalus {
			if len(n) == 0 {
				continue
			}
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				if c.video.SPS == nil {
					c.video.SPS = n
				}
			case h264.NALUTypePPS:
				if c.video.PPS == nil {
					c.video.PPS = n
				}
			}
		}
	}
	if c.video.SPS == nil || c.video.PPS == nil {
		return nil, fmt.Errorf("%w: no SPS/PPS in the video track", ErrBadClip)
	}

	// The loop is the video's duration: first to last DTS plus one frame.
	t0 := min(vaus[0].dts, aaus[0].dts)
	frame := (vaus[len(vaus)-1].dts - vaus[0].dts) / int64(len(vaus)-1)
	c.period = vaus[len(vaus)-1].dts + frame - vaus[0].dts

	venc, err := c.video.CreateEncoder()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadClip, err)
	}
	venc.PayloadMaxSize = payloadMax
	aenc, err := c.audio.CreateEncoder()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadClip, err)
	}
	aenc.PayloadMaxSize = payloadMax

	for _, a := range vaus {
		at := a.dts - t0
		if at >= c.period || len(a.nalus) == 0 {
			continue
		}
		pkts, err := venc.Encode(a.nalus)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadClip, err)
		}
		// H.264 RTP timestamps are presentation times; without B-frames
		// they equal decode times.
		rts := uint32(a.pts - t0)
		for _, p := range pkts {
			c.items = append(c.items, item{media: 0, at: at, ts: rts, hdr: p.Header, pay: p.Payload})
		}
	}
	for _, a := range aaus {
		at := a.pts - t0
		if at >= c.period || len(a.aac) == 0 {
			continue
		}
		pkts, err := aenc.Encode([][]byte{a.aac})
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadClip, err)
		}
		rts := uint32(at * int64(acfg.SampleRate) / mpegtsClock)
		for _, p := range pkts {
			c.items = append(c.items, item{media: 1, at: at, ts: rts + p.Timestamp, hdr: p.Header, pay: p.Payload})
		}
	}
	sort.SliceStable(c.items, func(i, j int) bool { return c.items[i].at < c.items[j].at })
	return c, nil
}

var loadDefault = sync.OnceValues(func() (*Clip, error) { return Load(0) })

// Default returns the clip loaded with DefaultPayloadMaxSize, loading it on
// first use.
func Default() (*Clip, error) { return loadDefault() }

// Description returns a fresh description of the clip's two medias: video
// (H.264 with SPS and PPS in sprop-parameter-sets) at index 0 and audio
// (MPEG-4 AAC) at index 1.
func (c *Clip) Description() *description.Session {
	v := &format.H264{
		PayloadTyp:        c.video.PayloadTyp,
		SPS:               bytes.Clone(c.video.SPS),
		PPS:               bytes.Clone(c.video.PPS),
		PacketizationMode: c.video.PacketizationMode,
	}
	cfg := *c.audio.Config
	a := &format.MPEG4Audio{
		PayloadTyp:       c.audio.PayloadTyp,
		Config:           &cfg,
		SizeLength:       c.audio.SizeLength,
		IndexLength:      c.audio.IndexLength,
		IndexDeltaLength: c.audio.IndexDeltaLength,
	}
	return &description.Session{
		Title: "swarmtv test clip",
		Medias: []*description.Media{
			{Type: description.MediaTypeVideo, Formats: []format.Format{v}},
			{Type: description.MediaTypeAudio, Formats: []format.Format{a}},
		},
	}
}

// Period is the length of one loop of the clip.
func (c *Clip) Period() time.Duration {
	return time.Duration(c.period) * time.Second / mpegtsClock
}

// BitRate is the clip's rate in bit/s as RTP packets (headers and
// payloads) over one loop.
func (c *Clip) BitRate() int64 {
	var n int64
	for _, it := range c.items {
		n += int64(it.hdr.MarshalSize() + len(it.pay))
	}
	return n * 8 * int64(time.Second) / int64(c.Period())
}

// PacketsPerLoop is how many RTP packets one loop emits.
func (c *Clip) PacketsPerLoop() int { return len(c.items) }

// Options tune Run. The zero value plays forever in real time.
type Options struct {
	// Now reads the wall clock; nil means time.Now.
	Now func() time.Time
	// NoPace emits packets without waiting; each is stamped with the time
	// it would have been emitted at in real time (Now() at the start plus
	// its media time).
	NoPace bool
	// Loops stops Run (returning nil) after that many loops; 0 means
	// forever.
	Loops int
	// Rand draws the SSRCs and the initial sequence numbers and timestamps;
	// nil means a random source.
	Rand *rand.Rand
}

// Run plays the clip as a live stream: it calls emit for every RTP packet
// in order until ctx ends (returning ctx.Err()) or opts.Loops loops have
// been played (returning nil). emit is called from Run's goroutine.
func (c *Clip) Run(ctx context.Context, opts Options, emit func(Packet)) error {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	tracks := make([]track, len(c.clocks))
	for i := range tracks {
		tracks[i] = track{
			clock:    c.clocks[i],
			perLoop:  c.period * c.clocks[i] / mpegtsClock,
			ssrc:     rnd.Uint32(),
			seq:      uint16(rnd.Uint32()),
			tsOrigin: rnd.Uint32(),
		}
	}
	start := now()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	lastWait := int64(-1)
	for loop := int64(0); opts.Loops == 0 || loop < int64(opts.Loops); loop++ {
		for i := range c.items {
			it := &c.items[i]
			at := loop*c.period + it.at
			due := start.Add(time.Duration(at) * time.Second / mpegtsClock)
			if err := ctx.Err(); err != nil {
				return err
			}
			capture := due
			if !opts.NoPace {
				if at != lastWait {
					lastWait = at
					if d := due.Sub(now()); d > 0 {
						if timer == nil {
							timer = time.NewTimer(d)
						} else {
							timer.Reset(d)
						}
						select {
						case <-ctx.Done():
							return ctx.Err()
						case <-timer.C:
						}
					}
				}
				capture = now()
			}
			tr := &tracks[it.media]
			h := it.hdr
			h.SSRC = tr.ssrc
			h.SequenceNumber = tr.seq
			tr.seq++
			h.Timestamp = tr.tsOrigin + uint32(loop*tr.perLoop) + it.ts
			emit(Packet{Media: it.media, RTP: &rtp.Packet{Header: h, Payload: it.pay}, Capture: capture})
		}
	}
	return nil
}
