package origin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/swarmtv/swarmtv/internal/wire"
	"github.com/swarmtv/swarmtv/origin/testclip"
)

// clipPackets returns loops loops of the bundled clip as ingested packets,
// with capture times at real-time pace from a fixed start.
func clipPackets(t *testing.T, loops int) (*description.Session, []Packet) {
	t.Helper()
	clip, err := testclip.Default()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_700_000_000, 0)
	var pkts []Packet
	err = clip.Run(context.Background(), testclip.Options{
		NoPace: true, Loops: loops, Now: func() time.Time { return start },
		Rand: rand.New(rand.NewPCG(7, 8)),
	}, func(p testclip.Packet) {
		pkts = append(pkts, Packet{Media: p.Media, RTP: p.RTP, Capture: p.Capture})
	})
	if err != nil {
		t.Fatal(err)
	}
	return clip.Description(), pkts
}

// slices groups chunks by slice, checking each slice has its K chunks in
// stripe order and that slices are consecutive from 1.
func groupSlices(t *testing.T, chunks []*wire.Chunk, k int) [][]*wire.Chunk {
	t.Helper()
	if len(chunks)%k != 0 {
		t.Fatalf("%d chunks is not a multiple of %d stripes", len(chunks), k)
	}
	var out [][]*wire.Chunk
	for i := 0; i < len(chunks); i += k {
		s := chunks[i : i+k]
		want := uint64(len(out) + 1)
		for st, c := range s {
			if c.Seq != want || int(c.Stripe) != st || int(c.Stripes) != k || c.Channel != "ch" {
				t.Fatalf("chunk %d: seq %d stripe %d/%d channel %q, want seq %d stripe %d/%d channel ch", i+st, c.Seq, c.Stripe, c.Stripes, c.Channel, want, st, k)
			}
			if c.Capture != s[0].Capture || c.Duration != s[0].Duration || c.Keyframe != s[0].Keyframe {
				t.Fatalf("slice %d: chunks disagree on capture, duration or keyframe", want)
			}
		}
		out = append(out, s)
	}
	return out
}

func h264Type(payload []byte) byte { return payload[0] & 0x1f }

// auHasIDR reports whether any packet of the clip with this timestamp
// carries IDR data.
func payloadHasIDR(p []byte) bool {
	var params [3][]byte
	return scanH264(p, &params)
}

