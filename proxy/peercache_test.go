package proxy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	randv2 "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/overlay"
	"github.com/swarmtv/swarmtv/tracker"
)

// The cache file round-trips; bad or foreign files are errors that name
// the file, and entries that are not a node ID and host:port are dropped.
func TestPeerCacheFile(t *testing.T) {
	dir := t.TempDir()
	if got, err := loadPeerCache(dir, "tv"); err != nil || got != nil {
		t.Fatalf("no file: %v, %v; want an empty cache", got, err)
	}
	good := tracker.NodeInfo{ID: strings.Repeat("a", 32), Addr: "192.0.2.1:4000"}
	peers := []tracker.NodeInfo{good, {ID: "not-an-id", Addr: "192.0.2.2:4000"}, {ID: strings.Repeat("b", 32), Addr: "no port"}}
	if err := savePeerCache(dir, "tv", peers); err != nil {
		t.Fatal(err)
	}
	got, err := loadPeerCache(dir, "tv")
	if err != nil || len(got) != 1 || got[0] != good {
		t.Fatalf("loaded %v, %v; want only %v", got, err, good)
	}
	if _, err := loadPeerCache(dir, "other"); err != nil {
		t.Fatalf("another channel's (missing) cache: %v", err)
	}
	os.Rename(cachePath(dir, "tv"), cachePath(dir, "other"))
	if _, err := loadPeerCache(dir, "other"); err == nil || !strings.Contains(err.Error(), `"tv"`) {
		t.Fatalf("a cache of channel tv loaded as other's: %v", err)
	}
	os.WriteFile(cachePath(dir, "tv"), []byte("{garbage"), 0o600)
	if _, err := loadPeerCache(dir, "tv"); err == nil || !strings.Contains(err.Error(), cachePath(dir, "tv")) {
		t.Fatalf("garbage: %v", err)
	}
	many := make([]tracker.NodeInfo, 40)
	for i := range many {
		many[i] = tracker.NodeInfo{ID: strings.Repeat(string(rune('a'+i%6)), 32), Addr: "192.0.2.1:4000"}
	}
	if err := savePeerCache(dir, "tv", many); err != nil {
		t.Fatal(err)
	}
	if got, _ := loadPeerCache(dir, "tv"); len(got) != maxCached {
		t.Fatalf("%d cached, want at most %d", len(got), maxCached)
	}
}

// A viewer started while the tracker does not answer and with no
// --bootstrap joins through a ring member it cached before: the first
// cached member is gone, the second answers with the channel, and the
// peer joins the ring through it.
func TestJoinThroughCachedPeer(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ch := tracker.ChannelInfo{Name: "tv", SDP: synthSDP, PublicKey: base64.StdEncoding.EncodeToString(pub),
		Origin: tracker.NodeInfo{ID: strings.Repeat("0", 32), Addr: "127.0.0.1:1"}, Stripes: 2, SliceMS: 100}
	info, err := json.Marshal(ch)
	if err != nil {
		t.Fatal(err)
	}
	// The member: a running overlay that describes the channel.
	mid, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	mep, err := transport.Listen("127.0.0.1:0", mid, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	node, err := overlay.New(overlay.Config{Self: transport.OverlayPeer(mep.ID(), mep.Advertised("")), Rand: randv2.NewPCG(1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	ov, err := transport.NewOverlay(transport.OverlayConfig{Node: node, Endpoint: mep, Channel: "tv", Accept: true, Logger: slog.New(slog.DiscardHandler),
		Info: func() []byte { return info }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ov.Run(context.Background()) }()
	t.Cleanup(func() { ov.Close(); <-done; mep.Close() })

	// A tracker that is gone, and a cache naming a vanished peer first.
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	dir := t.TempDir()
	gone := tracker.NodeInfo{ID: strings.Repeat("e", 32), Addr: "127.0.0.1:9"}
	member := tracker.NodeInfo{ID: string(mep.ID()), Addr: mep.Addr().String()}
	if err := savePeerCache(dir, "tv", []tracker.NodeInfo{gone, member}); err != nil {
		t.Fatal(err)
	}
	p, err := NewPeer(PeerConfig{Channel: "tv", Tracker: srv.URL, RTSP: "127.0.0.1:0", NoProbe: true, StateDir: dir,
		NAT: NATConfig{Off: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runErr })
	// The vanished peer's dial times out first (overlayDialTimeout);
	// a loaded machine adds to that.
	deadline := time.Now().Add(45 * time.Second)
	for {
		// It took the channel from the member and joined the ring through
		// it (the member, an overlay without a swarm, then refuses to be
		// its parent).
		p.mu.Lock()
		name := p.channel.Name
		p.mu.Unlock()
		if ov := p.Overlay(); name == "tv" && ov.Joined && len(ov.Successors) > 0 && ov.Successors[0] == node.Self() {
			break
		}
		select {
		case err := <-runErr:
			runErr <- err
			t.Fatalf("the peer stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not joined through the cached member: channel %q, overlay %+v", name, p.Overlay())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := p.cfg.Bootstrap; got != member.Addr {
		t.Errorf("bootstrap %q, want the cached member %q", got, member.Addr)
	}
	// The ring loop rewrites the cache with the ring members it has now:
	// the member, not the vanished peer.
	for deadline := time.Now().Add(3 * ringEvery); ; time.Sleep(100 * time.Millisecond) {
		got, err := loadPeerCache(dir, "tv")
		if err == nil && len(got) == 1 && got[0].ID == member.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache after joining the ring: %v, %v; want only the member", got, err)
		}
	}
}
