package sim

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// packetSize is the size of the synthetic RTP packets.
const packetSize = 1200

// rtpHeader is the size of an RTP header without extensions.
const rtpHeader = 12

// stream synthesizes the origin's live stream: slices of fake RTP packets
// at the configured bitrate, a keyframe (three times the size of another
// slice, carrying parameter sets) every keyframe interval, dealt into K
// stripes and signed once with the channel key. Every simulated node
// shares the encodings.
//
// The stream is made of nominal slices, one per Slice of capture time
// (nominal slice n captured at start + n × Slice). With Config.SliceCap,
// a nominal slice holding more than SliceCap × the mean slice size is
// cut into parts of at most that size, as origin.Chunker closes a slice
// at its size cap: each part is a slice of its own (one seq), all parts
// carry the nominal slice's capture, the first alone its keyframe flag,
// every part but the last a zero Duration. A part leaves the origin when
// the chunker would close it: when the packet after its last one was
// captured (the packets of a nominal slice are captured evenly over it).
// Without a cap every nominal slice is one slice and seq = n.
type stream struct {
	channel  string
	key      ed25519.PrivateKey
	k        int
	slice    time.Duration
	keyEvery uint64 // nominal slices per keyframe interval
	keyShift uint64 // keyEvery-1 when the first slice is a keyframe, else 0
	keyPkts  int    // packets of a keyframe nominal slice
	pkts     int    // packets of another nominal slice
	// keyParts and parts are how many slices a keyframe nominal slice
	// and another one are cut into (1: not cut); period is the seqs of a
	// keyframe interval and seqOff what maps seqs onto it (see locate).
	keyParts, parts int
	period          uint64
	seqOff          uint64
	pktSize         int
	start           time.Time     // capture time of slice 0
	keep            time.Duration // how long the fast verifier remembers a chunk (keepSigned, longer across a partition)

	// signed is every chunk encoding made in the last s.keep of slices,
	// by the address of its first byte, with its length — the fast
	// verifier's set (see verify) — and the chunk it was made from, so
	// nodes share one parse (swarm.Config.Parse). bySeq lists them per
	// slice, oldest first, for eviction, with the slice's chunks (check).
	signed map[*byte]made
	bySeq  []sliceMade
	// last is the entry of signed looked up last (lastAt its key; nil:
	// none): a node parses a chunk and then verifies it, one lookup.
	lastAt *byte
	last   made
}

// sliceMade is one slice's encodings and chunks, by stripe.
type sliceMade struct {
	seq    uint64
	ptrs   []*byte
	chunks []*wire.Chunk
}

// made is a chunk encoding the origin made: its length and its chunk.
type made struct {
	n int
	c *wire.Chunk
}

// lookup returns the entry of signed for raw, if raw is one the origin
// made (the very buffer, at its full length).
func (s *stream) lookup(raw []byte) (*wire.Chunk, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	p := &raw[0]
	if p != s.lastAt {
		m, ok := s.signed[p]
		if !ok {
			return nil, false
		}
		s.lastAt, s.last = p, m
	}
	return s.last.c, s.last.n == len(raw)
}

// keepSigned is how long the fast verifier remembers a chunk: far longer
// than any chunk stays in a window or in flight.
const keepSigned = 2 * time.Minute

// errNotSigned rejects a chunk the simulated origin did not make.
var errNotSigned = errors.New("sim: not a chunk the origin signed (tampered copy?)")

var streamParams = []wire.Param{{Media: 0, Data: []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01}}, {Media: 0, Data: []byte{0x68, 0xce, 0x3c, 0x80}}}

