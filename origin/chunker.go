package origin

// This file is pure: no clock, no I/O, no goroutines, no randomness.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// DefaultSliceDuration is the slice length a zero ChunkerConfig gets.
const DefaultSliceDuration = 100 * time.Millisecond

// MaxSliceDuration bounds ChunkerConfig.SliceDuration.
const MaxSliceDuration = 10 * time.Second

// ErrChunkerConfig wraps every error NewChunker returns.
var ErrChunkerConfig = errors.New("origin: invalid chunker configuration")

// ChunkerConfig configures a Chunker. The zero value of each optional
// field selects its default.
type ChunkerConfig struct {
	// Channel names the channel in every chunk (1..wire.MaxChannelLen
	// bytes). Required.
	Channel string
	// Stripes is K, the number of chunks per slice (1..wire.MaxStripes).
	// Default 1.
	Stripes int
	// SliceDuration is the target slice length (up to MaxSliceDuration).
	// Default DefaultSliceDuration.
	SliceDuration time.Duration
	// SliceCap closes a slice early, before the packet that would take
	// it over SliceCap × the mean slice size (the stream's rate over the
	// last capRateWindow of capture × SliceDuration); the next slice
	// continues it: it gets the same capture time, and the slice it
	// continues a Duration of 0. A keyframe's picture (several times a
	// mean slice) then travels as several smaller chunks per stripe
	// that follow each other down the trees, instead of one big chunk
	// that every hop must receive whole before it forwards it. Peers
	// that know (internal/swarm) predict a continuation's capture from
	// the duration and start a viewer only with the whole picture; older
	// ones play continuations as ordinary slices. 0 selects
	// DefaultSliceCap; negative never closes a slice by size.
	SliceCap float64
}

// DefaultSliceCap is the SliceCap a zero ChunkerConfig gets. Measured
// in the simulator (2,000 viewers joining in 10 s, 60 s, 4 Mbit/s, a
// keyframe slice three times another, seed 1): lag p95 1,499 -> 1,265 ms,
// stalls 427 -> 170.
const DefaultSliceCap = 1.5

// MaxSliceCap bounds ChunkerConfig.SliceCap.
const MaxSliceCap = 100

// capRateWindow is how much capture time of finished slices the chunker
// measures the stream's rate over for SliceCap; minRateSpan is the
// least it needs before it closes any slice by size.
const (
	capRateWindow = 5 * time.Second
	minRateSpan   = time.Second
)

func (c *ChunkerConfig) validate() error {
	if c.Stripes == 0 {
		c.Stripes = 1
	}
	if c.SliceDuration == 0 {
		c.SliceDuration = DefaultSliceDuration
	}
	if c.SliceCap == 0 {
		c.SliceCap = DefaultSliceCap
	}
	switch {
	case c.SliceCap > MaxSliceCap || c.SliceCap > 0 && c.SliceCap < 0.25 || math.IsNaN(c.SliceCap):
		return fmt.Errorf("%w: slice cap must be 0.25 to %d times the mean slice (negative: none), got %v", ErrChunkerConfig, MaxSliceCap, c.SliceCap)
	case c.Channel == "" || len(c.Channel) > wire.MaxChannelLen:
		return fmt.Errorf("%w: channel name must be 1 to %d bytes, got %q", ErrChunkerConfig, wire.MaxChannelLen, c.Channel)
	case c.Stripes < 1 || c.Stripes > wire.MaxStripes:
		return fmt.Errorf("%w: stripes must be 1 to %d, got %d", ErrChunkerConfig, wire.MaxStripes, c.Stripes)
	case c.SliceDuration < time.Millisecond || c.SliceDuration > MaxSliceDuration:
		return fmt.Errorf("%w: slice duration must be 1ms to %v, got %v", ErrChunkerConfig, MaxSliceDuration, c.SliceDuration)
	}
	return nil
}

