package tracker

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmtv/swarmtv/nat"
)

// rdvEnv is a tracker with STUN, a relay and the rendezvous, served on
// loopback, with channel "live" registered.
func rdvEnv(t *testing.T) (*Rendezvous, *Client) {
	t.Helper()
	tr, err := New(Config{HeartbeatInterval: time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ListenSTUN(STUNConfig{Primary: netip.MustParseAddrPort("127.0.0.1:0")}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	relay, err := nat.NewRelay(nat.RelayConfig{IP: netip.MustParseAddr("127.0.0.1")}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	rv := NewRendezvous(tr, RendezvousConfig{STUN: s, Relay: relay, Logger: testLogger(t)})
	srv := httptest.NewServer(rv.Wrap(tr.Handler()))
	t.Cleanup(srv.Close)
	cl := &Client{BaseURL: srv.URL, HTTP: srv.Client()}
	if err := cl.Register(context.Background(), RegisterRequest{Channel: channelInfo("live", NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, 1), Capacity: 1}); err != nil {
		t.Fatal(err)
	}
	return rv, cl
}

// The rendezvous follows the pairing rule on the NAT classes peers
// report at join: open targets and the origin are dialed directly, cone
// pairs and cone↔symmetric punch (the target gets the dialer's
// candidates through its long-poll at once), port-restricted↔symmetric
// is relayed, a failed punch falls back to the relay, and outcomes are
// counted.
func TestRendezvousModes(t *testing.T) {
	rv, cl := rdvEnv(t)
	ctx := context.Background()
	in, err := cl.NAT(ctx)
	if err != nil || in.STUN == "" || !in.Relay {
		t.Fatalf("NAT info %+v, %v", in, err)
	}
	nats := map[int]string{1: "open", 2: "fullcone", 3: "restricted", 4: "portrestricted", 5: "symmetric", 6: ""}
	for i := 1; i <= 6; i++ {
		p := peer(i)
		cands := []string{"10.0.0." + itoa(i) + ":4000", "198.51.100." + itoa(i) + ":5000"}
		if _, err := cl.Join(ctx, "live", JoinRequest{ID: p.ID, Addr: p.Addr, Capacity: 2, NAT: nats[i], Candidates: cands}); err != nil {
			t.Fatal(err)
		}
	}
	// Two symmetric peers behind one NAT (one mapped IP) punch over
	// their LAN addresses.
	for i := 7; i <= 8; i++ {
		p := peer(i)
		cands := []string{"10.9.0." + itoa(i) + ":4000", "198.51.100.99:" + itoa(5000+i)}
		if _, err := cl.Join(ctx, "live", JoinRequest{ID: p.ID, Addr: p.Addr, Capacity: 2, NAT: "symmetric", Candidates: cands}); err != nil {
			t.Fatal(err)
		}
	}
	// A symmetric peer whose NAT allocates in sequence lists predicted
	// ports (three candidates on its mapped IP).
	if _, err := cl.Join(ctx, "live", JoinRequest{ID: nid(9), Addr: peer(9).Addr, Capacity: 2, NAT: "symmetric",
		Candidates: []string{"10.8.0.9:4000", "198.51.100.9:40002", "198.51.100.9:40003", "198.51.100.9:40004"}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		from, to int
		relay    bool
		want     string
	}{
		{2, 0, false, ModeDirect}, // the origin
		{5, 1, false, ModeDirect}, // open target
		{6, 2, false, ModeDirect}, // dialer not probed
		{2, 4, false, ModePunch},
		{5, 3, false, ModePunch},
		{4, 5, false, ModeRelay},
		{5, 4, false, ModeRelay},
		{3, 4, true, ModeRelay}, // punching failed
		{7, 8, false, ModePunch},
		{4, 9, false, ModePunch}, // port prediction
		{9, 4, false, ModePunch},
		{5, 9, false, ModeRelay}, // symmetric on both sides
	}
	for _, c := range cases {
		resp, err := cl.Connect(ctx, "live", ConnectRequest{ID: nid(c.from), Target: nid(c.to), Relay: c.relay})
		if err != nil {
			t.Fatalf("%d→%d: %v", c.from, c.to, err)
		}
		if resp.Mode != c.want {
			t.Fatalf("%d→%d (%s→%s): mode %s, want %s", c.from, c.to, nats[c.from], nats[c.to], resp.Mode, c.want)
		}
		if c.want == ModeDirect {
			continue
		}
		offers, err := cl.Offers(ctx, "live", nid(c.to), time.Second)
		if err != nil || len(offers) != 1 {
			t.Fatalf("%d→%d: offers %+v, %v", c.from, c.to, offers, err)
		}
		o := offers[0]
		if o.From != nid(c.from) || o.Token != resp.Token || o.Token == 0 || o.Mode != c.want {
			t.Fatalf("%d→%d: offer %+v for response %+v", c.from, c.to, o, resp)
		}
		switch c.want {
		case ModePunch:
			if len(resp.Candidates) < 2 || !strings.HasPrefix(resp.Candidates[0], "10.") || !strings.HasSuffix(resp.Candidates[0], "."+itoa(c.to)+":4000") || len(o.Candidates) < 2 {
				t.Fatalf("%d→%d: candidates %v / %v", c.from, c.to, resp.Candidates, o.Candidates)
			}
		case ModeRelay:
			if resp.Relay == "" || o.Relay != resp.Relay {
				t.Fatalf("%d→%d: relay %q / %q", c.from, c.to, resp.Relay, o.Relay)
			}
		}
	}

	// A long-poll waits and wakes when an offer comes.
	got := make(chan []Offer, 1)
	go func() {
		o, _ := cl.Offers(ctx, "live", nid(3), 5*time.Second)
		got <- o
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := cl.Connect(ctx, "live", ConnectRequest{ID: nid(2), Target: nid(3)}); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-got:
		if len(o) != 1 || o[0].From != nid(2) {
			t.Fatalf("long-poll gave %+v", o)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("the long-poll did not wake on the offer")
	}

	for _, r := range []ConnectResult{
		{ID: nid(2), Target: nid(4), Outcome: OutcomeDirect, ConnectMS: 120},
		{ID: nid(4), Target: nid(5), Outcome: OutcomeRelayed, ConnectMS: 300},
	} {
		if err := cl.ConnectResult(ctx, "live", r); err != nil {
			t.Fatal(err)
		}
	}
	cs, err := cl.NATConnections(ctx)
	if err != nil || cs.Direct != 1 || cs.Relayed != 1 || cs.Failed != 0 || len(cs.Connections) != 2 {
		t.Fatalf("connections %+v, %v", cs, err)
	}
	if c := cs.Connections[1]; c.FromNAT != "portrestricted" || c.TargetNAT != "symmetric" || c.ConnectMS != 300 {
		t.Fatalf("connection %+v", c)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(rv)
	if n := testutil.CollectAndCount(reg, "swarmtv_nat_connections_total"); n != 3 {
		t.Fatalf("%d connection series", n)
	}
	want := "# HELP swarmtv_nat_connections_total Peer-to-peer dials through the rendezvous, by outcome (direct, relayed, failed).\n# TYPE swarmtv_nat_connections_total counter\n" +
		"swarmtv_nat_connections_total{outcome=\"direct\"} 1\nswarmtv_nat_connections_total{outcome=\"failed\"} 0\nswarmtv_nat_connections_total{outcome=\"relayed\"} 1\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "swarmtv_nat_connections_total"); err != nil {
		t.Fatal(err)
	}
}

// Bad rendezvous requests get a clear error and change nothing.
func TestRendezvousBadRequests(t *testing.T) {
	rv, cl := rdvEnv(t)
	ctx := context.Background()
	for _, req := range []ConnectRequest{
		{ID: "nope", Target: nid(1)},
		{ID: nid(1), Target: nid(1)},
		{ID: nid(1), Target: nid(2), Candidates: []string{"not an address"}},
	} {
		if _, err := cl.Connect(ctx, "live", req); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("%+v: %v, want bad request", req, err)
		}
	}
	if _, err := cl.Connect(ctx, "nochannel", ConnectRequest{ID: nid(1), Target: nid(2)}); !errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("unknown channel: %v", err)
	}
	if err := cl.ConnectResult(ctx, "live", ConnectResult{ID: nid(1), Target: nid(2), Outcome: "teleported"}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad outcome: %v", err)
	}
	if _, err := cl.Offers(ctx, "live", "x", time.Millisecond); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad poll id: %v", err)
	}
	// A peer that never joined cannot start a rendezvous or poll.
	if _, err := cl.Connect(ctx, "live", ConnectRequest{ID: nid(1), Target: nid(2)}); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("connect from a stranger: %v, want unknown peer", err)
	}
	if _, err := cl.Offers(ctx, "live", nid(1), time.Millisecond); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("poll by a stranger: %v, want unknown peer", err)
	}
	// A joined peer asking too fast is refused with 429 until its
	// bucket refills.
	if _, err := cl.Join(ctx, "live", JoinRequest{ID: nid(1), Addr: "127.0.0.1:10001", Capacity: 1, NAT: "fullcone"}); err != nil {
		t.Fatal(err)
	}
	var refused *APIError
	for i := 0; i <= ConnectBurst; i++ {
		_, err := cl.Connect(ctx, "live", ConnectRequest{ID: nid(1), Target: nid(2)})
		if i < ConnectBurst && err != nil {
			t.Fatalf("connect %d within the burst: %v", i, err)
		}
		if i == ConnectBurst && (!errors.As(err, &refused) || refused.Status != 429) {
			t.Fatalf("connect beyond the burst: %v, want 429", err)
		}
	}
	if cs := rv.Connections(); len(cs.Connections) != 0 || cs.Direct+cs.Relayed+cs.Failed != 0 {
		t.Fatalf("bad requests changed the record: %+v", cs)
	}
}
