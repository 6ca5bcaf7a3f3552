package transport

import (
	"bufio"
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// TestFetchNewestKeyframe: a Request for slice 0 is answered with the
// requested stripe's chunk of the newest keyframe slice the node holds,
// or with Missing naming slice 0 when it holds none.
func TestFetchNewestKeyframe(t *testing.T) {
	s := newStream(t, 2)
	origin := startNode(t, s, nodeOpts{source: true})

	ask := func(ids ...wire.ID) *bufio.Reader {
		t.Helper()
		ep := newEndpoint(t)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := ep.Dial(ctx, origin.ep.Addr().String(), origin.ep.ID())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseWithError(CodeNormal, "") })
		st, err := c.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		req := hello(0)
		for _, id := range ids {
			req = wire.AppendFrame(req, wire.FrameRequest, id.Append(nil))
		}
		if _, err := st.Write(req); err != nil {
			t.Fatal(err)
		}
		st.SetReadDeadline(time.Now().Add(3 * time.Second))
		return bufio.NewReader(st)
	}
	expect := func(br *bufio.Reader, typ wire.FrameType, payload []byte) {
		t.Helper()
		f, err := wire.ReadFrame(br, 0)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != typ || !bytes.Equal(f.Payload, payload) {
			t.Fatalf("%v frame of %d bytes, want %v of %d", f.Type, len(f.Payload), typ, len(payload))
		}
	}

	// Nothing held yet: Missing, naming what was asked.
	expect(ask(wire.ID{Seq: 0, Stripe: 1}), wire.FrameMissing, wire.ID{Seq: 0, Stripe: 1}.Append(nil))

	var kf [][]byte
	now := time.Now()
	for seq := uint64(1); seq <= 13; seq++ { // keyframes: 1 and 11
		cs, raws := s.chunks(t, seq, now.Add(time.Duration(seq)*s.slice), s.key)
		for i := range cs {
			origin.drv.Publish(cs[i], raws[i])
		}
		if seq == 11 {
			kf = raws
		}
	}
	origin.drv.Stats() // a round trip: the chunks are held
	br := ask(wire.ID{Seq: 0, Stripe: 1}, wire.ID{Seq: 0, Stripe: 0})
	expect(br, wire.FrameChunk, kf[1])
	expect(br, wire.FrameChunk, kf[0])
}

// TestDetachedPlaysFromOrigin: a peer with no parent at all (the tracker
// had no free slot) asks the origin for its newest keyframe slice after
// ParentConnectTimeout and plays the stream from the origin.
func TestDetachedPlaysFromOrigin(t *testing.T) {
	s := newStream(t, 2)
	origin := startNode(t, s, nodeOpts{source: true})
	d := startNode(t, s, nodeOpts{origin: origin, connectTimeout: 300 * time.Millisecond})
	const last = 50
	published := make(chan struct{})
	go func() {
		defer close(published)
		s.publish(t, origin.drv, 1, last)
	}()
	<-published
	d.play.waitFor(t, last, 5*time.Second)
	d.play.mu.Lock()
	first := d.play.slices[0].Seq
	d.play.mu.Unlock()
	if first > 21 {
		t.Fatalf("started at slice %d: too late", first)
	}
	d.play.check(t, s, first, last)
	st := d.drv.Stats()
	if st.OriginBytesIn == 0 || st.P2PBytesIn != 0 || st.LostSlices != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestParentUpBeforeStream: a parent that accepted the subscription but
// has nothing to send yet is not lost, even long after the connect
// timeout: ParentUp started its liveness timer, and silence before any
// chunk proves nothing.
func TestParentUpBeforeStream(t *testing.T) {
	s := newStream(t, 2)
	origin := startNode(t, s, nodeOpts{source: true, maxChildren: 4})
	a := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin, connectTimeout: 300 * time.Millisecond})
	a.drv.SetParent(origin.peer())
	waitChildren(t, origin, a)
	time.Sleep(time.Second) // well past the connect timeout
	a.play.mu.Lock()
	lost := len(a.play.lost)
	a.play.mu.Unlock()
	if lost != 0 {
		t.Fatalf("a lost its parent before the stream started: %v", a.play.lost)
	}
	s.publish(t, origin.drv, 1, 30)
	a.play.check(t, s, 1, 30)
}
