package sim

import "testing"

// A download link serves transfers in the order they reach it, not the
// order they were sent in: a chunk booked to arrive late (queued behind a
// congested parent's upload) leaves the link free before it.
func TestDownloadInArrivalOrder(t *testing.T) {
	const ms = int64(1e6)
	var p peer
	// A chunk due at 1,000 ms taking 10 ms on the link.
	if a := p.download(0, 1000*ms, 10*ms); a != 1000*ms {
		t.Fatalf("first booking arrives at %d ms, want 1000", a/ms)
	}
	// One sent later but reaching the link at 50 ms does not wait for it.
	if a := p.download(5*ms, 50*ms, 10*ms); a != 50*ms {
		t.Fatalf("an earlier arrival waited: %d ms, want 50", a/ms)
	}
	// One reaching it at 55 ms waits for the one at 50 (the link is busy
	// 40–50 and 990–1000): it needs 10 ms after 50.
	if a := p.download(5*ms, 55*ms, 10*ms); a != 60*ms {
		t.Fatalf("an overlapping arrival at %d ms, want 60", a/ms)
	}
	// One that does not fit before the late booking goes after it.
	if a := p.download(5*ms, 995*ms, 10*ms); a != 1010*ms {
		t.Fatalf("an arrival overlapping the late booking at %d ms, want 1010", a/ms)
	}
	// In send order and in arrival order alike, back to back: the old
	// model's behaviour.
	var q peer
	for i, want := range []int64{100, 110, 120} {
		if a := q.download(0, 100*ms, 10*ms); a != want*ms {
			t.Fatalf("back-to-back transfer %d arrives at %d ms, want %d", i, a/ms, want)
		}
	}
	// Bookings that ended are forgotten.
	if a := q.download(500*ms, 500*ms, 10*ms); a != 500*ms || len(q.downSpans) != 1 {
		t.Fatalf("after the link went idle: arrival %d ms, %d bookings kept", a/ms, len(q.downSpans))
	}
}
