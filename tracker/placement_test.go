package tracker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/chandelier"
)

// A peer's backups carry the lag each backup last reported (so its own
// repair can skip one further behind live than itself), over HTTP; the
// channel's placement counters are kept.
func TestBackupsCarryReportedLag(t *testing.T) {
	e := newEnv(t, 1)
	for i := 1; i <= 8; i++ {
		e.join(t, i, 4)
	}
	for i := 1; i <= 8; i++ {
		if _, err := e.cl.Heartbeat(context.Background(), "live", HeartbeatRequest{ID: nid(i), Stats: PeerStats{LagMS: int64(1000 + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	e.tr.Round()
	resp := e.heartbeat(t, 8)
	seen := 0
	for s, a := range resp.Stripes {
		for _, b := range a.Backups {
			want := int64(0)
			for i := 1; i <= 8; i++ {
				if nid(i) == b.ID {
					want = int64(1000 + i)
				}
			}
			if b.LagMS != want {
				t.Errorf("stripe %d: backup %s carries lag %d ms, it reported %d", s, b.ID, b.LagMS, want)
			}
			seen++
		}
	}
	if seen == 0 {
		t.Fatal("no backups to check")
	}
	// The stripes' backups share one array in the Go API: appending to
	// one stripe's must leave the next stripe's as they were.
	direct, err := e.tr.Heartbeat("live", HeartbeatRequest{ID: nid(8)})
	if err != nil {
		t.Fatal(err)
	}
	for s := 0; s+1 < len(direct.Stripes); s++ {
		next := slices.Clone(direct.Stripes[s+1].Backups)
		_ = append(direct.Stripes[s].Backups, NodeInfo{ID: "appended"})
		if !slices.Equal(direct.Stripes[s+1].Backups, next) {
			t.Fatalf("appending to stripe %d's backups changed stripe %d's: %v", s, s+1, direct.Stripes[s+1].Backups)
		}
	}
	ps, err := e.tr.Placement("live")
	if err != nil || ps.Placer != PlacerChandelier || ps.Rounds == 0 {
		t.Errorf("placement counters %+v, %v", ps, err)
	}
	if _, err := e.tr.Placement("nope"); err == nil {
		t.Error("placement counters of an unknown channel")
	}
}

// With Config.Relay, a symmetric peer among symmetric forwarders (no
// direct path: nat/core.CanPunch) gets a parent through the relay once
// it went chandelier.DefaultRelayAfter without one, marked in its
// assignment and counted; without it, it waits on the origin.
func TestRelayedPlacement(t *testing.T) {
	for _, relay := range []bool{false, true} {
		c := &clock{now: t0}
		tr, err := New(Config{HeartbeatInterval: time.Second, Now: c.Now, Logger: testLogger(t), Relay: relay})
		if err != nil {
			t.Fatal(err)
		}
		origin := NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}
		if _, err := tr.Register(RegisterRequest{Channel: channelInfo("live", origin, 1), Capacity: 1}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 9; i++ {
			p := peer(i)
			if _, err := tr.Join("live", JoinRequest{ID: p.ID, Addr: p.Addr, Capacity: 8, NAT: "symmetric"}); err != nil {
				t.Fatal(err)
			}
		}
		c.Advance(chandelier.DefaultRelayAfter)
		tr.Round()
		resp, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(9)})
		if err != nil {
			t.Fatal(err)
		}
		relayed := 0
		for _, a := range resp.Stripes {
			if a.Relayed {
				relayed++
				if a.Parent.ID == "" || a.Parent.ID == origin.ID {
					t.Errorf("relay %v: a relayed assignment from %q", relay, a.Parent.ID)
				}
			}
		}
		ps, _ := tr.Placement("live")
		t.Logf("relay %v: %d of the last peer's stripes relayed; placement %+v", relay, relayed, ps)
		if relay && (ps.Relayed == 0 || ps.RelayedEdges == 0) || !relay && (ps.Relayed != 0 || relayed != 0) {
			t.Errorf("relay %v: relayed placements %d standing %d (last peer %d)", relay, ps.Relayed, ps.RelayedEdges, relayed)
		}
	}
}