// Codec families the chunker looks inside.
const (
	codecOpaque = iota
	codecH264
	codecH265
	codecAAC // MPEG-4 audio, AAC-hbr packetization (fragmentAAC)
)

// Limits that force a new slice so every chunk stays encodable.
const (
	maxSliceBytesPerStripe = wire.MaxChunkLen / 2
	maxPacketsPerStripe    = wire.MaxPackets
)

// mediaState is what the chunker knows about one media of the description.
type mediaState struct {
	video  bool
	codecs map[uint8]int // payload type → codec family
	// params are the media's current parameter sets in decoding order
	// (H.264: SPS, PPS; H.265: VPS, SPS, PPS), from the SDP, replaced by
	// in-band ones as they are seen. Entries may be nil.
	params [3][]byte

	// Access-unit tracking (video only).
	seen       bool
	lastTS     uint32
	lastMarker bool
	auKey      bool   // the current access unit has been found to be a keyframe
	auSlice    uint64 // serial of the slice holding the access unit's first packet
	auStart    int    // index of that packet in the slice
	// seqShift is added to the media's RTP sequence numbers: the packets
	// that fragmenting added so far (see fragmentH264).
	seqShift uint16
}

type pendingPacket struct {
	media   uint8
	capture time.Time
	rtp     []byte
}

// openSlice is the slice being filled.
type openSlice struct {
	serial   uint64
	seq      uint64
	capture  time.Time
	keyframe bool
	packets  []pendingPacket
	bytes    int
}

// Chunker cuts a live stream into time slices and deals each slice's RTP
// packets among K stripes, producing unsigned chunks. It is pure (no
// clock, no I/O) and not safe for concurrent use.
//
// A slice starts with the first packet whose capture time is at least
// SliceDuration after the slice's start, with a packet that would take
// the slice over its size cap (ChunkerConfig.SliceCap; the new slice
// continues the old one at its capture time), or with the first packet
// of a video access unit that is a keyframe (H.264 IDR, H.265 IRAP), found in
// single-NALU, aggregation (STAP-A, AP) or fragmentation (FU-A, FU) packets.
// Because a keyframe may be recognised only in a later packet of its access
// unit (after an SPS, an SEI or an audio packet), the chunker splits the
// open slice back at the access unit's first packet when that packet is
// still in it. Keyframe slices carry the parameter sets of every H.264 and
// H.265 media: the latest in-band ones, else the SDP's.
type Chunker struct {
	cfg     ChunkerConfig
	medias  []mediaState
	cur     *openSlice
	seq     uint64 // last slice sequence number handed out
	serials uint64
	dropped int
	capped  int // slices SliceCap closed
	// recent holds the finished slices of the last capRateWindow of
	// capture, oldest first, and recentBytes their bytes: the stream's
	// rate for SliceCap.
	recent      []sliceSize
	recentBytes int
}

// sliceSize is a finished slice's capture, duration and bytes.
type sliceSize struct {
	capture time.Time
	dur     time.Duration
	bytes   int
}

// NewChunker returns a chunker for a stream described by desc.
func NewChunker(cfg ChunkerConfig, desc *description.Session) (*Chunker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if desc == nil || len(desc.Medias) == 0 {
		return nil, fmt.Errorf("%w: the stream description has no media", ErrChunkerConfig)
	}
	if len(desc.Medias) > math.MaxUint8+1 {
		return nil, fmt.Errorf("%w: %d medias, at most %d supported", ErrChunkerConfig, len(desc.Medias), math.MaxUint8+1)
	}
	c := &Chunker{cfg: cfg, medias: make([]mediaState, len(desc.Medias))}
	for i, m := range desc.Medias {
		ms := &c.medias[i]
		ms.codecs = make(map[uint8]int, len(m.Formats))
		for _, f := range m.Formats {
			switch f := f.(type) {
			case *format.H264:
				ms.video = true
				ms.codecs[f.PayloadTyp] = codecH264
				ms.params = [3][]byte{bytes.Clone(f.SPS), bytes.Clone(f.PPS)}
			case *format.H265:
				ms.video = true
				ms.codecs[f.PayloadTyp] = codecH265
				ms.params = [3][]byte{bytes.Clone(f.VPS), bytes.Clone(f.SPS), bytes.Clone(f.PPS)}
			case *format.MPEG4Audio:
				if f.SizeLength == 13 && f.IndexLength == 3 && f.IndexDeltaLength == 3 {
					ms.codecs[f.PayloadTyp] = codecAAC
				}
			}
		}
	}
	return c, nil
}

