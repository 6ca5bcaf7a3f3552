package sim

import (
	"testing"
	"time"
)

// BenchmarkRun measures the whole event loop — the real swarm cores, the
// tracker's placement rounds, the network model and the queue — on a
// scaled-down steady scenario (the defaults: a 4 Mbit/s stream, 100 ms
// slices, 4 stripes, fast verification), 1,000 peers joining within 5 s
// and watching for 15 s. It reports events per second of wall time and
// ns per event.
func BenchmarkRun(b *testing.B) {
	c := DefaultConfig()
	c.Scenario = "bench"
	c.Peers = 1000
	c.Duration = 15 * time.Second
	c.FlashCrowd = 5 * time.Second
	c.Seed = 1
	var events uint64
	start := time.Now()
	for range b.N {
		s, err := New(c)
		if err != nil {
			b.Fatal(err)
		}
		r, err := s.Run()
		if err != nil {
			b.Fatal(err)
		}
		if r.Continuity == nil || *r.Continuity < 0.9 {
			b.Fatalf("continuity %v: the benchmark's swarm does not work", r.Continuity)
		}
		events += s.Events()
	}
	el := time.Since(start)
	b.ReportMetric(float64(events)/el.Seconds(), "events/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(events), "ns/event")
}

// The tracker's join window is 10 ms up to 10,000 peers (runs at those
// sizes replay as before) and grows with the peers beyond, as a real
// tracker's round cost does.
func TestJoinWindowScales(t *testing.T) {
	for _, tt := range []struct {
		peers int
		want  time.Duration
	}{{10, 10 * time.Millisecond}, {10_000, 10 * time.Millisecond}, {20_000, 20 * time.Millisecond}, {100_000, 100 * time.Millisecond}} {
		s := &Sim{cfg: Config{Peers: tt.peers}}
		if got := time.Duration(s.joinWindow()); got != tt.want {
			t.Errorf("%d peers: join window %v, want %v", tt.peers, got, tt.want)
		}
	}
}
