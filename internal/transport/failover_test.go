package transport

import (
	"testing"
	"time"
)

func TestParentKilledFallsBackToOrigin(t *testing.T) {
	s := newStream(t, 2)
	origin, a, b := chain(t, s)
	const last = 80
	published := make(chan struct{})
	go func() {
		defer close(published)
		s.publish(t, origin.drv, 1, last)
	}()
	b.play.waitFor(t, 10, 5*time.Second)
	a.stop(t) // mid-stream: its driver and socket go away

	<-published
	b.play.waitFor(t, last, 5*time.Second)
	b.play.check(t, s, 1, last)

	b.play.mu.Lock()
	lost := append([]Lost(nil), b.play.lost...)
	b.play.mu.Unlock()
	if len(lost) == 0 {
		t.Fatal("b never reported its parent lost")
	}
	for _, l := range lost {
		if l.Parent != a.ep.ID() {
			t.Fatalf("b lost %s, want its parent %s", l.Parent, a.ep.ID())
		}
	}
	st := b.drv.Stats()
	if st.LostSlices != 0 {
		t.Fatalf("b skipped %d slices", st.LostSlices)
	}
	if st.Fetches == 0 || st.OriginBytesIn == 0 {
		t.Fatalf("b did not fetch from the origin: %+v", st)
	}
	// The origin's count of fetch bytes matches what b received from it,
	// within a retried fetch answered twice or an answer still in flight
	// when the stats were read.
	if served := origin.drv.FetchBytesServed(); served == 0 || served > st.OriginBytesIn+st.OriginBytesIn/10 || served < st.OriginBytesIn-st.OriginBytesIn/10 {
		t.Fatalf("origin served %d fetch bytes; b received %d bytes from the origin", served, st.OriginBytesIn)
	}
	t.Logf("b: %d fetches, %d origin bytes, %d stalls", st.Fetches, st.OriginBytesIn, st.Stalls)
}

func TestSwitchParent(t *testing.T) {
	s := newStream(t, 2)
	origin, a, b := chain(t, s)
	const last = 60
	published := make(chan struct{})
	go func() {
		defer close(published)
		s.publish(t, origin.drv, 1, last)
	}()
	b.play.waitFor(t, 10, 5*time.Second)
	b.drv.SetParent(origin.peer()) // the tracker moved b up
	waitChildren(t, origin, a, b)
	waitChildren(t, a)

	<-published
	b.play.check(t, s, 1, last)
	a.play.check(t, s, 1, last)
	if st := b.drv.Stats(); st.LostSlices != 0 || st.BadChunks != 0 {
		t.Fatalf("b stats after the switch: %+v", st)
	}
	// The parent link and the fetcher share one connection to the origin.
	b.drv.mu.Lock()
	n := len(b.drv.conns[origin.ep.ID()])
	b.drv.mu.Unlock()
	if n != 1 {
		t.Fatalf("b holds %d connections to the origin, want 1", n)
	}
	b.play.mu.Lock()
	defer b.play.mu.Unlock()
	if len(b.play.lost) != 0 {
		t.Fatalf("a deliberate switch reported lost parents: %+v", b.play.lost)
	}
}