func newStream(cfg *Config, key ed25519.PrivateKey, channel string, start time.Time) *stream {
	m := uint64(max(1, cfg.Keyframe/cfg.Slice))
	perInterval := cfg.StreamKbps * 1000 / 8 * (float64(m) * cfg.Slice.Seconds()) // bytes
	w := 3.0
	if m == 1 {
		w = 1
	}
	unit := perInterval / (w + float64(m) - 1)
	pkts := max(1, int(math.Round(unit/packetSize)))
	keyPkts := max(1, int(math.Round(unit*w/packetSize)))
	// Recompute the packet size so the bitrate holds with whole packets.
	size := int(math.Round(perInterval / float64(keyPkts+int(m-1)*pkts)))
	size = max(rtpHeader+16, min(size, 65000))
	var shift uint64
	if cfg.KeyframeFirst {
		shift = m - 1
	}
	keyParts, parts := 1, 1
	if cfg.SliceCap > 0 {
		// The cap in packets: SliceCap × the mean slice, at least one.
		capPkts := max(1, int(cfg.SliceCap*float64(keyPkts+int(m-1)*pkts)/float64(m)))
		keyParts = (keyPkts + capPkts - 1) / capPkts
		parts = (pkts + capPkts - 1) / capPkts
	}
	// The side of a partition cut off from the origin holds the chunks
	// of the cut's start until the heal (its windows do not move), and
	// passes them to new children meanwhile.
	keep := keepSigned
	if cfg.PartitionAt > 0 {
		end := cfg.HealAt
		if end == 0 {
			end = cfg.Duration
		}
		keep += max(end-cfg.PartitionAt, 0)
	}
	st := &stream{channel: channel, key: key, k: cfg.Stripes, slice: cfg.Slice, keyEvery: m, keyShift: shift, keep: keep,
		keyPkts: keyPkts, pkts: pkts, pktSize: size, start: start,
		keyParts: keyParts, parts: parts, period: uint64(keyParts) + (m-1)*uint64(parts),
		signed: make(map[*byte]made)}
	// Seq s sits at place s + seqOff of the sequence that starts with a
	// keyframe's first part at place 0 (u = 0); seq 1 is the first part
	// of nominal slice 1 (u = 1 + keyShift). Without parts seqOff is
	// keyShift and seq = n.
	st.seqOff = st.firstPlace(shift+1) - 1
	return st
}

// firstPlace returns the place (see locate) of the first part of the
// nominal slice at u = n + keyShift: keyframe intervals of period places,
// the keyframe's parts first.
func (s *stream) firstPlace(u uint64) uint64 {
	q, r := u/s.keyEvery, u%s.keyEvery
	at := q * s.period
	if r > 0 {
		at += uint64(s.keyParts) + (r-1)*uint64(s.parts)
	}
	return at
}

// part says where slice seq sits in the stream: in nominal slice n,
// its part j of parts; key: n is a keyframe's nominal slice.
type part struct {
	n        uint64
	j, parts int
	key      bool
}

// locate returns where slice seq sits (see part).
func (s *stream) locate(seq uint64) part {
	x := seq + s.seqOff
	q, r := x/s.period, x%s.period
	if r < uint64(s.keyParts) {
		return part{n: q*s.keyEvery - s.keyShift, j: int(r), parts: s.keyParts, key: true}
	}
	r -= uint64(s.keyParts)
	u := q*s.keyEvery + 1 + r/uint64(s.parts)
	return part{n: u - s.keyShift, j: int(r % uint64(s.parts)), parts: s.parts}
}

// span returns the packets of nominal slice p.n that part p holds:
// [lo, hi) of total, the nominal slice's packets dealt evenly to its
// parts.
func (s *stream) span(p part) (lo, hi, total int) {
	total = s.pkts
	if p.key {
		total = s.keyPkts
	}
	return p.j * total / p.parts, (p.j + 1) * total / p.parts, total
}

// publishAt returns when slice seq leaves the origin, after the stream's
// start: when its nominal slice ends, or, for a part the size cap
// closed, when the packet after its last one was captured.
func (s *stream) publishAt(seq uint64) time.Duration {
	p := s.locate(seq)
	at := time.Duration(p.n) * s.slice
	if p.j == p.parts-1 {
		return at + s.slice
	}
	_, hi, total := s.span(p)
	return at + time.Duration(int64(hi)*int64(s.slice)/int64(total))
}

