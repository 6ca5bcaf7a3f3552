package tracker

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// An origin that promised heartbeats keeps its channel alive with them;
// when it falls silent the channel is dropped and its peers hear
// ErrUnknownChannel; a re-registration brings the channel back.
func TestOriginHeartbeatKeepsAndDropsChannel(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	reg := e.reg
	reg.HeartbeatMS = 1000
	if err := e.cl.Register(ctx, reg); err != nil {
		t.Fatal(err)
	}
	e.join(t, 1, 4)
	for range 5 { // 5 s of heartbeats every second: alive
		e.clock.Advance(time.Second)
		if _, err := e.cl.OriginHeartbeat(ctx, "live", OriginHeartbeatRequest{Origin: e.origin.ID}); err != nil {
			t.Fatalf("origin heartbeat: %v", err)
		}
		e.heartbeat(t, 1)
	}
	e.clock.Advance(ExpiryIntervals*time.Second + time.Millisecond)
	e.tr.Round()
	if _, err := e.cl.Channel(ctx, "live"); !errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("channel after its origin fell silent: err %v, want ErrUnknownChannel", err)
	}
	if _, err := e.cl.Heartbeat(ctx, "live", HeartbeatRequest{ID: nid(1)}); !errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("peer heartbeat on a dropped channel: err %v, want ErrUnknownChannel", err)
	}
	if _, err := e.cl.OriginHeartbeat(ctx, "live", OriginHeartbeatRequest{Origin: e.origin.ID}); !errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("origin heartbeat on a dropped channel: err %v, want ErrUnknownChannel (register again)", err)
	}
	if err := e.cl.Register(ctx, reg); err != nil {
		t.Fatalf("register again: %v", err)
	}
	if _, err := e.cl.OriginHeartbeat(ctx, "live", OriginHeartbeatRequest{Origin: e.origin.ID}); err != nil {
		t.Fatalf("origin heartbeat after registering again: %v", err)
	}
}

// An origin that promised no heartbeat (HeartbeatMS 0: older origins,
// the simulator) keeps its channel however long it is silent.
func TestOriginWithoutHeartbeatKeepsChannel(t *testing.T) {
	e := newEnv(t, 1)
	e.clock.Advance(time.Hour)
	e.tr.Round()
	if _, err := e.cl.Channel(context.Background(), "live"); err != nil {
		t.Fatalf("channel without origin heartbeats after an hour: %v", err)
	}
}

// Only the registered origin may heartbeat; bad input changes nothing.
func TestOriginHeartbeatRejects(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	for _, tc := range []struct {
		req  OriginHeartbeatRequest
		want error
	}{
		{OriginHeartbeatRequest{Origin: nid(77)}, ErrNotOrigin},
		{OriginHeartbeatRequest{Origin: "nope"}, ErrBadRequest},
		{OriginHeartbeatRequest{Origin: e.origin.ID, StreamBPS: -1}, ErrBadRequest},
		{OriginHeartbeatRequest{Origin: e.origin.ID, Children: []string{"x"}}, ErrBadRequest},
	} {
		if _, err := e.cl.OriginHeartbeat(ctx, "live", tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%+v: err %v, want %v", tc.req, err, tc.want)
		}
	}
	if _, err := e.cl.OriginHeartbeat(ctx, "other", OriginHeartbeatRequest{Origin: e.origin.ID}); !errors.Is(err, ErrUnknownChannel) {
		t.Errorf("unknown channel: err %v", err)
	}
	info, _ := e.cl.Channel(ctx, "live")
	if info != e.reg.Channel {
		t.Errorf("channel changed by rejected heartbeats: %+v", info)
	}
	bad := e.reg
	bad.HeartbeatMS = 5
	if err := e.cl.Register(ctx, bad); !errors.Is(err, ErrBadRequest) {
		t.Errorf("register with heartbeat_ms 5: err %v, want ErrBadRequest", err)
	}
}

