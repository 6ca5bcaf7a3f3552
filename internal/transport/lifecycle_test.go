package transport

import (
	"bufio"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// subscribe dials target from a fresh identity and sends a Hello; it
// returns the connection and a reader on the stream.
func subscribe(t *testing.T, target *testNode, h wire.Hello) (*Conn, *bufio.Reader) {
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
	if err := wire.WriteFrame(s, wire.FrameHello, h.Append(nil)); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(3 * time.Second))
	return c, bufio.NewReader(s)
}

func TestSubscriptionRefused(t *testing.T) {
	s := newStream(t, 2)
	full := startNode(t, s, nodeOpts{source: true, maxChildren: 0})
	cases := []struct {
		name  string
		hello wire.Hello
		code  wire.ByeCode
	}{
		{"no capacity", wire.Hello{Channel: testChannel, Stripes: 3}, wire.ByeFull},
		{"other channel", wire.Hello{Channel: "other", Stripes: 3}, wire.ByeWrongChannel},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, br := subscribe(t, full, tc.hello)
			defer c.CloseWithError(CodeNormal, "")
			f, err := wire.ReadFrame(br, 0)
			if err != nil {
				t.Fatal(err)
			}
			bye, err := wire.ParseBye(f.Payload)
			if f.Type != wire.FrameBye || err != nil || bye.Code != tc.code {
				t.Fatalf("got %v frame %+v (%v), want bye code %d", f.Type, bye, err, tc.code)
			}
		})
	}
	if got := full.drv.Children(); len(got) != 0 {
		t.Fatalf("children %v after refusals", got)
	}
}

// A parent that refuses the subscription is reported lost.
func TestParentRefusalReportsLost(t *testing.T) {
	s := newStream(t, 1)
	origin := startNode(t, s, nodeOpts{source: true, maxChildren: 0})
	a := startNode(t, s, nodeOpts{})
	a.drv.SetParent(origin.peer())
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.play.mu.Lock()
		lost := slices.Clone(a.play.lost)
		a.play.mu.Unlock()
		if len(lost) > 0 {
			if lost[0].Parent != origin.ep.ID() {
				t.Fatalf("lost %+v, want parent %s", lost[0], origin.ep.ID())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("refused subscription never reported lost")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSlowChildDropped(t *testing.T) {
	s := newStream(t, 1)
	s.packets, s.size = 64, 1024 // 64 KiB chunks
	origin := startNode(t, s, nodeOpts{source: true, maxChildren: 2, childQueue: 64})
	good := startNode(t, s, nodeOpts{})
	good.drv.SetParent(origin.peer())
	waitChildren(t, origin, good)

	// A child that subscribes and never reads: flow control stops the
	// writer, the queue fills.
	slow, _ := subscribe(t, origin, wire.Hello{Channel: testChannel, Stripes: 1})
	defer slow.CloseWithError(CodeNormal, "")
	deadline := time.Now().Add(5 * time.Second)
	for len(origin.drv.Children()) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("slow child never subscribed")
		}
		time.Sleep(5 * time.Millisecond)
	}

	base := time.Now()
	for seq := uint64(1); seq <= 200; seq++ {
		cs, raws := s.chunks(t, seq, base.Add(time.Duration(seq)*s.slice), s.key)
		origin.drv.Publish(cs[0], raws[0])
		time.Sleep(3 * time.Millisecond) // ~20 MB/s: the good child keeps up
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		got := origin.drv.Children()
		if len(got) == 1 && got[0] == good.ep.ID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("children %v, want only the good one", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDriverLifecycle(t *testing.T) {
	s := newStream(t, 1)
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	ep, err := Listen("127.0.0.1:0", id, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	node, err := swarm.New(swarm.Config{Channel: testChannel, PublicKey: s.pub, Stripes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewDriver(DriverConfig{Node: node, Endpoint: ep, Logger: testLogger(t)}); err == nil {
		t.Fatal("config without channel accepted")
	}
	if _, err := NewDriver(DriverConfig{Node: node, Endpoint: ep, Channel: testChannel, Logger: testLogger(t), Origin: Peer{ID: "x"}}); err == nil {
		t.Fatal("origin without address accepted")
	}

	d, err := NewDriver(DriverConfig{Node: node, Endpoint: ep, Channel: testChannel, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	d.SetParent(Peer{}) // never blocks, even before Run
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	cs, raws := s.chunks(t, 1, time.Now(), s.key)
	d.Publish(cs[0], raws[0]) // not a source: the node ignores it
	if st := d.Stats(); st.BadChunks != 0 {
		t.Fatalf("stats %+v", st)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v, want context.Canceled", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d.Close() // idempotent
	if err := d.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v, want ErrClosed", err)
	}
	_ = d.Stats() // the last counters, without blocking
	if d.Children() != nil {
		t.Fatal("children after Close")
	}

	// Close before Run.
	d2, err := NewDriver(DriverConfig{Node: node, Endpoint: ep, Channel: testChannel, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	d2.Close()
	if err := d2.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v, want ErrClosed", err)
	}
}