// verify is the simulator's cheap stand-in for the Ed25519 check
// (swarm.Config.Verify): a chunk passes at once when its encoding is one
// the origin made and signed lately — the very buffer, at its full
// length, since every node shares the origin's encodings and never
// modifies them. Any other buffer (a copy, or an encoding older than the
// verifier remembers, which a node cut off from every source for minutes
// still holds and passes to a new child) is checked with Ed25519, as a
// real node checks it: a tampered copy fails. A buffer modified in place
// is not caught (no simulated node does that).
func (s *stream) verify(raw []byte) error {
	if _, ok := s.lookup(raw); ok {
		return nil
	}
	if err := wire.VerifyChunk(raw, s.key.Public().(ed25519.PublicKey)); err != nil {
		return fmt.Errorf("%w: %w", errNotSigned, err)
	}
	return nil
}

// parse returns the chunk the origin made for raw when raw is one of its
// remembered encodings (shared by every node: they never modify it), and
// parses raw otherwise (a tampered copy then fails verification).
func (s *stream) parse(raw []byte) (*wire.Chunk, error) {
	if c, ok := s.lookup(raw); ok {
		return c, nil
	}
	return wire.ParseChunk(raw)
}

// remember adds slice seq's encodings to the fast verifier's set and
// forgets those older than s.keep.
func (s *stream) remember(seq uint64, raws [][]byte, chunks []*wire.Chunk) {
	ptrs := make([]*byte, 0, len(raws))
	for i, raw := range raws {
		s.signed[&raw[0]] = made{len(raw), chunks[i]}
		ptrs = append(ptrs, &raw[0])
	}
	s.bySeq = append(s.bySeq, sliceMade{seq: seq, ptrs: ptrs, chunks: chunks})
	if keep := int(s.keep/s.slice) + 1; len(s.bySeq) > keep {
		for _, p := range s.bySeq[0].ptrs {
			delete(s.signed, p)
			if p == s.lastAt {
				s.lastAt = nil
			}
		}
		s.bySeq[0] = sliceMade{}
		s.bySeq = s.bySeq[1:]
	}
}

// chunksOf returns the chunks the origin made for slice seq, by stripe,
// or nil when the verifier's set no longer (or never) held them.
func (s *stream) chunksOf(seq uint64) []*wire.Chunk {
	if len(s.bySeq) == 0 || seq < s.bySeq[0].seq {
		return nil
	}
	if i := seq - s.bySeq[0].seq; i < uint64(len(s.bySeq)) && s.bySeq[i].seq == seq {
		return s.bySeq[i].chunks // slices are made in seq order, one each
	}
	for i := range s.bySeq {
		if s.bySeq[i].seq == seq {
			return s.bySeq[i].chunks
		}
	}
	return nil
}

// keyframe reports whether slice seq starts at a keyframe: the first
// part of every keyEvery-th nominal slice, from nominal slice keyEvery,
// or from the first (seq 1) with Config.KeyframeFirst.
func (s *stream) keyframe(seq uint64) bool {
	p := s.locate(seq)
	return p.key && p.j == 0
}

// keyGroup reports whether slice seq is a part of a keyframe's nominal
// slice (the keyframe's own slice or a part the size cap cut off it).
func (s *stream) keyGroup(seq uint64) bool { return s.locate(seq).key }

// packets returns how many packets slice seq holds.
func (s *stream) packets(seq uint64) int {
	lo, hi, _ := s.span(s.locate(seq))
	return hi - lo
}

// capture returns slice seq's capture time: its nominal slice's.
func (s *stream) capture(seq uint64) time.Time {
	return s.start.Add(time.Duration(s.locate(seq).n) * s.slice)
}

