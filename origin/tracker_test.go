package origin

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/origin/testclip"
	"github.com/swarmtv/swarmtv/tracker"
)

// The origin registers the clip with its known rate, keeps the channel
// alive with heartbeats while it runs, and the tracker drops the channel
// once the origin is gone.
func TestOriginHeartbeatsAndRate(t *testing.T) {
	tr, err := tracker.New(tracker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tr.Handler())
	t.Cleanup(srv.Close)
	_, stop := runOrigin(t, Config{Channel: "hb", Source: NewClipSource(nil, nil), Tracker: srv.URL, Stripes: 2})

	clip, err := testclip.Default()
	if err != nil {
		t.Fatal(err)
	}
	want := clip.BitRate()
	if want < 500_000 || want > 3_000_000 {
		t.Fatalf("clip rate %d bit/s: not the ~1.1 Mbit/s clip", want)
	}
	var info tracker.ChannelInfo
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err = tr.Channel("hb")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel not registered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if info.StreamBPS != want {
		t.Fatalf("registered stream_bps %d, want the clip's %d", info.StreamBPS, want)
	}
	// Heartbeats keep the channel past the expiry of a silent origin
	// (3 s), and the measured rate (signed chunks: the clip plus chunk
	// overhead) stays within the tolerance, so nothing is re-planned.
	time.Sleep(tracker.ExpiryIntervals*time.Second + 500*time.Millisecond)
	tr.Round()
	info, err = tr.Channel("hb")
	if err != nil {
		t.Fatalf("channel gone while its origin runs: %v", err)
	}
	if info.StreamBPS != want {
		t.Fatalf("stream_bps became %d (clip %d): a re-plan for a rate within tolerance", info.StreamBPS, want)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	time.Sleep(tracker.ExpiryIntervals*time.Second + 200*time.Millisecond)
	tr.Round()
	if _, err := tr.Channel("hb"); !errors.Is(err, tracker.ErrUnknownChannel) {
		t.Fatalf("channel after its origin stopped: err %v, want ErrUnknownChannel", err)
	}
}

// The rate meter reports the rate over its window once it spans a
// second.
func TestRateMeter(t *testing.T) {
	var m rateMeter
	t0 := time.Unix(1000, 0)
	if r := m.add(t0, 0); r != 0 {
		t.Fatalf("first sample: %d", r)
	}
	if r := m.add(t0.Add(500*time.Millisecond), 62_500); r != 0 {
		t.Fatalf("half a second: %d, want 0 (too short)", r)
	}
	var r int64
	for i := 1; i <= 30; i++ { // 1 Mbit/s for 30 s
		r = m.add(t0.Add(time.Duration(i)*time.Second), uint64(i)*125_000)
		if i < 9 && r != 0 {
			t.Fatalf("rate %d after %d s, want 0 until the samples span %v", r, i, rateMinSpan)
		}
	}
	if r != 1_000_000 {
		t.Fatalf("rate %d, want 1000000", r)
	}
	for i := 31; i <= 45; i++ { // then 2 Mbit/s: the window forgets the old rate
		r = m.add(t0.Add(time.Duration(i)*time.Second), 30*125_000+uint64(i-30)*250_000)
	}
	if r != 2_000_000 {
		t.Fatalf("rate after 15 s at 2 Mbit/s: %d, want 2000000", r)
	}
	if len(m.samples) > 12 {
		t.Fatalf("%d samples kept for a 10 s window", len(m.samples))
	}
}

// A node subscribed to the origin that the tracker does not know (a peer
// that was killed and removed from the channel, its QUIC connection not
// yet timed out) is let go at the origin's next heartbeat, so its slot
// is free for the child the tracker places next.
func TestOriginLetsGoOfChildTrackerForgot(t *testing.T) {
	tr, err := tracker.New(tracker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tr.Handler())
	t.Cleanup(srv.Close)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := runOrigin(t, Config{Channel: "gone", Source: NewClipSource(nil, nil), Tracker: srv.URL, Key: key, Stripes: 1, Capacity: 1})

	// The child: a real node and driver that subscribes without joining
	// the tracker.
	id, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	ep, err := transport.Listen("127.0.0.1:0", id, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	node, err := swarm.New(swarm.Config{Channel: "gone", PublicKey: key.Public().(ed25519.PublicKey), Stripes: 1, Origin: o.ID(), MaxChildren: 1})
	if err != nil {
		t.Fatal(err)
	}
	drv, err := transport.NewDriver(transport.DriverConfig{Node: node, Endpoint: ep, Channel: "gone", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cdone := make(chan error, 1)
	go func() { cdone <- drv.Run(context.Background()) }()
	t.Cleanup(func() {
		drv.Close()
		<-cdone
	})
	drv.SetParent(transport.Peer{ID: o.ID(), Addr: o.Addr()})

	// It gets in, and is let go within a few heartbeats (it would
	// otherwise stay until it closes its connection).
	var in, out time.Time
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && out.IsZero(); time.Sleep(20 * time.Millisecond) {
		n := o.Stats().Children
		switch {
		case n == 1 && in.IsZero():
			in = time.Now()
		case n == 0 && !in.IsZero():
			out = time.Now()
		}
	}
	if in.IsZero() || out.IsZero() {
		t.Fatalf("child subscribed at %v, let go at %v; want both within 10 s", in, out)
	}
	if d := out.Sub(in); d > 3*originHeartbeat {
		t.Errorf("child the tracker does not know let go of after %v, want within %v", d, 3*originHeartbeat)
	}
}

// A negative fetch budget is refused with a clear error.
func TestOriginFetchBudgetConfig(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, err := New(Config{Channel: "c", Source: NewClipSource(nil, nil), Tracker: "http://127.0.0.1:1", Key: key, FetchKbps: -1})
	if err == nil || !strings.Contains(err.Error(), "fetch budget") {
		t.Fatalf("FetchKbps -1: err %v, want one naming the fetch budget", err)
	}
}

// runOrigin runs an origin for cfg (with a fresh channel key if it has
// none) until the test ends or stop is called; stop returns Run's error.
func runOrigin(t *testing.T, cfg Config) (o *Origin, stop func() error) {
	t.Helper()
	if cfg.Key == nil {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Key = key
	}
	o, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { stop() })
	return o, stop
}
