package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

const testChannel = "test"

// stream makes the signed chunks of a synthetic channel.
type stream struct {
	key     ed25519.PrivateKey
	pub     ed25519.PublicKey
	k       int
	packets int // per slice
	size    int // bytes per RTP packet
	slice   time.Duration
}

func newStream(t testing.TB, k int) *stream {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &stream{key: key, pub: pub, k: k, packets: 8, size: 600, slice: 20 * time.Millisecond}
}

// packets returns slice seq's RTP packets; their bytes name seq and index.
func (s *stream) slicePackets(seq uint64) []wire.Packet {
	ps := make([]wire.Packet, s.packets)
	for i := range ps {
		b := make([]byte, s.size)
		binary.BigEndian.PutUint64(b, seq)
		binary.BigEndian.PutUint32(b[8:], uint32(i))
		ps[i] = wire.Packet{Offset: uint32(i) * 1000, RTP: b}
	}
	return ps
}

// chunks returns slice seq's K chunks and their encodings, signed with key.
func (s *stream) chunks(t testing.TB, seq uint64, capture time.Time, key ed25519.PrivateKey) ([]*wire.Chunk, [][]byte) {
	t.Helper()
	dealt := wire.Deal(s.slicePackets(seq), s.k)
	cs := make([]*wire.Chunk, s.k)
	raws := make([][]byte, s.k)
	for i := range cs {
		c := &wire.Chunk{
			Channel:  testChannel,
			Seq:      seq,
			Stripe:   uint8(i),
			Stripes:  uint8(s.k),
			Capture:  capture.UnixNano(),
			Duration: uint32(s.slice / time.Microsecond),
			Keyframe: seq%10 == 1,
			Packets:  dealt[i],
		}
		raw, err := c.Sign(nil, key)
		if err != nil {
			t.Fatal(err)
		}
		cs[i], raws[i] = c, raw
	}
	return cs, raws
}

// publish publishes slices first..last on src, one per slice duration.
func (s *stream) publish(t testing.TB, src *Driver, first, last uint64) {
	t.Helper()
	tick := time.NewTicker(s.slice)
	defer tick.Stop()
	for seq := first; seq <= last; seq++ {
		cs, raws := s.chunks(t, seq, time.Now(), s.key)
		for i := range cs {
			src.Publish(cs[i], raws[i])
		}
		<-tick.C
	}
}

// livePublisher publishes one slice per slice duration until told to
// finish. A test that waits on a move or a failure keeps the stream live
// meanwhile: with a fixed count of slices, a slow machine (-race, other
// tests) can reach the end of the stream before the test's move, and then
// every parent falls silent and times out.
type livePublisher struct {
	seq  atomic.Uint64 // the last slice published
	stop atomic.Uint64 // the last slice to publish; 0 until finish
	done chan struct{}
}

// maxLiveSlices bounds a live publisher that is never finished.
const maxLiveSlices = 3000

// publishLive starts publishing from slice first on; it stops at the
// test's end at the latest.
func (s *stream) publishLive(t testing.TB, src *Driver, first uint64) *livePublisher {
	t.Helper()
	p := &livePublisher{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(s.slice)
		defer tick.Stop()
		for seq := first; seq < first+maxLiveSlices; seq++ {
			cs, raws := s.chunks(t, seq, time.Now(), s.key)
			for i := range cs {
				src.Publish(cs[i], raws[i])
			}
			p.seq.Store(seq)
			if stop := p.stop.Load(); stop != 0 && seq >= stop {
				return
			}
			<-tick.C
		}
	}()
	t.Cleanup(func() {
		p.stop.CompareAndSwap(0, 1)
		<-p.done
	})
	return p
}

// finish publishes more slices after the last one published, waits for
// them, and returns the last slice published.
func (p *livePublisher) finish(more uint64) uint64 {
	p.stop.Store(p.seq.Load() + more)
	<-p.done
	return p.seq.Load()
}

// player records what a driver plays.
type player struct {
	mu     sync.Mutex
	slices []swarm.Slice
	lost   []Lost
	played chan uint64 // seq of every slice played
	// repair, when set, runs on the driver goroutine for every Lost, as a
	// peer's local repair does.
	repair func(Lost)
}

func newPlayer() *player { return &player{played: make(chan uint64, 4096)} }

func (p *player) onPlay(s swarm.Slice) {
	p.mu.Lock()
	p.slices = append(p.slices, s)
	p.mu.Unlock()
	p.played <- s.Seq
}

func (p *player) onLost(l Lost) {
	p.mu.Lock()
	defer func(f func(Lost)) {
		if f != nil {
			f(l)
		}
	}(p.repair)
	p.lost = append(p.lost, l)
	p.mu.Unlock()
}

// waitFor waits until seq was played.
func (p *player) waitFor(t testing.TB, seq uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case s := <-p.played:
			if s >= seq {
				return
			}
		case <-deadline:
			t.Fatalf("slice %d not played within %v", seq, timeout)
		}
	}
}

