package transport

import (
	"bufio"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// A child's writer sends its live chunks before its backlog, and its
// backlog only while no child has a live chunk queued; then the backlog
// goes out in order. Real QUIC between two endpoints on loopback.
func TestLiveBeforeBacklog(t *testing.T) {
	d := &Driver{now: time.Now, log: testLogger(t)}
	// Two live chunks of this child and one of another child are queued.
	ch, read := runWriter(t, d, 3, func(ch *child) {
		for i := range 3 {
			ch.backlog <- queued{raw: fmt.Appendf(nil, "backlog %d", i)}
		}
		for i := range 2 {
			ch.queue <- queued{raw: fmt.Appendf(nil, "live %d", i)}
		}
	})
	for i := range 2 {
		if got, want := read(), fmt.Sprintf("live %d", i); got != want {
			t.Fatalf("frame %d: %q, want %q (live first)", i, got, want)
		}
	}
	if n := d.liveQueued.Load(); n != 1 {
		t.Fatalf("%d live chunks counted queued, want the other child's 1", n)
	}
	d.liveQueued.Add(-1) // the other child's live chunk went out
	for i := range 3 {
		if got, want := read(), fmt.Sprintf("backlog %d", i); got != want {
			t.Fatalf("backlog frame %d: %q, want %q", i, got, want)
		}
	}
	// Backlog queued while the writer waits, with no live chunk anywhere,
	// goes out (the writer wakes for it).
	ch.backlog <- queued{raw: []byte("late backlog")}
	if got := read(); got != "late backlog" {
		t.Fatalf("frame %q, want the late backlog", got)
	}
}

// runWriter runs d's writer for one child over real QUIC between two
// endpoints on loopback: fill queues the child's chunks first, and
// liveQueued is the driver's count of live chunks queued to all its
// children when the writer starts. read returns the payload of the
// next frame the child receives. The writer stops at the test's end.
func runWriter(t *testing.T, d *Driver, liveQueued int64, fill func(*child)) (ch *child, read func() string) {
	t.Helper()
	a, b := newEndpoint(t), newEndpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, sc := dialPair(ctx, t, a, b)
	t.Cleanup(func() { c.CloseWithError(CodeNormal, "") })
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch = &child{
		id: sc.Remote(), conn: c, stream: s,
		queue:   make(chan queued, 8),
		backlog: make(chan queued, 8),
		alive:   make(chan []byte, 1),
		quit:    make(chan struct{}),
	}
	fill(ch)
	d.liveQueued.Store(liveQueued)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.writeChild(ch)
	}()
	t.Cleanup(func() {
		close(ch.quit)
		<-done
	})
	ss, err := sc.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(ss)
	return ch, func() string {
		t.Helper()
		f, err := wire.ReadFrame(br, 0)
		if err != nil {
			t.Fatal(err)
		}
		return string(f.Payload)
	}
}