// The measured stream rate replaces the assumed one when it differs by
// more than StreamRateTolerance, and the placement plans with it: a
// peer's measured upload then buys more stripe feeds.
func TestOriginHeartbeatStreamRate(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	beat := func(bps int64) OriginHeartbeatResponse {
		t.Helper()
		r, err := e.cl.OriginHeartbeat(ctx, "live", OriginHeartbeatRequest{Origin: e.origin.ID, StreamBPS: bps})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := beat(0); r.StreamBPS != DefaultStreamBPS {
		t.Fatalf("planned rate before a measurement: %d, want the default %d", r.StreamBPS, DefaultStreamBPS)
	}
	if r := beat(DefaultStreamBPS * 11 / 10); r.StreamBPS != DefaultStreamBPS {
		t.Fatalf("a 10 %% change re-planned: rate %d", r.StreamBPS)
	}
	if r := beat(1_100_000); r.StreamBPS != 1_100_000 {
		t.Fatalf("planned rate after measuring 1.1 Mbit/s: %d", r.StreamBPS)
	}
	// A heartbeating origin's channel re-plans at most once per
	// MinReplanInterval.
	reg := e.reg
	reg.HeartbeatMS = 1000
	reg.Channel.StreamBPS = 1_100_000
	if err := e.cl.Register(ctx, reg); err != nil {
		t.Fatal(err)
	}
	if r := beat(3_000_000); r.StreamBPS != 3_000_000 {
		t.Fatalf("first re-plan of a heartbeating origin refused: rate %d", r.StreamBPS)
	}
	wait := func(d time.Duration) { // heartbeats every second meanwhile
		for end := e.clock.Now().Add(d); e.clock.Now().Before(end); {
			e.clock.Advance(time.Second)
			beat(0)
		}
	}
	wait(MinReplanInterval / 2)
	if r := beat(1_100_000); r.StreamBPS != 3_000_000 {
		t.Fatalf("re-planned again %v after the last: rate %d", MinReplanInterval/2, r.StreamBPS)
	}
	wait(MinReplanInterval / 2)
	if r := beat(1_100_000); r.StreamBPS != 1_100_000 {
		t.Fatalf("no re-plan %v after the last: rate %d", MinReplanInterval, r.StreamBPS)
	}
	info, _ := e.cl.Channel(ctx, "live")
	if info.StreamBPS != 1_100_000 {
		t.Fatalf("channel info stream_bps = %d", info.StreamBPS)
	}
	// A peer that measured 1.1 Mbit/s of upload feeds about 3 stripes of
	// a 1.1 Mbit/s stream (Usable share), not under one of 4 Mbit/s.
	p := peer(1)
	if _, err := e.cl.Join(ctx, "live", JoinRequest{ID: p.ID, Addr: p.Addr, Capacity: 8, UploadBPS: 1_100_000}); err != nil {
		t.Fatal(err)
	}
	e.join(t, 2, 0)
	e.join(t, 3, 0)
	e.tr.Round()
	view, _ := e.cl.Tree(ctx, "live")
	fed := 0
	for _, n := range view.Nodes {
		for _, s := range n.Stripes {
			if s.Parent == p.ID {
				fed++
			}
		}
	}
	if fed == 0 {
		t.Fatalf("the peer with 1.1 Mbit/s of upload feeds no stripe of a 1.1 Mbit/s stream: %+v", view.Nodes)
	}
}

// The answer names the origin's children that left the channel (gone)
// and those placed elsewhere (moved).
func TestOriginHeartbeatGoneAndMoved(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	e.join(t, 1, 0) // alone: every stripe from the origin
	r, err := e.cl.OriginHeartbeat(ctx, "live", OriginHeartbeatRequest{Origin: e.origin.ID, Children: []string{nid(1), nid(9)}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Gone, []string{nid(9)}) || len(r.Moved) != 0 {
		t.Fatalf("gone %v moved %v; want gone [%s], none moved", r.Gone, r.Moved, nid(9))
	}
	// Forwarders join: the origin feeds them and the leaf moves below.
	for i := 2; i <= 5; i++ {
		e.join(t, i, 8)
	}
	e.tr.Round()
	view, _ := e.cl.Tree(ctx, "live")
	underOrigin := false
	for _, n := range view.Nodes {
		if n.ID == nid(1) {
			for _, s := range n.Stripes {
				underOrigin = underOrigin || s.Parent == e.origin.ID
			}
		}
	}
	r, err = e.cl.OriginHeartbeat(ctx, "live", OriginHeartbeatRequest{Origin: e.origin.ID, Children: []string{nid(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if underOrigin {
		t.Fatalf("the leaf is still under the origin after four forwarders joined: %+v", view.Nodes)
	}
	if !slices.Equal(r.Moved, []string{nid(1)}) || len(r.Gone) != 0 {
		t.Fatalf("leaf under the origin %v; moved %v gone %v", underOrigin, r.Moved, r.Gone)
	}
}
