package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// attack dials target from a fresh identity, opens a stream and writes b
// on it.
func attack(t *testing.T, target *testNode, b []byte) *Conn {
	t.Helper()
	ep := newEndpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := ep.Dial(ctx, target.ep.Addr().String(), target.ep.ID())
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(b); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantClosed waits for the remote to close c with code.
func wantClosed(t *testing.T, c *Conn, code quic.ApplicationErrorCode) {
	t.Helper()
	select {
	case <-c.Context().Done():
	case <-time.After(3 * time.Second):
		t.Fatal("connection still open")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(c.Context()); !errors.As(err, &ae) || !ae.Remote || ae.ErrorCode != code {
		t.Fatalf("connection closed with %v, want remote application error %d", err, code)
	}
}

func hello(stripes uint16) []byte {
	return wire.AppendFrame(nil, wire.FrameHello, wire.Hello{Channel: testChannel, Stripes: stripes}.Append(nil))
}

func TestBadChunkCutsOffSender(t *testing.T) {
	s := newStream(t, 2)
	origin, a, b := chain(t, s)
	// The stream runs on while the attacks go on: a pause would look
	// like a dead parent.
	published := make(chan struct{})
	go func() {
		defer close(published)
		s.publish(t, origin.drv, 1, 60)
	}()
	b.play.waitFor(t, 5, 5*time.Second)

	_, evilKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Chunks of coming slices, signed with a key that is not the
	// channel's: sent before the real ones.
	_, forged := s.chunks(t, 50, time.Now(), evilKey)
	_, forged2 := s.chunks(t, 51, time.Now(), evilKey)
	cases := []struct {
		name string
		b    []byte
	}{
		{"forged chunk on a fetch stream", append(hello(0), wire.AppendFrame(nil, wire.FrameChunk, forged[0])...)},
		{"forged chunk on a subscription", append(hello(3), wire.AppendFrame(nil, wire.FrameChunk, forged2[1])...)},
		{"unparsable chunk", append(hello(0), wire.AppendFrame(nil, wire.FrameChunk, []byte("not a chunk at all"))...)},
	}
	for _, tc := range cases {
		c := attack(t, a, tc.b)
		wantClosed(t, c, CodeBadChunk)
		t.Logf("%s: closed", tc.name)
	}
	if got := a.drv.Children(); len(got) != 1 || got[0] != b.ep.ID() {
		t.Fatalf("a's children %v, want only b", got)
	}

	<-published
	a.play.check(t, s, 1, 60)
	b.play.check(t, s, 1, 60)
	if st := a.drv.Stats(); st.BadChunks != uint64(len(cases)) {
		t.Fatalf("a counted %d bad chunks, want %d", st.BadChunks, len(cases))
	}
	if st := b.drv.Stats(); st.BadChunks != 0 {
		t.Fatalf("b received %d bad chunks: a forwarded a forged one", st.BadChunks)
	}
}

func TestGarbageClosesConnection(t *testing.T) {
	s := newStream(t, 1)
	origin, a, b := chain(t, s)
	published := make(chan struct{})
	go func() {
		defer close(published)
		s.publish(t, origin.drv, 1, 60)
	}()
	b.play.waitFor(t, 5, 5*time.Second)

	cases := []struct {
		name string
		b    []byte
	}{
		{"unknown frame type", []byte{0xee, 0x01, 0x02, 0x03, 0x04}},
		{"request before hello", wire.AppendFrame(nil, wire.FrameRequest, wire.ID{Seq: 1}.Append(nil))},
		{"malformed hello", wire.AppendFrame(nil, wire.FrameHello, []byte{wire.Version, 200, 'x'})},
		{"hello for no channel", wire.AppendFrame(nil, wire.FrameHello, []byte{wire.Version, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})},
		{"oversize request", append(hello(0), byte(wire.FrameRequest), 0x80, 0x80, 0x40)}, // 1 MiB
		{"oversize chunk", append(hello(0), byte(wire.FrameChunk), 0xff, 0xff, 0xff, 0x7f)},
		{"bad request id", append(hello(0), wire.AppendFrame(nil, wire.FrameRequest, []byte{1, 2, 3})...)},
		{"bad varint length", append(hello(0), byte(wire.FrameBye), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
		{"hello twice on a subscription", append(hello(1), hello(1)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantClosed(t, attack(t, a, tc.b), CodeProtocol)
		})
	}

	// The driver kept working: a still feeds b, and a new child can join.
	c := startNode(t, s, nodeOpts{origin: origin})
	c.drv.SetParent(a.peer())
	waitChildren(t, a, b, c)
	<-published
	b.play.check(t, s, 1, 60)
	a.play.check(t, s, 1, 60)
	c.play.waitFor(t, 60, 5*time.Second)
	if st := c.drv.Stats(); st.PlayedSlices == 0 {
		t.Fatalf("late child played nothing: %+v", st)
	}
}

func TestFetchServesRequests(t *testing.T) {
	s := newStream(t, 2)
	origin := startNode(t, s, nodeOpts{source: true})
	cs, raws := s.chunks(t, 1, time.Now(), s.key)
	for i := range cs {
		origin.drv.Publish(cs[i], raws[i])
	}
	origin.drv.Stats() // a round trip: the chunks are held

	ep := newEndpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := ep.Dial(ctx, origin.ep.Addr().String(), origin.ep.ID())
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := hello(0)
	req = wire.AppendFrame(req, wire.FrameRequest, wire.ID{Seq: 1, Stripe: 1}.Append(nil))
	req = wire.AppendFrame(req, wire.FrameRequest, wire.ID{Seq: 7, Stripe: 0}.Append(nil))
	req = wire.AppendFrame(req, wire.FrameRequest, wire.ID{Seq: 1, Stripe: 0}.Append(nil))
	if _, err := st.Write(req); err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(st)
	want := []struct {
		typ     wire.FrameType
		payload []byte
	}{
		{wire.FrameChunk, raws[1]},
		{wire.FrameMissing, wire.ID{Seq: 7}.Append(nil)},
		{wire.FrameChunk, raws[0]},
	}
	for i, w := range want {
		f, err := wire.ReadFrame(br, 0)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if f.Type != w.typ || !bytes.Equal(f.Payload, w.payload) {
			t.Fatalf("answer %d: %v frame of %d bytes, want %v of %d", i, f.Type, len(f.Payload), w.typ, len(w.payload))
		}
	}
	c.CloseWithError(CodeNormal, "")
}
