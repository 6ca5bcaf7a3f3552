package transport

import (
	"bufio"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// A child's writer drops the live chunks that waited longer than
// MaxQueueDelay in its queue (the parent's upload did not keep up) and
// writes the rest in order. Real QUIC between two endpoints on loopback.
func TestWriterDropsStaleChunks(t *testing.T) {
	a, b := newEndpoint(t), newEndpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, sc := dialPair(ctx, t, a, b)
	t.Cleanup(func() { c.CloseWithError(CodeNormal, "") })
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	d := &Driver{now: func() time.Time { return now }, log: testLogger(t), cfg: DriverConfig{MaxQueueDelay: 500 * time.Millisecond}}
	ch := &child{
		id: sc.Remote(), conn: c, stream: s,
		queue:   make(chan queued, 8),
		backlog: make(chan queued, 8),
		alive:   make(chan []byte, 1),
		quit:    make(chan struct{}),
	}
	// Queued 900, 600, 500 and 100 ms ago, and now: the first two are
	// too old; 500 ms is the limit itself.
	for i, age := range []time.Duration{900, 600, 500, 100, 0} {
		ch.queue <- queued{raw: fmt.Appendf(nil, "live %d", i), at: now.Add(-age * time.Millisecond).UnixNano()}
	}
	d.liveQueued.Store(5)
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
	for i := 2; i < 5; i++ {
		f, err := wire.ReadFrame(br, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(f.Payload), fmt.Sprintf("live %d", i); got != want {
			t.Fatalf("frame %q, want %q (the two older than the limit dropped)", got, want)
		}
	}
	if n := d.QueueDropped(); n != 2 {
		t.Fatalf("%d chunks counted dropped, want 2", n)
	}
	if n := d.liveQueued.Load(); n != 0 {
		t.Fatalf("%d live chunks counted queued after the writer took them all, want 0", n)
	}
}
