package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/transport"
)

// While the tracker is away (an outage, a network partition) a dial does
// not wait for the rendezvous: after one attempt that fails, dials go
// straight to the path the node was last reached at (a punched path),
// for rvBackoff, and a real QUIC dial to a node advertised at a stale
// address succeeds over that path.
func TestDialWithoutRendezvous(t *testing.T) {
	var connects atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		connects.Add(1)
		http.Error(w, "tracker overloaded", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	p, err := NewPeer(PeerConfig{Channel: "tv", Tracker: srv.URL, RTSP: "127.0.0.1:0", NoProbe: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.nat.close(); p.rtsp.Close(); p.ep.Close() })
	p.nat.mu.Lock()
	p.nat.enabled = true
	p.nat.mu.Unlock()
	p.ep.SetDialHook(p.nat.beforeDial)

	id, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	target, err := transport.Listen("127.0.0.1:0", id, p.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		for {
			c, err := target.Accept(ctx)
			if err != nil {
				return
			}
			defer c.CloseWithError(0, "")
		}
	}()

	// The first dial asks the rendezvous, which fails: it dials the
	// advertised address, which works, and remembers it.
	c, err := p.ep.Dial(ctx, target.Addr().String(), target.ID())
	if err != nil {
		t.Fatal(err)
	}
	c.CloseWithError(0, "")
	if n := connects.Load(); n != 1 {
		t.Fatalf("%d rendezvous requests, want 1", n)
	}
	// The node is now advertised somewhere it cannot be reached (its
	// LAN address behind a NAT, say): the remembered path is dialed, and
	// the rendezvous is not asked again while it is down.
	start := time.Now()
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	defer dcancel()
	c, err = p.ep.Dial(dctx, "127.0.0.1:1", target.ID())
	if err != nil {
		t.Fatalf("dial over the remembered path: %v", err)
	}
	c.CloseWithError(0, "")
	if n := connects.Load(); n != 1 {
		t.Fatalf("%d rendezvous requests while it is down, want 1", n)
	}
	t.Logf("dialed over the remembered path in %v", time.Since(start).Round(time.Millisecond))
	if got := p.nat.pathTo(target.ID(), "x"); got != target.Addr().String() {
		t.Fatalf("remembered path %q, want %q", got, target.Addr().String())
	}
}
