package testclip

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

func TestLoadDescribesH264AndAAC(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	d := c.Description()
	if len(d.Medias) != 2 {
		t.Fatalf("got %d medias, want 2", len(d.Medias))
	}
	v, ok := d.Medias[0].Formats[0].(*format.H264)
	if !ok {
		t.Fatalf("media 0 is %T, want H.264", d.Medias[0].Formats[0])
	}
	if h264.NALUType(v.SPS[0]&0x1f) != h264.NALUTypeSPS || h264.NALUType(v.PPS[0]&0x1f) != h264.NALUTypePPS {
		t.Fatalf("SDP parameter sets are not SPS/PPS: %x %x", v.SPS[:1], v.PPS[:1])
	}
	var sps h264.SPS
	if err := sps.Unmarshal(v.SPS); err != nil {
		t.Fatal(err)
	}
	if sps.Width() != 1280 || sps.Height() != 720 {
		t.Fatalf("SPS says %dx%d, want 1280x720", sps.Width(), sps.Height())
	}
	a, ok := d.Medias[1].Formats[0].(*format.MPEG4Audio)
	if !ok {
		t.Fatalf("media 1 is %T, want MPEG-4 audio", d.Medias[1].Formats[0])
	}
	if a.ClockRate() != 48000 || a.Config.ChannelCount != 1 {
		t.Fatalf("audio is %d Hz %d channels, want 48000 Hz mono", a.ClockRate(), a.Config.ChannelCount)
	}
	if got := c.Period(); got != 10*time.Second {
		t.Fatalf("period %v, want 10s", got)
	}
	// Descriptions are independent copies.
	v.SPS[0] = 0
	if c.Description().Medias[0].Formats[0].(*format.H264).SPS[0] == 0 {
		t.Fatal("Description shares its SPS with the clip")
	}
}

func TestLoadRejectsTinyPayload(t *testing.T) {
	if _, err := Load(10); err == nil {
		t.Fatal("Load(10) succeeded")
	}
}

// TestRunLoopsContinuously plays 2.5 loops without pacing and checks that
// sequence numbers and timestamps run on across the loop boundaries.
func TestRunLoopsContinuously(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_700_000_000, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type last struct {
		seq uint16
		ts  uint32
		ok  bool
	}
	var prev [2]last
	var prevCapture time.Time
	maxStep := [2]uint32{3000, 1024} // one video frame, one AAC frame
	var counts [2]int
	n := 0
	stop := c.PacketsPerLoop()*5/2 + 1
	ctx2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	err = c.Run(ctx2, Options{NoPace: true, Now: func() time.Time { return start }, Rand: rand.New(rand.NewPCG(1, 2))}, func(p Packet) {
		n++
		if n == stop {
			cancel2()
		}
		if len(p.RTP.Payload) > DefaultPayloadMaxSize {
			t.Errorf("payload of %d bytes", len(p.RTP.Payload))
		}
		if p.Capture.Before(prevCapture) {
			t.Fatalf("packet %d: capture went back from %v to %v", n, prevCapture, p.Capture)
		}
		prevCapture = p.Capture
		m := p.Media
		counts[m]++
		l := &prev[m]
		if l.ok {
			if p.RTP.SequenceNumber != l.seq+1 {
				t.Fatalf("packet %d media %d: seq %d after %d", n, m, p.RTP.SequenceNumber, l.seq)
			}
			if step := p.RTP.Timestamp - l.ts; step > maxStep[m] {
				t.Fatalf("packet %d media %d: timestamp step %d (from %d to %d), want 0..%d", n, m, int32(step), l.ts, p.RTP.Timestamp, maxStep[m])
			}
		}
		*l = last{p.RTP.SequenceNumber, p.RTP.Timestamp, true}
	})
	if err != context.Canceled {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if n != stop {
		t.Fatalf("emitted %d packets, want %d", n, stop)
	}
	if d := prevCapture.Sub(start); d < 24*time.Second || d > 26*time.Second {
		t.Fatalf("2.5 loops span %v of capture time, want ~25s", d)
	}
	if counts[0] < 2*300 || counts[1] < 2*468 {
		t.Fatalf("counts %v: too few video or audio packets", counts)
	}
}

func TestRunPacesInRealTime(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var first, last time.Time
	began := time.Now()
	err = c.Run(ctx, Options{}, func(p Packet) {
		if first.IsZero() {
			first = p.Capture
		}
		last = p.Capture
	})
	if err != context.DeadlineExceeded {
		t.Fatalf("Run returned %v, want context.DeadlineExceeded", err)
	}
	span := last.Sub(first)
	if span > time.Since(began) || span < 200*time.Millisecond {
		t.Fatalf("paced run covered %v of media in %v", span, time.Since(began))
	}
}

func TestRunStopsAfterLoops(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := c.Run(context.Background(), Options{NoPace: true, Loops: 1}, func(Packet) { n++ }); err != nil {
		t.Fatal(err)
	}
	if n != c.PacketsPerLoop() {
		t.Fatalf("one loop emitted %d packets, want %d", n, c.PacketsPerLoop())
	}
}