// make builds slice seq's chunks and their signed encodings, by stripe.
// Packet i's RTP payload starts with seq and i, so what a node plays can
// be checked against what the origin made.
func (s *stream) make(seq uint64) ([]*wire.Chunk, [][]byte, error) {
	at := s.locate(seq)
	lo, hi, total := s.span(at)
	n := hi - lo
	keyframe := at.key && at.j == 0
	dur := uint32(s.slice / time.Microsecond)
	if at.j < at.parts-1 {
		dur = 0 // the next slice continues this one, at its capture
	}
	buf := make([]byte, n*s.pktSize)
	pk := make([]wire.Packet, n)
	for i := range pk {
		rtp := buf[i*s.pktSize : (i+1)*s.pktSize : (i+1)*s.pktSize]
		rtp[0] = 0x80
		rtp[1] = 96
		if i == n-1 && at.j == at.parts-1 {
			rtp[1] |= 0x80 // marker: the nominal slice's last packet
		}
		binary.BigEndian.PutUint16(rtp[2:], uint16(seq*1000+uint64(i)))
		binary.BigEndian.PutUint32(rtp[4:], uint32(uint64(s.slice/time.Microsecond)*at.n*90/1000))
		binary.BigEndian.PutUint32(rtp[8:], 0x5eed5eed)
		binary.BigEndian.PutUint64(rtp[rtpHeader:], seq)
		binary.BigEndian.PutUint32(rtp[rtpHeader+8:], uint32(i))
		pk[i] = wire.Packet{Media: 0, Offset: uint32(int64(lo+i) * int64(s.slice/time.Microsecond) / int64(total)), RTP: rtp}
	}
	dealt := wire.Deal(pk, s.k)
	chunks := make([]*wire.Chunk, s.k)
	raws := make([][]byte, s.k)
	capture := s.start.Add(time.Duration(at.n) * s.slice).UnixNano()
	for st := range chunks {
		c := &wire.Chunk{
			Channel:  s.channel,
			Seq:      seq,
			Stripe:   uint8(st),
			Stripes:  uint8(s.k),
			Capture:  capture,
			Duration: dur,
			Keyframe: keyframe,
			Packets:  dealt[st],
		}
		if c.Keyframe {
			c.Params = streamParams
		}
		raw, err := c.Sign(nil, s.key)
		if err != nil {
			return nil, nil, fmt.Errorf("sim: signing slice %d stripe %d: %w", seq, st, err)
		}
		chunks[st] = c
		raws[st] = raw
	}
	s.remember(seq, raws, chunks)
	return chunks, raws, nil
}

// check reports what is wrong with a played slice's chunks, by stripe,
// compared with what the origin made for slice seq ("" if nothing). A
// chunk that is the very one the origin made passes at once (nodes
// never modify a chunk); any other (a parse of another buffer, or one
// older than the verifier's set) must hold the origin's packets: packet
// j of stripe st is the slice's packet j×K+st, whose payload starts with
// seq and that index.
func (s *stream) check(seq uint64, chunks []*wire.Chunk) string {
	if len(chunks) != s.k {
		return fmt.Sprintf("slice %d played with %d chunks, the stream has %d stripes", seq, len(chunks), s.k)
	}
	made := s.chunksOf(seq)
	total := 0
	for st, c := range chunks {
		if c == nil {
			return fmt.Sprintf("slice %d played without its chunk of stripe %d", seq, st)
		}
		total += len(c.Packets)
		if made != nil && c == made[st] {
			continue
		}
		for j := range c.Packets {
			p := c.Packets[j].RTP
			if len(p) != s.pktSize ||
				binary.BigEndian.Uint64(p[rtpHeader:]) != seq ||
				binary.BigEndian.Uint32(p[rtpHeader+8:]) != uint32(j*s.k+st) {
				return fmt.Sprintf("slice %d packet %d (stripe %d) is not the one the origin made", seq, j*s.k+st, st)
			}
		}
	}
	if n := s.packets(seq); total != n {
		return fmt.Sprintf("slice %d played with %d packets, the origin made %d", seq, total, n)
	}
	return ""
}

// sliceBytes returns the RTP bytes of slice seq.
func (s *stream) sliceBytes(seq uint64) int64 { return int64(s.packets(seq) * s.pktSize) }