// Config returns the chunker's configuration with defaults filled in.
func (c *Chunker) Config() ChunkerConfig { return c.cfg }

// Dropped counts packets Push ignored because they were malformed (unknown
// media, no RTP packet, or unmarshalable).
func (c *Chunker) Dropped() int { return c.dropped }

// Capped counts the slices the size cap (ChunkerConfig.SliceCap) closed
// early, each continued by the next.
func (c *Chunker) Capped() int { return c.capped }

// Push adds one packet. It returns the chunks of the slice this packet
// completed (K chunks, stripe order), or nil. Packets must be pushed in
// the order they were captured.
func (c *Chunker) Push(p Packet) []*wire.Chunk {
	if p.Media < 0 || p.Media >= len(c.medias) || p.RTP == nil {
		c.dropped++
		return nil
	}
	ms := &c.medias[p.Media]
	q := *p.RTP
	q.SequenceNumber += ms.seqShift
	raw, err := q.Marshal()
	if err != nil {
		c.dropped++
		return nil
	}
	raws := [][]byte{raw}
	size := len(raw)

	var out []*wire.Chunk
	newAU, key := false, false
	codec := ms.codecs[p.RTP.PayloadType]
	if codec == codecAAC && len(raw) > MaxRTPPacket {
		if frags := fragmentAAC(&q, MaxRTPPacket); frags != nil {
			raws, size = frags, sum(frags)
			ms.seqShift += uint16(len(frags) - 1)
		}
	}
	if ms.video {
		newAU = !ms.seen || p.RTP.Timestamp != ms.lastTS || ms.lastMarker
		ms.seen, ms.lastTS, ms.lastMarker = true, p.RTP.Timestamp, p.RTP.Marker
		if newAU {
			ms.auKey = false
		}
		switch codec {
		case codecH264:
			key = scanH264(p.RTP.Payload, &ms.params)
			if len(raw) > MaxRTPPacket {
				if frags := fragmentH264(&q, MaxRTPPacket); frags != nil {
					raws, size = frags, sum(frags)
					ms.seqShift += uint16(len(frags) - 1)
				}
			}
		case codecH265:
			key = scanH265(p.RTP.Payload, &ms.params)
		}
	}

	switch {
	case key && !ms.auKey:
		ms.auKey = true
		switch {
		case !newAU && c.cur != nil && ms.auSlice == c.cur.serial && ms.auStart == 0:
			c.cur.keyframe = true
		case !newAU && c.cur != nil && ms.auSlice == c.cur.serial:
			out = c.split(ms.auStart)
		default:
			out = c.start(p.Capture, true)
		}
	case c.cur == nil,
		!p.Capture.Before(c.cur.capture.Add(c.cfg.SliceDuration)),
		len(c.cur.packets)+len(raws) > maxPacketsPerStripe*c.cfg.Stripes,
		c.cur.bytes+size > maxSliceBytesPerStripe*c.cfg.Stripes:
		out = c.start(p.Capture, false)
	case c.cur.bytes > 0 && c.cur.bytes+size > c.sizeCap():
		// Over the cap: the rest continues at the same capture.
		c.capped++
		out = c.start(c.cur.capture, false)
	}

	if newAU {
		ms.auSlice = c.cur.serial
		ms.auStart = len(c.cur.packets)
	}
	for _, r := range raws {
		c.cur.packets = append(c.cur.packets, pendingPacket{media: uint8(p.Media), capture: p.Capture, rtp: r})
	}
	c.cur.bytes += size
	return out
}