// check asserts that first..last were played in order, complete, without
// discontinuity, with the stream's packets.
func (p *player) check(t testing.TB, s *stream, first, last uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		done := len(p.slices) > 0 && p.slices[len(p.slices)-1].Seq >= last
		p.mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	want := first
	for _, sl := range p.slices {
		if sl.Seq < first {
			continue
		}
		if sl.Seq != want {
			t.Fatalf("played slice %d, want %d", sl.Seq, want)
		}
		if sl.Discontinuity {
			t.Fatalf("slice %d marked discontinuous", sl.Seq)
		}
		exp := s.slicePackets(sl.Seq)
		if len(sl.Packets) != len(exp) {
			t.Fatalf("slice %d: %d packets, want %d", sl.Seq, len(sl.Packets), len(exp))
		}
		for i := range exp {
			if !bytes.Equal(sl.Packets[i].RTP, exp[i].RTP) {
				t.Fatalf("slice %d packet %d has the wrong bytes", sl.Seq, i)
			}
		}
		want++
		if want > last {
			return
		}
	}
	t.Fatalf("played up to slice %d, want through %d", want-1, last)
}

// testNode is a running driver on its own endpoint.
type testNode struct {
	ep   *Endpoint
	drv  *Driver
	node *swarm.Node
	play *player
	done chan error
}

func (n *testNode) peer() Peer { return Peer{ID: n.ep.ID(), Addr: n.ep.Addr().String()} }

// stop closes the driver and its endpoint and checks Run's result.
func (n *testNode) stop(t testing.TB) {
	t.Helper()
	n.drv.Close()
	if err := <-n.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	n.ep.Close()
}

type nodeOpts struct {
	source      bool
	maxChildren int
	origin      *testNode
	childQueue  int
	// connectTimeout is swarm.Config.ParentConnectTimeout (0: default).
	connectTimeout time.Duration
	fetchBPS       int64         // DriverConfig.FetchBPS
	queueDelay     time.Duration // DriverConfig.MaxQueueDelay (0: default)
	startAge       time.Duration // swarm.Config.StartAge
	pushedMargin   time.Duration // swarm.Config.PushedMargin (0: default)
}

func startNode(t testing.TB, s *stream, o nodeOpts) *testNode {
	t.Helper()
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	ep, err := Listen("127.0.0.1:0", id, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := swarm.Config{
		Channel:       testChannel,
		PublicKey:     s.pub,
		Stripes:       s.k,
		Source:        o.source,
		MaxChildren:   o.maxChildren,
		SliceDuration: s.slice,
		// Generous for a loaded 2-core machine running -race.
		PlayoutDelay:  800 * time.Millisecond,
		FetchMargin:   400 * time.Millisecond,
		ParentTimeout: time.Second,
		PullTimeout:   time.Second,
		// The default (3s) unless a test shortens it.
		ParentConnectTimeout: o.connectTimeout,
		StartAge:             o.startAge,
		PushedMargin:         o.pushedMargin,
	}
	var origin Peer
	if o.source {
		cfg.Origin = id.ID()
	} else if o.origin != nil {
		origin = o.origin.peer()
		cfg.Origin = origin.ID
	}
	node, err := swarm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := newPlayer()
	drv, err := NewDriver(DriverConfig{
		Node:          node,
		Endpoint:      ep,
		Channel:       testChannel,
		Origin:        origin,
		Logger:        testLogger(t).With("role", map[bool]string{true: "origin", false: "peer"}[o.source]),
		OnPlay:        p.onPlay,
		OnLost:        p.onLost,
		ChildQueue:    o.childQueue,
		MaxQueueDelay: o.queueDelay,
		FetchBPS:      o.fetchBPS,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{ep: ep, drv: drv, node: node, play: p, done: make(chan error, 1)}
	go func() { n.done <- drv.Run(context.Background()) }()
	t.Cleanup(func() {
		drv.Close()
		select {
		case <-n.done:
		default:
		}
		ep.Close()
	})
	return n
}

// waitChildren waits until n has the given children.
func waitChildren(t testing.TB, n *testNode, want ...*testNode) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := n.drv.Children()
		ok := len(got) == len(want)
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g == w.ep.ID()
			}
			ok = ok && found
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("children %v, want %d nodes", got, len(want))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// chain starts origin → a → b, with b fetching from the origin.
func chain(t testing.TB, s *stream) (origin, a, b *testNode) {
	origin = startNode(t, s, nodeOpts{source: true, maxChildren: 4})
	a = startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	b = startNode(t, s, nodeOpts{maxChildren: 4, origin: origin})
	a.drv.SetParent(origin.peer())
	waitChildren(t, origin, a)
	b.drv.SetParent(a.peer())
	waitChildren(t, a, b)
	return origin, a, b
}

func TestChain(t *testing.T) {
	for _, k := range []int{1, 2} {
		t.Run(fmt.Sprintf("K=%d", k), func(t *testing.T) {
			s := newStream(t, k)
			origin, a, b := chain(t, s)
			const last = 50
			s.publish(t, origin.drv, 1, last)
			b.play.waitFor(t, last, 5*time.Second)
			a.play.check(t, s, 1, last)
			b.play.check(t, s, 1, last)

			st := b.drv.Stats()
			if st.LostSlices != 0 || st.BadChunks != 0 || st.P2PBytesIn == 0 {
				t.Fatalf("b stats %+v", st)
			}
			if st := a.drv.Stats(); st.BytesForwarded == 0 {
				t.Fatalf("a forwarded nothing: %+v", st)
			}
			b.stop(t)
			a.stop(t)
			origin.stop(t)
		})
	}
}
