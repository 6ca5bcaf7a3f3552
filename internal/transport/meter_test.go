package transport

import (
	"testing"
	"time"
)

func TestUploadMeter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var m uploadMeter
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// 0–500 ms: fast but never backlogged (the stream set the pace).
	for i := range 50 {
		m.add(at(i*10), 100_000, false)
	}
	// 500–1000 ms: backlogged, 50 × 10 kB = 500 kB in 0.5 s = 8 Mbit/s.
	for i := range 50 {
		m.add(at(500+i*10), 10_000, true)
	}
	if got := m.peakBPS(); got != 0 {
		t.Fatalf("peak %d before a backlogged window closed", got)
	}
	// 1000–1500 ms: backlogged but slower: the peak stays.
	for i := range 50 {
		m.add(at(1000+i*10), 5_000, true)
	}
	m.add(at(1500), 1, false) // closes the window
	if got, want := m.peakBPS(), int64(8_000_000); got != want {
		t.Fatalf("peak %d bit/s, want %d", got, want)
	}
	// Too few writes in a window do not count.
	var few uploadMeter
	few.add(at(0), 1<<20, true)
	few.add(at(600), 1, true)
	if got := few.peakBPS(); got != 0 {
		t.Fatalf("a window of %d write(s) counted: %d", 1, got)
	}
}