func TestChunkerOnClip(t *testing.T) {
	const k = 4
	desc, pkts := clipPackets(t, 2)
	ch, err := NewChunker(ChunkerConfig{Channel: "ch", Stripes: k}, desc)
	if err != nil {
		t.Fatal(err)
	}
	var chunks []*wire.Chunk
	for _, p := range pkts {
		chunks = append(chunks, ch.Push(p)...)
	}
	chunks = append(chunks, ch.Flush()...)
	if ch.Dropped() != 0 {
		t.Fatalf("dropped %d packets", ch.Dropped())
	}
	slices := groupSlices(t, chunks, k)

	_, key, _ := ed25519.GenerateKey(nil)
	var merged []wire.Packet
	var sliceOf []int64 // capture of each merged packet's slice
	var keyCaptures []int64
	prevCapture := int64(0)
	idrTS := map[uint32]bool{} // video timestamps of IDR access units
	for _, p := range pkts {
		if p.Media == 0 && payloadHasIDR(p.RTP.Payload) {
			idrTS[p.RTP.Timestamp] = true
		}
	}
	for i, s := range slices {
		c := s[0]
		if c.Capture < prevCapture {
			t.Fatalf("slice %d: capture went back", c.Seq)
		}
		if i > 0 && uint32((c.Capture-prevCapture)/1000) != slices[i-1][0].Duration {
			t.Fatalf("slice %d: duration %dµs, but the next slice starts %dµs later", c.Seq-1, slices[i-1][0].Duration, (c.Capture-prevCapture)/1000)
		}
		if c.Duration > uint32((DefaultSliceDuration + 34*time.Millisecond).Microseconds()) {
			t.Fatalf("slice %d lasts %dµs", c.Seq, c.Duration)
		}
		prevCapture = c.Capture
		ps, err := wire.Merge(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Offset >= uint32(DefaultSliceDuration.Microseconds()) {
				t.Fatalf("slice %d holds a packet %dµs after its start", c.Seq, p.Offset)
			}
		}
		if len(ps) == 0 {
			t.Fatalf("slice %d is empty", c.Seq)
		}
		if c.Keyframe {
			keyCaptures = append(keyCaptures, c.Capture)
			var sps, pps bool
			for _, prm := range c.Params {
				if prm.Media != 0 {
					t.Fatalf("slice %d: parameter set for media %d", c.Seq, prm.Media)
				}
				sps = sps || h264Type(prm.Data) == 7
				pps = pps || h264Type(prm.Data) == 8
			}
			if !sps || !pps {
				t.Fatalf("keyframe slice %d lacks SPS or PPS: %v", c.Seq, c.Params)
			}
			// The slice starts with its IDR access unit: its first video
			// packet has an IDR timestamp, and the previous slice holds
			// no packet of that access unit.
			first := firstVideo(t, ps)
			if first == nil || !idrTS[first.Timestamp] {
				t.Fatalf("keyframe slice %d does not start at an IDR access unit", c.Seq)
			}
			if i > 0 {
				prev, _ := wire.Merge(slices[i-1])
				for _, p := range prev {
					var r rtp.Packet
					if p.Media == 0 && r.Unmarshal(p.RTP) == nil && r.Timestamp == first.Timestamp {
						t.Fatalf("IDR access unit of slice %d begins in slice %d", c.Seq, c.Seq-1)
					}
				}
			}
		} else if len(c.Params) != 0 {
			t.Fatalf("non-keyframe slice %d carries parameter sets", c.Seq)
		}
		for _, chunk := range s {
			raw, err := chunk.Sign(nil, key)
			if err != nil {
				t.Fatalf("slice %d: %v", c.Seq, err)
			}
			if _, err := wire.ParseChunk(raw); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range ps {
			merged = append(merged, p)
			sliceOf = append(sliceOf, c.Capture)
		}
	}

	// Every packet comes back, in order, with its capture offset; H.264
	// packets over MaxRTPPacket come back as FU-A fragments of the same
	// NAL units, and sequence numbers stay continuous per media.
	var inVideo, outVideo [][]byte
	var inOther []Packet
	var outOther []wire.Packet
	var otherSlice []int64
	big := 0
	for _, p := range pkts {
		if p.Media == 0 {
			inVideo = append(inVideo, p.RTP.Payload)
			if p.RTP.MarshalSize() > MaxRTPPacket {
				big++
			}
			continue
		}
		inOther = append(inOther, p)
	}
	lastSeq := map[uint8]uint16{}
	for i, m := range merged {
		if len(m.RTP) > MaxRTPPacket {
			t.Fatalf("packet %d of %d bytes, over %d", i, len(m.RTP), MaxRTPPacket)
		}
		var r rtp.Packet
		if err := r.Unmarshal(m.RTP); err != nil {
			t.Fatal(err)
		}
		if s, ok := lastSeq[m.Media]; ok && r.SequenceNumber != s+1 {
			t.Fatalf("packet %d media %d: seq %d after %d", i, m.Media, r.SequenceNumber, s)
		}
		lastSeq[m.Media] = r.SequenceNumber
		if m.Media == 0 {
			outVideo = append(outVideo, r.Payload)
			continue
		}
		outOther = append(outOther, m)
		otherSlice = append(otherSlice, sliceOf[i])
	}
	if big == 0 {
		t.Fatal("the clip has no H.264 packet over MaxRTPPacket: fragmenting is untested")
	}
	inUnits, err := h264Units(inVideo)
	if err != nil {
		t.Fatal(err)
	}
	outUnits, err := h264Units(outVideo)
	if err != nil {
		t.Fatal(err)
	}
	if len(inUnits) != len(outUnits) {
		t.Fatalf("%d NAL units in, %d out", len(inUnits), len(outUnits))
	}
	for i := range inUnits {
		if !bytes.Equal(inUnits[i], outUnits[i]) {
			t.Fatalf("NAL unit %d differs after fragmenting", i)
		}
	}
	t.Logf("%d video packets over %d bytes became %d packets (%d NAL units)", big, MaxRTPPacket, len(outVideo)-len(inVideo)+big, len(inUnits))
	if len(outOther) != len(inOther) {
		t.Fatalf("merged %d audio packets, pushed %d", len(outOther), len(inOther))
	}
	for i, p := range inOther {
		raw, _ := p.RTP.Marshal()
		if !bytes.Equal(raw, outOther[i].RTP) || int(outOther[i].Media) != p.Media {
			t.Fatalf("audio packet %d differs after the round trip", i)
		}
		if want := uint32((p.Capture.UnixNano() - otherSlice[i]) / 1000); outOther[i].Offset != want {
			t.Fatalf("audio packet %d: offset %d, want %d", i, outOther[i].Offset, want)
		}
	}

	// A keyframe slice every second: 10 per loop.
	if len(keyCaptures) != 20 {
		t.Fatalf("%d keyframe slices in 2 loops, want 20", len(keyCaptures))
	}
	for i := 1; i < len(keyCaptures); i++ {
		if d := time.Duration(keyCaptures[i] - keyCaptures[i-1]); d < 990*time.Millisecond || d > 1010*time.Millisecond {
			t.Fatalf("keyframe slices %v apart", d)
		}
	}
	if n := len(slices); n < 190 || n > 230 {
		t.Fatalf("%d slices in 20 s", n)
	}
}

func firstVideo(t *testing.T, ps []wire.Packet) *rtp.Packet {
	for _, p := range ps {
		if p.Media == 0 {
			var r rtp.Packet
			if err := r.Unmarshal(p.RTP); err != nil {
				t.Fatal(err)
			}
			return &r
		}
	}
	return nil
}

// Synthetic streams.

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

func h264Desc(sps, pps []byte) *description.Session {
	return &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, SPS: sps, PPS: pps, PacketizationMode: 1}}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{&format.Opus{PayloadTyp: 111, ChannelCount: 2}}},
	}}
}

