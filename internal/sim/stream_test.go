package sim

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
	"github.com/swarmtv/swarmtv/origin"
)

// TestSliceCapMatchesOrigin: the simulator's default size cap is the
// real origin's.
func TestSliceCapMatchesOrigin(t *testing.T) {
	if got := DefaultConfig().SliceCap; got != origin.DefaultSliceCap {
		t.Fatalf("sim slice-cap default %v, origin's %v", got, origin.DefaultSliceCap)
	}
}

// TestStreamParts: with a size cap the keyframe's nominal slice (three
// times another) is cut into parts that keep its capture; the parts
// before the last last 0, only the first is a keyframe; every seq is
// made once, in capture and publish order, and each keyframe interval
// holds the same packets as without a cap.
func TestStreamParts(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	start := time.Unix(1_000, 0)
	for _, tc := range []struct {
		cap       float64
		first     bool
		keyParts  int
		wantParts int // slices per 1 s keyframe interval
	}{{0, false, 1, 10}, {1.5, false, 2, 11}, {1.5, true, 2, 11}, {1.0, false, 3, 12}, {0.5, true, 6, 24}} {
		cfg := DefaultConfig()
		cfg.SliceCap, cfg.KeyframeFirst = tc.cap, tc.first
		s := newStream(&cfg, key, "sim", start)
		if s.keyParts != tc.keyParts {
			t.Fatalf("cap %v: keyframe in %d parts, want %d", tc.cap, s.keyParts, tc.keyParts)
		}
		var prevCap time.Time
		var prevPub time.Duration
		var prevDur uint32 = 1
		keys, pkts, seqs := 0, 0, 0
		for seq := uint64(1); seq <= 200; seq++ {
			cs, _, err := s.make(seq)
			if err != nil {
				t.Fatal(err)
			}
			c := cs[0]
			capt := time.Unix(0, c.Capture)
			switch {
			case capt.Before(prevCap):
				t.Fatalf("cap %v: slice %d captured before slice %d", tc.cap, seq, seq-1)
			case capt.Equal(prevCap) && prevDur != 0:
				t.Fatalf("cap %v: slice %d has the capture of slice %d, which lasts %d µs", tc.cap, seq, seq-1, prevDur)
			case !capt.Equal(prevCap) && seq > 1 && capt.Sub(prevCap) != time.Duration(prevDur)*time.Microsecond:
				t.Fatalf("cap %v: slice %d captured %v after slice %d, which lasts %d µs", tc.cap, seq, capt.Sub(prevCap), seq-1, prevDur)
			case !capt.Equal(s.capture(seq)) || c.Keyframe != s.keyframe(seq):
				t.Fatalf("cap %v: slice %d: capture or keyframe differ from the stream's", tc.cap, seq)
			case c.Keyframe && prevDur == 0:
				t.Fatalf("cap %v: keyframe slice %d continues slice %d", tc.cap, seq, seq-1)
			}
			if pub := s.publishAt(seq); pub < prevPub || pub < capt.Sub(start) || pub > capt.Sub(start)+cfg.Slice {
				t.Fatalf("cap %v: slice %d published at %v (before: %v), captured at %v", tc.cap, seq, pub, prevPub, capt.Sub(start))
			} else {
				prevPub = pub
			}
			prevCap, prevDur = capt, c.Duration
			// Count whole keyframe intervals: nominal slices 10..19.
			if n := capt.Sub(start) / cfg.Slice; n >= 10 && n < 20 {
				seqs++
				for _, ch := range cs {
					pkts += len(ch.Packets)
				}
				if c.Keyframe {
					keys++
				}
			}
		}
		if keys != 1 || seqs != tc.wantParts || pkts != s.keyPkts+9*s.pkts {
			t.Fatalf("cap %v: one interval holds %d keyframes, %d slices, %d packets; want 1, %d, %d", tc.cap, keys, seqs, pkts, tc.wantParts, s.keyPkts+9*s.pkts)
		}
	}
}

// TestStreamCheck: a played slice passes when its chunks are the ones
// the origin made, or parses of their encodings (checked packet by
// packet), and fails with a chunk of another slice, a packet changed, a
// stripe missing or a packet short.
func TestStreamCheck(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	cfg := DefaultConfig()
	s := newStream(&cfg, key, "sim", time.Unix(1_000, 0))
	var made [][]*wire.Chunk
	var raws [][][]byte
	for seq := uint64(1); seq <= 12; seq++ {
		cs, rs, err := s.make(seq)
		if err != nil {
			t.Fatal(err)
		}
		made, raws = append(made, cs), append(raws, rs)
	}
	seq := uint64(10) // a keyframe's slice: more packets than the others
	own := made[seq-1]
	if msg := s.check(seq, own); msg != "" {
		t.Fatalf("the origin's own chunks: %s", msg)
	}
	parsed := make([]*wire.Chunk, len(own))
	for st, raw := range raws[seq-1] {
		c, err := wire.ParseChunk(raw)
		if err != nil {
			t.Fatal(err)
		}
		parsed[st] = c
	}
	if msg := s.check(seq, parsed); msg != "" {
		t.Fatalf("parses of the origin's encodings: %s", msg)
	}
	with := func(st int, c *wire.Chunk) []*wire.Chunk {
		out := append([]*wire.Chunk(nil), parsed...)
		out[st] = c
		return out
	}
	changed := *parsed[1]
	changed.Packets = append([]wire.Packet(nil), changed.Packets...)
	rtp := append([]byte(nil), changed.Packets[2].RTP...)
	rtp[rtpHeader+11]++ // the packet's index
	changed.Packets[2].RTP = rtp
	short := *parsed[0]
	short.Packets = short.Packets[:len(short.Packets)-1]
	for name, chunks := range map[string][]*wire.Chunk{
		"another slice's chunk": with(2, made[seq-2][2]),
		"a packet changed":      with(1, &changed),
		"a packet short":        with(0, &short),
		"a stripe missing":      with(3, nil),
		"too few stripes":       parsed[:3],
	} {
		if msg := s.check(seq, chunks); msg == "" {
			t.Errorf("%s: check passed", name)
		}
	}
}