// Flush completes the open slice, if any, giving it SliceDuration, and
// returns its chunks. The next Push starts a new slice.
func (c *Chunker) Flush() []*wire.Chunk {
	if c.cur == nil {
		return nil
	}
	out := c.finish(c.cur, c.cfg.SliceDuration)
	c.cur = nil
	return out
}

// start completes the open slice and opens a new one at capture.
func (c *Chunker) start(capture time.Time, keyframe bool) []*wire.Chunk {
	var out []*wire.Chunk
	if c.cur != nil {
		out = c.finish(c.cur, capture.Sub(c.cur.capture))
	}
	c.seq++
	c.serials++
	c.cur = &openSlice{serial: c.serials, seq: c.seq, capture: capture, keyframe: keyframe}
	return out
}

// split moves the open slice's packets from index i on into a new keyframe
// slice and completes the rest.
func (c *Chunker) split(i int) []*wire.Chunk {
	old := c.cur
	tail := old.packets[i:]
	old.packets = old.packets[:i:i]
	old.bytes = 0
	for _, p := range old.packets {
		old.bytes += len(p.rtp)
	}
	capture := tail[0].capture
	c.cur = nil
	out := c.finish(old, capture.Sub(old.capture))
	c.start(capture, true)
	for _, p := range tail {
		c.cur.bytes += len(p.rtp)
	}
	c.cur.packets = append(c.cur.packets, tail...)
	// Access units that began in the tail now begin in the new slice.
	for m := range c.medias {
		ms := &c.medias[m]
		if ms.auSlice == old.serial && ms.auStart >= i {
			ms.auSlice, ms.auStart = c.cur.serial, ms.auStart-i
		}
	}
	return out
}

// sizeCap returns the most bytes a slice may hold before SliceCap
// closes it (no limit while the rate is unknown, or without a cap).
func (c *Chunker) sizeCap() int {
	if c.cfg.SliceCap <= 0 || len(c.recent) == 0 {
		return math.MaxInt
	}
	first, last := c.recent[0], c.recent[len(c.recent)-1]
	span := last.capture.Add(last.dur).Sub(first.capture)
	if span < minRateSpan {
		return math.MaxInt
	}
	mean := float64(c.recentBytes) * float64(c.cfg.SliceDuration) / float64(span)
	return max(1, int(c.cfg.SliceCap*mean))
}

// measure adds a finished slice to the rate SliceCap is measured over,
// and forgets the slices captured more than capRateWindow before it.
func (c *Chunker) measure(s *openSlice, d time.Duration) {
	c.recent = append(c.recent, sliceSize{s.capture, d, s.bytes})
	c.recentBytes += s.bytes
	cut := s.capture.Add(-capRateWindow)
	i := 0
	for i < len(c.recent)-1 && c.recent[i].capture.Before(cut) {
		c.recentBytes -= c.recent[i].bytes
		i++
	}
	if i > 0 {
		c.recent = append(c.recent[:0], c.recent[i:]...)
	}
}

