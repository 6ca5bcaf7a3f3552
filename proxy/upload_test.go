package proxy

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/swarmtv/swarmtv/tracker"
)

// The peer measures its upload with a timed upload to a real tracker and
// reports it capped by the user's limit.
func TestUploadMeasured(t *testing.T) {
	tr, err := tracker.New(tracker.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tr.Handler())
	t.Cleanup(srv.Close)
	for _, cap := range []int64{0, 2_000_000} {
		p, err := NewPeer(PeerConfig{Channel: "tv", Tracker: srv.URL, RTSP: "127.0.0.1:0", MaxUploadBPS: cap})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.ep.Close(); p.rtsp.Close() })
		if got := p.UploadBPS(); got != 0 {
			t.Fatalf("upload %d before measuring", got)
		}
		p.probeUpload(context.Background())
		p.mu.Lock()
		probed := p.probed
		p.mu.Unlock()
		got := p.UploadBPS()
		switch {
		case probed <= 0:
			t.Fatalf("probe measured %d bit/s", probed)
		case cap == 0 && got != probed:
			t.Fatalf("reported %d bit/s, measured %d", got, probed)
		case cap != 0 && got != min(cap, probed):
			t.Fatalf("reported %d bit/s with cap %d, measured %d", got, cap, probed)
		}
		t.Logf("cap %d: measured %.0f Mbit/s over loopback, reported %d bit/s", cap, float64(probed)/1e6, got)
	}
	if _, err := NewPeer(PeerConfig{Channel: "tv", Tracker: srv.URL, MaxUploadBPS: -1}); err == nil {
		t.Fatal("a negative upload cap was accepted")
	}
}