type stream struct {
	t0  time.Time
	seq [2]uint16
}

func (s *stream) pkt(media int, ms int, ts uint32, marker bool, payload ...byte) Packet {
	s.seq[media]++
	pt := uint8(96)
	if media == 1 {
		pt = 111
	}
	return Packet{
		Media:   media,
		Capture: s.t0.Add(time.Duration(ms) * time.Millisecond),
		RTP: &rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: s.seq[media], Timestamp: ts, Marker: marker},
			Payload: payload,
		},
	}
}

func pushAll(c *Chunker, pkts ...Packet) (out []*wire.Chunk) {
	for _, p := range pkts {
		out = append(out, c.Push(p)...)
	}
	return append(out, c.Flush()...)
}

func stap(nalus ...[]byte) []byte {
	b := []byte{24}
	for _, n := range nalus {
		b = append(b, byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

func TestChunkerKeyframeForms(t *testing.T) {
	idr := []byte{0x65, 0x88, 0x80}
	nonIDR := []byte{0x41, 0x9a}
	fuaIDRStart := []byte{0x7c, 0x85, 0x88}
	fuaIDRMid := []byte{0x7c, 0x05, 0x11}
	fuaIDREnd := []byte{0x7c, 0x45, 0x12}
	sei := []byte{0x06, 0x05, 0x01}
	for _, tc := range []struct {
		name string
		pkts func(s *stream) []Packet
		// keyframe flag and packet count of each slice
		want []string
	}{
		{"single IDR NALU", func(s *stream) []Packet {
			return []Packet{
				s.pkt(0, 0, 0, true, nonIDR...),
				s.pkt(0, 33, 3000, true, idr...),
				s.pkt(0, 66, 6000, true, nonIDR...),
			}
		}, []string{"-1", "K2"}},
		{"FU-A IDR", func(s *stream) []Packet {
			return []Packet{
				s.pkt(0, 0, 0, true, nonIDR...),
				s.pkt(0, 33, 3000, false, fuaIDRStart...),
				s.pkt(0, 33, 3000, false, fuaIDRMid...),
				s.pkt(0, 33, 3000, true, fuaIDREnd...),
			}
		}, []string{"-1", "K3"}},
		{"STAP-A with SPS, PPS and IDR", func(s *stream) []Packet {
			return []Packet{
				s.pkt(0, 0, 0, true, nonIDR...),
				s.pkt(0, 33, 3000, true, stap(testSPS, testPPS, idr)...),
			}
		}, []string{"-1", "K1"}},
		{"IDR found after SEI and audio", func(s *stream) []Packet {
			return []Packet{
				s.pkt(0, 0, 0, true, nonIDR...),
				s.pkt(1, 10, 480, false, 0xfc),
				s.pkt(0, 33, 3000, false, sei...),
				s.pkt(1, 34, 960, false, 0xfc),
				s.pkt(0, 35, 3000, false, stap(testSPS, testPPS)...),
				s.pkt(0, 36, 3000, true, fuaIDRStart...),
				s.pkt(0, 66, 6000, true, nonIDR...),
			}
		}, []string{"-2", "K5"}},
		{"IDR as the stream's first packet", func(s *stream) []Packet {
			return []Packet{
				s.pkt(0, 0, 0, true, idr...),
				s.pkt(1, 5, 0, false, 0xfc),
				s.pkt(0, 33, 3000, true, nonIDR...),
			}
		}, []string{"K3"}},
		{"audio never starts a keyframe slice", func(s *stream) []Packet {
			return []Packet{
				s.pkt(1, 0, 0, false, 0x65, 0x88),
				s.pkt(1, 20, 960, false, 0x65, 0x88),
			}
		}, []string{"-2"}},
		{"time splits", func(s *stream) []Packet {
			return []Packet{
				s.pkt(0, 0, 0, true, nonIDR...),
				s.pkt(0, 99, 9000, true, nonIDR...),
				s.pkt(1, 100, 960, false, 0xfc),
				s.pkt(0, 133, 12000, true, nonIDR...),
				s.pkt(0, 250, 24000, true, nonIDR...),
			}
		}, []string{"-2", "-2", "-1"}},
		{"one keyframe slice per access unit", func(s *stream) []Packet {
			return []Packet{
				s.pkt(0, 0, 0, false, idr...),
				s.pkt(0, 1, 0, true, idr...),
				s.pkt(0, 33, 3000, true, nonIDR...),
			}
		}, []string{"K3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewChunker(ChunkerConfig{Channel: "ch", Stripes: 2}, h264Desc(testSPS, testPPS))
			if err != nil {
				t.Fatal(err)
			}
			s := &stream{t0: time.Unix(100, 0)}
			slices := groupSlices(t, pushAll(c, tc.pkts(s)...), 2)
			var got []string
			for _, sl := range slices {
				ps, err := wire.Merge(sl)
				if err != nil {
					t.Fatal(err)
				}
				flag := "-"
				if sl[0].Keyframe {
					flag = "K"
				}
				got = append(got, flag+string(rune('0'+len(ps))))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("slices %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("slices %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestChunkerParams(t *testing.T) {
	idr := []byte{0x65, 0x88}
	inbandSPS := []byte{0x67, 0x64, 0x00, 0x28}
	t.Run("from SDP", func(t *testing.T) {
		c, _ := NewChunker(ChunkerConfig{Channel: "ch"}, h264Desc(testSPS, testPPS))
		s := &stream{t0: time.Unix(100, 0)}
		out := pushAll(c, s.pkt(0, 0, 0, true, idr...))
		if len(out) != 1 || !out[0].Keyframe || len(out[0].Params) != 2 ||
			!bytes.Equal(out[0].Params[0].Data, testSPS) || !bytes.Equal(out[0].Params[1].Data, testPPS) {
			t.Fatalf("got %+v", out)
		}
	})
	t.Run("in-band replaces SDP", func(t *testing.T) {
		c, _ := NewChunker(ChunkerConfig{Channel: "ch"}, h264Desc(testSPS, testPPS))
		s := &stream{t0: time.Unix(100, 0)}
		out := pushAll(c,
			s.pkt(0, 0, 0, false, stap(inbandSPS, testPPS)...),
			s.pkt(0, 0, 0, true, idr...))
		if len(out) != 1 || len(out[0].Params) != 2 || !bytes.Equal(out[0].Params[0].Data, inbandSPS) {
			t.Fatalf("got %+v", out)
		}
	})
	t.Run("none known", func(t *testing.T) {
		c, _ := NewChunker(ChunkerConfig{Channel: "ch"}, h264Desc(nil, nil))
		s := &stream{t0: time.Unix(100, 0)}
		out := pushAll(c, s.pkt(0, 0, 0, true, idr...))
		if len(out) != 1 || !out[0].Keyframe || len(out[0].Params) != 0 {
			t.Fatalf("got %+v", out)
		}
	})
}

func TestChunkerH265(t *testing.T) {
	vps := []byte{0x40, 0x01, 0x0c}
	sps := []byte{0x42, 0x01, 0x01}
	pps := []byte{0x44, 0x01, 0xc1}
	desc := &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H265{PayloadTyp: 96, VPS: vps, SPS: sps, PPS: pps}}},
	}}
	c, err := NewChunker(ChunkerConfig{Channel: "ch"}, desc)
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{t0: time.Unix(100, 0)}
	trail := []byte{0x02, 0x01, 0xaa}           // TRAIL_R
	fuCRAStart := []byte{0x62, 0x01, 0x95, 0x1} // FU, S bit, CRA_NUT (21)
	out := pushAll(c,
		s.pkt(0, 0, 0, true, trail...),
		s.pkt(0, 33, 3000, false, fuCRAStart...),
		s.pkt(0, 33, 3000, true, 0x62, 0x01, 0x55, 0x2),
		s.pkt(0, 66, 6000, true, trail...))
	if len(out) != 2 || out[0].Keyframe || !out[1].Keyframe || len(out[1].Packets) != 3 {
		t.Fatalf("got %d slices: %+v", len(out), out)
	}
	if len(out[1].Params) != 3 || !bytes.Equal(out[1].Params[0].Data, vps) || !bytes.Equal(out[1].Params[2].Data, pps) {
		t.Fatalf("params %+v", out[1].Params)
	}
}

func TestChunkerDurationsAndEmptyStripes(t *testing.T) {
	c, err := NewChunker(ChunkerConfig{Channel: "ch", Stripes: 3, SliceDuration: 50 * time.Millisecond}, h264Desc(testSPS, testPPS))
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{t0: time.Unix(100, 0)}
	out := pushAll(c,
		s.pkt(1, 0, 0, false, 1),
		s.pkt(1, 20, 960, false, 2),
		s.pkt(1, 70, 1920, false, 3))
	if len(out) != 6 {
		t.Fatalf("got %d chunks, want 2 slices of 3", len(out))
	}
	if out[0].Duration != 70_000 || out[3].Duration != 50_000 {
		t.Fatalf("durations %d, %d, want 70000 and 50000 (slice duration for the flushed last)", out[0].Duration, out[3].Duration)
	}
	if len(out[0].Packets) != 1 || len(out[1].Packets) != 1 || len(out[2].Packets) != 0 || out[1].Packets[0].Offset != 20_000 {
		t.Fatalf("bad deal: %+v", out[:3])
	}
	if len(out[4].Packets) != 0 || out[3].Seq != 2 || out[3].Capture != s.t0.Add(70*time.Millisecond).UnixNano() {
		t.Fatalf("bad second slice: %+v", out[3:])
	}
	if c.Flush() != nil {
		t.Fatal("second Flush returned chunks")
	}
}

func TestChunkerBadInput(t *testing.T) {
	c, err := NewChunker(ChunkerConfig{Channel: "ch"}, h264Desc(testSPS, testPPS))
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{t0: time.Unix(100, 0)}
	for _, p := range []Packet{
		{Media: 2, RTP: &rtp.Packet{}, Capture: s.t0},
		{Media: -1, RTP: &rtp.Packet{}, Capture: s.t0},
		{Media: 0, Capture: s.t0},
	} {
		if out := c.Push(p); out != nil {
			t.Fatalf("bad packet produced chunks")
		}
	}
	if c.Dropped() != 3 {
		t.Fatalf("dropped %d, want 3", c.Dropped())
	}
	// Truncated NAL units and aggregation packets are relayed, not parsed.
	out := pushAll(c,
		s.pkt(0, 0, 0, true),
		s.pkt(0, 1, 1, true, 24, 0xff),
		s.pkt(0, 2, 2, true, 28),
		s.pkt(0, 3, 3, true, 24, 0, 0, 0x65))
	if len(out) != 1 || len(out[0].Packets) != 4 {
		t.Fatalf("got %+v", out)
	}
	// Capture times that go backwards give zero offsets, not wrapped ones.
	out = pushAll(c, s.pkt(1, 500, 0, false, 1), s.pkt(1, 490, 0, false, 2))
	if len(out) != 1 || out[0].Packets[1].Offset != 0 {
		t.Fatalf("got %+v", out)
	}
}

func TestChunkerConfigErrors(t *testing.T) {
	desc := h264Desc(testSPS, testPPS)
	for _, tc := range []struct {
		cfg  ChunkerConfig
		desc *description.Session
	}{
		{ChunkerConfig{}, desc},
		{ChunkerConfig{Channel: string(make([]byte, 65))}, desc},
		{ChunkerConfig{Channel: "ch", Stripes: 17}, desc},
		{ChunkerConfig{Channel: "ch", Stripes: -1}, desc},
		{ChunkerConfig{Channel: "ch", SliceDuration: time.Microsecond}, desc},
		{ChunkerConfig{Channel: "ch", SliceDuration: time.Hour}, desc},
		{ChunkerConfig{Channel: "ch", SliceCap: 0.1}, desc},
		{ChunkerConfig{Channel: "ch", SliceCap: 101}, desc},
		{ChunkerConfig{Channel: "ch", SliceCap: math.NaN()}, desc},
		{ChunkerConfig{Channel: "ch"}, nil},
		{ChunkerConfig{Channel: "ch"}, &description.Session{}},
	} {
		if _, err := NewChunker(tc.cfg, tc.desc); !errors.Is(err, ErrChunkerConfig) {
			t.Errorf("NewChunker(%+v) = %v, want ErrChunkerConfig", tc.cfg, err)
		}
	}
	c, err := NewChunker(ChunkerConfig{Channel: "ch"}, desc)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.Config(); cfg.Stripes != 1 || cfg.SliceDuration != DefaultSliceDuration || cfg.SliceCap != DefaultSliceCap {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

// FuzzChunkerPush feeds arbitrary RTP payloads to H.264 and H.265 chunkers:
// they must never panic, and every packet must come out exactly once, in
// order.
func FuzzChunkerPush(f *testing.F) {
	f.Add([]byte{0x65, 0x88}, uint8(0), uint16(10))
	f.Add(stap(testSPS, testPPS, []byte{0x65}), uint8(1), uint16(0))
	f.Add([]byte{24, 0xff, 0xff, 0x65}, uint8(0), uint16(200))
	f.Add([]byte{0x7c, 0x85}, uint8(0), uint16(40))
	f.Add([]byte{0x62, 0x01, 0x93}, uint8(0), uint16(40))
	f.Add([]byte{0x60, 0x01, 0x00, 0x02, 0x26, 0x01}, uint8(0), uint16(40))
	f.Fuzz(func(t *testing.T, payload []byte, split uint8, gapMS uint16) {
		descs := []*description.Session{
			h264Desc(testSPS, testPPS),
			{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H265{PayloadTyp: 96}}}}},
		}
		for di, d := range descs {
			c, err := NewChunker(ChunkerConfig{Channel: "ch", Stripes: 3}, d)
			if err != nil {
				t.Fatal(err)
			}
			s := &stream{t0: time.Unix(100, 0)}
			var in []Packet
			// Cut the payload into packets at split, some sharing a
			// timestamp, spaced gapMS apart.
			n := int(split%8) + 1
			for i := 0; i < 2*n; i++ {
				a, b := len(payload)*i/(2*n), len(payload)*(i+1)/(2*n)
				in = append(in, s.pkt(0, i*int(gapMS), uint32(i/2*3000), i%2 == 1, payload[a:b]...))
			}
			out := pushAll(c, in...)
			var got []wire.Packet
			for _, sl := range groupSlices(t, out, 3) {
				ps, err := wire.Merge(sl)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ps...)
			}
			oversized := false
			for _, p := range in {
				oversized = oversized || p.RTP.MarshalSize() > MaxRTPPacket
			}
			if di == 1 || !oversized {
				// Nothing to fragment (H.265 passes as it is): every
				// packet comes out unchanged, in order.
				if len(got) != len(in) {
					t.Fatalf("%d packets in, %d out", len(in), len(got))
				}
				for i, p := range in {
					raw, _ := p.RTP.Marshal()
					if !bytes.Equal(raw, got[i].RTP) {
						t.Fatalf("packet %d changed", i)
					}
				}
				continue
			}
			// H.264 packets over MaxRTPPacket may be fragmented: every
			// packet out fits or is an input packet that could not be
			// split (renumbered after the fragments before it: compared
			// without its sequence number), the sequence numbers out run
			// on without a gap, and the NAL units are the same, in order.
			var inPay, outPay [][]byte
			unchanged := map[string]bool{}
			for _, p := range in {
				q := *p.RTP
				q.SequenceNumber = 0
				raw, _ := q.Marshal()
				unchanged[string(raw)] = true
				inPay = append(inPay, p.RTP.Payload)
			}
			for i, g := range got {
				var q rtp.Packet
				if err := q.Unmarshal(g.RTP); err != nil {
					t.Fatalf("packet %d out does not parse: %v", i, err)
				}
				if want := in[0].RTP.SequenceNumber + uint16(i); q.SequenceNumber != want {
					t.Fatalf("packet %d out has sequence number %d, want %d", i, q.SequenceNumber, want)
				}
				outPay = append(outPay, q.Payload)
				q.SequenceNumber = 0
				if raw, _ := q.Marshal(); len(g.RTP) > MaxRTPPacket && !unchanged[string(raw)] {
					t.Fatalf("packet %d out: %d bytes, over %d and not an input packet", i, len(g.RTP), MaxRTPPacket)
				}
			}
			if want, err := h264Units(inPay); err == nil {
				have, err := h264Units(outPay)
				if err != nil {
					t.Fatalf("fragments do not reassemble: %v", err)
				}
				if len(have) != len(want) {
					t.Fatalf("%d NAL units in, %d out", len(want), len(have))
				}
				for i := range want {
					if !bytes.Equal(want[i], have[i]) {
						t.Fatalf("NAL unit %d changed", i)
					}
				}
			}
		}
	})
}

// h264Units reassembles the NAL units of a sequence of H.264 RTP payloads
// (single NAL unit, STAP-A, FU-A).
func h264Units(payloads [][]byte) ([][]byte, error) {
	var units [][]byte
	var fu []byte // the FU-A unit being reassembled
	for i, p := range payloads {
		if len(p) == 0 {
			return nil, fmt.Errorf("payload %d is empty", i)
		}
		switch typ := p[0] & 0x1f; {
		case typ == nalSTAPA:
			us, ok := stapUnits(p[1:])
			if !ok {
				return nil, fmt.Errorf("payload %d: bad STAP-A", i)
			}
			units = append(units, us...)
		case typ == nalFUA:
			if len(p) < 3 {
				return nil, fmt.Errorf("payload %d: short FU-A", i)
			}
			if p[1]&0x80 != 0 {
				fu = []byte{p[0]&0xe0 | p[1]&0x1f}
			} else if fu == nil {
				return nil, fmt.Errorf("payload %d: FU-A continues no unit", i)
			}
			fu = append(fu, p[2:]...)
			if p[1]&0x40 != 0 {
				units = append(units, fu)
				fu = nil
			}
		default:
			units = append(units, p)
		}
	}
	return units, nil
}

// BenchmarkChunkerHostile pushes the largest payloads an RTP packet can
// carry (64 KiB, as over RTSP's TCP interleaving), of every H.264 packet
// type the chunker splits or passes, to show that the chunker's cost stays
// linear in the bytes a publisher sends: a hostile stream cannot stall the
// origin. (A fuzz run's execs/s drop to 0 for up to -fuzzminimizetime, 60 s
// by default, while a worker minimizes a new input; that is the fuzzer, not
// a slow input.)
func BenchmarkChunkerHostile(b *testing.B) {
	for _, tc := range []struct {
		name string
		nal  byte
	}{{"idr", 0x65}, {"stap-a", nalSTAPA}, {"fu-a", nalFUA}, {"stap-b", 25}} {
		b.Run(tc.name, func(b *testing.B) {
			payload := make([]byte, 65000)
			for i := range payload {
				payload[i] = byte(i * 7)
			}
			payload[0] = tc.nal
			c, err := NewChunker(ChunkerConfig{Channel: "ch", Stripes: 4}, h264Desc(testSPS, testPPS))
			if err != nil {
				b.Fatal(err)
			}
			s := &stream{t0: time.Unix(100, 0)}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c.Push(s.pkt(0, i*40, uint32(i*3600), true, payload...))
			}
		})
	}
}

// capStream pushes seconds of H.264 at 30 fps and returns the chunks of
// stripe 0, the packets pushed and the packets in all chunks. Frame f
// is one access unit of packets of 1,000 payload bytes, all captured at
// once: an IDR every 30 frames is 9 of them, any other frame 3.
func capStream(t *testing.T, c *Chunker, seconds int) (slices []*wire.Chunk, pushed, got int) {
	t.Helper()
	s := &stream{t0: time.Unix(200, 0)}
	idrStart := append([]byte{0x7c, 0x85}, make([]byte, 998)...)
	idrMid := append([]byte{0x7c, 0x05}, make([]byte, 998)...)
	idrEnd := append([]byte{0x7c, 0x45}, make([]byte, 998)...)
	p := append([]byte{0x41, 0x9a}, make([]byte, 998)...)
	var out []*wire.Chunk
	for f := 0; f < 30*seconds; f++ {
		ms, ts := f*100/3, uint32(f*3000)
		var frame []Packet
		if f%30 == 0 {
			frame = append(frame, s.pkt(0, ms, ts, false, idrStart...))
			for range 7 {
				frame = append(frame, s.pkt(0, ms, ts, false, idrMid...))
			}
			frame = append(frame, s.pkt(0, ms, ts, true, idrEnd...))
		} else {
			for i := range 3 {
				frame = append(frame, s.pkt(0, ms, ts, i == 2, p...))
			}
		}
		for _, pk := range frame {
			out = append(out, c.Push(pk)...)
			pushed++
		}
	}
	out = append(out, c.Flush()...)
	for _, ch := range out {
		got += len(ch.Packets)
		if ch.Stripe == 0 {
			slices = append(slices, ch)
		}
	}
	return slices, pushed, got
}

// TestChunkerSliceCap: once the stream's rate is known, a slice that
// would grow over SliceCap × the mean slice closes early and the next
// slice continues it at the same capture; the slice it continues lasts
// 0 and only the first part is a keyframe with parameter sets. Every
// packet comes out once, in order.
func TestChunkerSliceCap(t *testing.T) {
	for _, tc := range []struct {
		cap       float64
		wantSplit bool
	}{{0, true}, {1.5, true}, {-1, false}} {
		c, err := NewChunker(ChunkerConfig{Channel: "ch", Stripes: 2, SliceCap: tc.cap}, h264Desc(testSPS, testPPS))
		if err != nil {
			t.Fatal(err)
		}
		slices, pushed, got := capStream(t, c, 4)
		// The mean slice (100 ms, 3 frames): 4 s hold 4 × (9 + 29 × 3) =
		// 384 packets of ~1,012 bytes in 40 slices, 9.6 packets each; the
		// cap at 1.5 is 14.4: an IDR slice (9 + 6 packets) is cut.
		split, keys := 0, 0
		var prev *wire.Chunk
		for i, sl := range slices {
			if sl.Seq != uint64(i+1) {
				t.Fatalf("cap %v: slice %d has seq %d", tc.cap, i+1, sl.Seq)
			}
			if prev != nil && prev.Duration == 0 {
				split++
				if sl.Capture != prev.Capture || sl.Keyframe || len(sl.Params) != 0 {
					t.Fatalf("cap %v: continuation slice %d: capture %d (before %d), keyframe %v, %d params", tc.cap, sl.Seq, sl.Capture, prev.Capture, sl.Keyframe, len(sl.Params))
				}
			}
			if prev != nil && prev.Duration != 0 && sl.Capture == prev.Capture {
				t.Fatalf("cap %v: slice %d has the capture of slice %d, which lasts %d µs", tc.cap, sl.Seq, prev.Seq, prev.Duration)
			}
			if sl.Keyframe {
				keys++
				if len(sl.Params) != 2 {
					t.Fatalf("cap %v: keyframe slice %d carries %d params", tc.cap, sl.Seq, len(sl.Params))
				}
			}
			// Stripe 0 holds every other packet of the slice.
			if n := len(sl.Packets); time.Unix(0, sl.Capture).Sub(time.Unix(200, 0)) >= 2*time.Second && n > 8 {
				t.Fatalf("cap %v: slice %d holds %d packets on stripe 0, over the cap's 7", tc.cap, sl.Seq, n)
			}
			prev = sl
		}
		if keys != 4 {
			t.Fatalf("cap %v: %d keyframe slices, want 4", tc.cap, keys)
		}
		if tc.wantSplit != (split > 0) {
			t.Fatalf("cap %v: %d slices closed by size", tc.cap, split)
		}
		if tc.wantSplit && split < 2 {
			t.Fatalf("cap %v: only %d of the last 3 keyframes' slices split", tc.cap, split)
		}
		if got != pushed {
			t.Fatalf("cap %v: %d packets in the chunks, %d pushed", tc.cap, got, pushed)
		}
		t.Logf("cap %v: %d slices, %d closed by size", tc.cap, len(slices), split)
	}
}

// TestChunkerSliceCapOnClip: the bundled clip's keyframe slices are
// ~1.7 times the mean: at the default cap most are cut in two, and the
// pieces keep one capture.
func TestChunkerSliceCapOnClip(t *testing.T) {
	desc, pkts := clipPackets(t, 2)
	ch, err := NewChunker(ChunkerConfig{Channel: "ch", Stripes: 4}, desc)
	if err != nil {
		t.Fatal(err)
	}
	var chunks []*wire.Chunk
	for _, p := range pkts {
		chunks = append(chunks, ch.Push(p)...)
	}
	chunks = append(chunks, ch.Flush()...)
	slices := groupSlices(t, chunks, 4)
	split := 0
	for i, s := range slices[:len(slices)-1] {
		if s[0].Duration != 0 {
			continue
		}
		split++
		next := slices[i+1][0]
		if next.Capture != s[0].Capture || next.Keyframe {
			t.Fatalf("slice %d continues slice %d: capture %d (want %d), keyframe %v", next.Seq, s[0].Seq, next.Capture, s[0].Capture, next.Keyframe)
		}
		if !s[0].Keyframe && !slices[i-1][0].Keyframe {
			t.Fatalf("slice %d, closed by size, is not a keyframe's", s[0].Seq)
		}
	}
	// 20 keyframes in 2 loops; the first second has no rate yet.
	if split < 10 || split > 20 {
		t.Fatalf("%d slices closed by size, want 10..20 (the keyframes')", split)
	}
}
