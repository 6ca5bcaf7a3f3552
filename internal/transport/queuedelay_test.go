package transport

import (
	"fmt"
	"testing"
	"time"
)

// A child's writer drops the live chunks that waited longer than
// MaxQueueDelay in its queue (the parent's upload did not keep up) and
// writes the rest in order. Real QUIC between two endpoints on loopback.
func TestWriterDropsStaleChunks(t *testing.T) {
	now := time.Now()
	d := &Driver{now: func() time.Time { return now }, log: testLogger(t), cfg: DriverConfig{MaxQueueDelay: 500 * time.Millisecond}}
	_, read := runWriter(t, d, 5, func(ch *child) {
		// Queued 900, 600, 500 and 100 ms ago, and now: the first two are
		// too old; 500 ms is the limit itself.
		for i, age := range []time.Duration{900, 600, 500, 100, 0} {
			ch.queue <- queued{raw: fmt.Appendf(nil, "live %d", i), at: now.Add(-age * time.Millisecond).UnixNano()}
		}
	})
	for i := 2; i < 5; i++ {
		if got, want := read(), fmt.Sprintf("live %d", i); got != want {
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