// finish turns a slice into its K chunks.
func (c *Chunker) finish(s *openSlice, d time.Duration) []*wire.Chunk {
	c.measure(s, d)
	packets := make([]wire.Packet, len(s.packets))
	for i, p := range s.packets {
		packets[i] = wire.Packet{Media: p.media, Offset: micros(p.capture.Sub(s.capture)), RTP: p.rtp}
	}
	var params []wire.Param
	if s.keyframe {
		for m := range c.medias {
			for _, ps := range c.medias[m].params {
				if len(ps) > 0 && len(ps) <= wire.MaxParamLen && len(params) < wire.MaxParams {
					params = append(params, wire.Param{Media: uint8(m), Data: ps})
				}
			}
		}
	}
	k := c.cfg.Stripes
	out := make([]*wire.Chunk, k)
	for st, pk := range wire.Deal(packets, k) {
		out[st] = &wire.Chunk{
			Channel:  c.cfg.Channel,
			Seq:      s.seq,
			Stripe:   uint8(st),
			Stripes:  uint8(k),
			Capture:  s.capture.UnixNano(),
			Duration: micros(d),
			Keyframe: s.keyframe,
			Params:   params,
			Packets:  pk,
		}
	}
	return out
}

// micros converts d to whole microseconds clamped to a u32.
func micros(d time.Duration) uint32 {
	us := d.Microseconds()
	switch {
	case us < 0:
		return 0
	case us > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(us)
}

// H.264 NAL unit types (RFC 6184).
const (
	h264IDR   = 5
	h264SPS   = 7
	h264PPS   = 8
	h264STAPA = 24
	h264FUA   = 28
)

// scanH264 reports whether an H.264 RTP payload carries the start of an IDR
// slice, and records any SPS or PPS it carries whole in params.
func scanH264(payload []byte, params *[3][]byte) bool {
	if len(payload) == 0 {
		return false
	}
	nalu := func(n []byte) bool {
		if len(n) == 0 {
			return false
		}
		switch n[0] & 0x1f {
		case h264SPS:
			setParam(&params[0], n)
		case h264PPS:
			setParam(&params[1], n)
		case h264IDR:
			return true
		}
		return false
	}
	switch payload[0] & 0x1f {
	case h264STAPA:
		key := false
		for b := payload[1:]; len(b) >= 2; {
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || len(b) < 2+n {
				break
			}
			key = nalu(b[2:2+n]) || key
			b = b[2+n:]
		}
		return key
	case h264FUA:
		return len(payload) >= 2 && payload[1]&0x80 != 0 && payload[1]&0x1f == h264IDR
	default:
		return nalu(payload)
	}
}

// H.265 NAL unit types (RFC 7798).
const (
	h265IRAPFirst = 16
	h265IRAPLast  = 23
	h265VPS       = 32
	h265SPS       = 33
	h265PPS       = 34
	h265AP        = 48
	h265FU        = 49
)

// scanH265 reports whether an H.265 RTP payload carries the start of an
// IRAP picture, and records any VPS, SPS or PPS it carries whole in params.
func scanH265(payload []byte, params *[3][]byte) bool {
	if len(payload) < 2 {
		return false
	}
	isIRAP := func(t byte) bool { return t >= h265IRAPFirst && t <= h265IRAPLast }
	nalu := func(n []byte) bool {
		if len(n) < 2 {
			return false
		}
		switch t := (n[0] >> 1) & 0x3f; {
		case t == h265VPS:
			setParam(&params[0], n)
		case t == h265SPS:
			setParam(&params[1], n)
		case t == h265PPS:
			setParam(&params[2], n)
		case isIRAP(t):
			return true
		}
		return false
	}
	switch (payload[0] >> 1) & 0x3f {
	case h265AP:
		// Without sprop-max-don-diff there are no DONL/DOND fields.
		key := false
		for b := payload[2:]; len(b) >= 2; {
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || len(b) < 2+n {
				break
			}
			key = nalu(b[2:2+n]) || key
			b = b[2+n:]
		}
		return key
	case h265FU:
		return len(payload) >= 3 && payload[2]&0x80 != 0 && isIRAP(payload[2]&0x3f)
	default:
		return nalu(payload)
	}
}

// setParam stores a copy of n in *dst unless it is already there.
func setParam(dst *[]byte, n []byte) {
	if !bytes.Equal(*dst, n) {
		*dst = bytes.Clone(n)
	}
}

// sum is the total length of bs.
func sum(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n
}
