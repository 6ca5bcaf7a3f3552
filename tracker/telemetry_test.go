package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func (e *testEnv) report(t *testing.T, i int, s PeerStats) {
	t.Helper()
	if _, err := e.cl.Heartbeat(context.Background(), "live", HeartbeatRequest{ID: nid(i), Stats: s}); err != nil {
		t.Fatalf("heartbeat %d: %v", i, err)
	}
}

func TestTelemetryAggregates(t *testing.T) {
	e := newEnv(t, 1)
	tel := NewTelemetry(e.tr, TelemetryConfig{Interval: time.Second, History: 3})
	e.join(t, 1, 1) // under the origin: its origin bytes are seed
	e.join(t, 2, 0) // under peer 1: its origin bytes are fallback
	now := t0
	tel.Sample(now)

	e.report(t, 1, PeerStats{PlayerBytes: 1000, OriginBytesIn: 1100, PlayedSlices: 10, StartupMS: 800, LagMS: 1200})
	e.report(t, 2, PeerStats{PlayerBytes: 900, P2PBytesIn: 1000, OriginBytesIn: 100, PlayedSlices: 9, LateSlices: 1,
		Stalls: 1, StallMS: 250, BadChunks: 2, StartupMS: 1500, LagMS: 1400})
	now = now.Add(time.Second)
	tel.Sample(now)
	// Peer 1 grows; peer 2 restarted under the same ID (counters shrank).
	e.report(t, 1, PeerStats{PlayerBytes: 2000, OriginBytesIn: 2200, PlayedSlices: 20, StartupMS: 800, LagMS: 1100})
	e.report(t, 2, PeerStats{PlayerBytes: 50, P2PBytesIn: 60, PlayedSlices: 1, StartupMS: 1500, LagMS: 1300})
	now = now.Add(time.Second)
	tel.Sample(now)

	chs := tel.Channels()
	if len(chs) != 1 || chs[0].Name != "live" || chs[0].Viewers != 2 {
		t.Fatalf("channels %+v", chs)
	}
	c := chs[0]
	want := Totals{PlayerBytes: 2000 + 900 + 50, P2PBytes: 1000 + 60, OriginSeedBytes: 2200, OriginFallbackBytes: 100,
		PlayedSlices: 20 + 9 + 1, LateSlices: 1, Stalls: 1, StallMS: 250, BadChunks: 2}
	if c.Totals != want {
		t.Errorf("totals\n got %+v\nwant %+v", c.Totals, want)
	}
	if c.Savings == nil || *c.Savings != 1-float64(2300)/float64(2950) {
		t.Errorf("savings %v", c.Savings)
	}
	if c.LagMS.P50 == nil || *c.LagMS.P50 != 1100 || *c.LagMS.P99 != 1300 {
		t.Errorf("lag percentiles %+v", c.LagMS)
	}
	if len(c.History) != 3 || c.History[2].PlayerBps != 1050 || c.History[2].Viewers != 2 {
		t.Errorf("history %+v", c.History)
	}

	// Past History samples, the oldest go.
	tel.Sample(now.Add(time.Second))
	if h := tel.Channels()[0].History; len(h) != 3 || h[0].UnixMS != t0.Add(time.Second).UnixMilli() {
		t.Errorf("history not bounded to 3: %+v", h)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e.tr, tel)
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	exp := `
# HELP swarmtv_origin_egress_bytes_total Media bytes the channel's peers received from the origin: reason=seed while their parent was the origin, fallback otherwise.
# TYPE swarmtv_origin_egress_bytes_total counter
swarmtv_origin_egress_bytes_total{channel="live",reason="fallback"} 100
swarmtv_origin_egress_bytes_total{channel="live",reason="seed"} 2200
# HELP swarmtv_player_bytes_total Media bytes the channel's peers played out, summed over peers.
# TYPE swarmtv_player_bytes_total counter
swarmtv_player_bytes_total{channel="live"} 2950
# HELP swarmtv_viewers Viewers (peers) in the channel at the last telemetry sample.
# TYPE swarmtv_viewers gauge
swarmtv_viewers{channel="live"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp),
		"swarmtv_origin_egress_bytes_total", "swarmtv_player_bytes_total", "swarmtv_viewers"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(tel, "swarmtv_startup_seconds"); n != 1 {
		t.Errorf("startup histogram series: %d", n)
	}

	st := tel.DashboardState()
	if st.Viewers != 2 || len(st.Channels) != 1 || len(st.Channels[0].Tree.Nodes) != 2 || len(st.Channels[0].Tree.Edges) != 5 {
		// Peer 1 under the origin in 4 stripes, peer 2 under peer 1 in one
		// (peer 1 feeds one stripe; the origin is full).
		t.Errorf("dashboard state %+v", st)
	}
	// No peer reported a NAT class, no prefix table, no rendezvous: the
	// state says so rather than inventing figures.
	if st.NAT.Known || st.ISP.Known || st.Connections.Known || st.NAT.Counts["unknown"] != 2 || st.NAT.Note == "" {
		t.Errorf("NAT/ISP/connections without data %+v %+v %+v", st.NAT, st.ISP, st.Connections)
	}
	// Peer 2's P2P bytes (1000 + 60) came from peer 1, both in no known ISP.
	if len(st.ISP.ISPs) != 1 || st.ISP.ISPs[0] != "unknown" || st.ISP.Bytes[0][0] != 1060 {
		t.Errorf("ISP matrix %+v, want unknown → unknown: 1060", st.ISP)
	}
}

// An implausible report (a viewer claiming a terabyte in a second) is
// ignored and counted, not added to the swarm's totals.
func TestTelemetryRejectsImplausible(t *testing.T) {
	e := newEnv(t, 2)
	tel := NewTelemetry(e.tr, TelemetryConfig{})
	e.join(t, 1, 0)
	e.join(t, 2, 0)
	tel.Sample(t0)
	e.report(t, 1, PeerStats{PlayerBytes: 1 << 40})
	e.report(t, 2, PeerStats{PlayerBytes: 500, LagMS: 1 << 50})
	tel.Sample(t0.Add(time.Second))
	if got := tel.Channels()[0].Totals.PlayerBytes; got != 0 {
		t.Errorf("player bytes %d, want 0 (both reports implausible)", got)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(tel)
	if n := gathered(t, reg, "swarmtv_telemetry_rejected_total"); n != 2 {
		t.Errorf("rejected %v, want 2", n)
	}
}

// gathered returns the value of the one unlabelled counter or gauge name.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}

// Telemetry arrives with heartbeats: malformed, oversized or out-of-range
// reports get a 4xx, the tracker keeps serving, and nothing reaches the
// totals.
func TestTelemetryValidation(t *testing.T) {
	e := newEnv(t, 1)
	tel := NewTelemetry(e.tr, TelemetryConfig{})
	e.join(t, 1, 0)
	tel.Sample(t0)
	id := nid(1)
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"not JSON", `{"id": "` + id + `", "stats": {`, 400},
		{"wrong type", `{"id": "` + id + `", "stats": {"player_bytes": "lots"}}`, 400},
		{"negative", `{"id": "` + id + `", "stats": {"player_bytes": -1}}`, 400},
		{"overflow", `{"id": "` + id + `", "stats": {"player_bytes": 1e30}}`, 400},
		{"stats not an object", `{"id": "` + id + `", "stats": [1,2,3]}`, 400},
		{"bad id", `{"id": "x", "stats": {}}`, 400},
		{"two values", `{"id": "` + id + `"} {}`, 400},
		{"oversized", `{"id": "` + id + `", "stats": {"pad": "` + strings.Repeat("a", MaxBodyBytes) + `"}}`, 413},
		{"deeply nested", `{"id": "` + id + `", "stats": {"x": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`, 400},
	} {
		status, eb, _ := raw(t, e, "POST", "/v1/channels/live/heartbeat", "application/json", bytes.NewBufferString(tc.body))
		if status != tc.status {
			t.Errorf("%s: status %d (%s), want %d", tc.name, status, eb.Message, tc.status)
		}
	}
	tel.Sample(t0.Add(time.Second))
	if got := tel.Channels()[0].Totals; got != (Totals{}) {
		t.Errorf("rejected reports reached the totals: %+v", got)
	}
	e.report(t, 1, PeerStats{PlayerBytes: 10})
	tel.Sample(t0.Add(2 * time.Second))
	if got := tel.Channels()[0].Totals.PlayerBytes; got != 10 {
		t.Errorf("a valid report after the bad ones: player bytes %d, want 10", got)
	}
	resp, err := http.Get(e.srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("tracker unhealthy after bad telemetry: %v", err)
	}
	resp.Body.Close()
}

func TestTelemetryRunStops(t *testing.T) {
	e := newEnv(t, 1)
	tel := NewTelemetry(e.tr, TelemetryConfig{Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tel.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for tel.Samples() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("Run took no samples")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Heartbeats (telemetry) beyond a burst of ReportBurst and ReportRate per
// interval per peer get 429.
func TestReportLimiter(t *testing.T) {
	e := newEnv(t, 2)
	e.join(t, 1, 0)
	e.join(t, 2, 0)
	srv := httptest.NewServer(NewReportLimiter(e.tr).Wrap(e.tr.Handler()))
	defer srv.Close()
	beat := func(i int) (int, string) {
		resp, err := srv.Client().Post(srv.URL+"/v1/channels/live/heartbeat", "application/json",
			strings.NewReader(`{"id":"`+nid(i)+`","stats":{"player_bytes":1}}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb.Error
	}
	for n := range ReportBurst {
		if s, _ := beat(1); s != 200 {
			t.Fatalf("heartbeat %d of a burst: %d", n, s)
		}
	}
	if s, code := beat(1); s != 429 || code != CodeTooManyReports {
		t.Errorf("heartbeat past the burst: %d %q, want 429 %s", s, code, CodeTooManyReports)
	}
	if s, _ := beat(2); s != 200 {
		t.Errorf("another peer's heartbeat: %d, want 200", s)
	}
	e.clock.Advance(time.Second / ReportRate) // one token back
	if s, _ := beat(1); s != 200 {
		t.Errorf("heartbeat after a token came back: %d, want 200", s)
	}
	if s, _ := beat(1); s != 429 {
		t.Errorf("a second one: %d, want 429", s)
	}
	// A peer heartbeating once an interval is never refused.
	for n := range 20 {
		e.clock.Advance(time.Second)
		if s, _ := beat(1); s != 200 {
			t.Fatalf("steady heartbeat %d: %d", n, s)
		}
	}
	// Other endpoints and malformed bodies pass through to the API.
	resp, err := srv.Client().Post(srv.URL+"/v1/channels/live/heartbeat", "application/json", strings.NewReader(`{"id":`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("malformed heartbeat through the limiter: %d, want 400", resp.StatusCode)
	}
}

// Beyond MaxDashboardNodes the dashboard's tree keeps the shallowest
// peers and counts the rest.
func TestDashboardTreeSampled(t *testing.T) {
	e := newEnv(t, 8)
	for i := 1; i <= 1000; i++ {
		p := peer(i)
		if _, err := e.tr.Join("live", JoinRequest{ID: p.ID, Addr: p.Addr, Capacity: 4}); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	tel := NewTelemetry(e.tr, TelemetryConfig{})
	tel.Sample(t0)
	st := tel.DashboardState()
	tr := st.Channels[0].Tree
	if st.Viewers != 1000 || len(tr.Nodes) != MaxDashboardNodes || tr.Hidden != 1000-MaxDashboardNodes {
		t.Fatalf("viewers %d, nodes %d, hidden %d", st.Viewers, len(tr.Nodes), tr.Hidden)
	}
	if tr.Stripes != 4 {
		t.Fatalf("stripes %d, want 4", tr.Stripes)
	}
	shown := map[string]bool{tr.Origin.ID: true}
	meanDepth := func(n TreeNodeBrief) float64 {
		s := 0
		for _, d := range n.Depths {
			if d == 0 {
				d = 1001
			}
			s += d
		}
		return float64(s) / float64(len(n.Depths))
	}
	for i, n := range tr.Nodes {
		shown[n.ID] = true
		if len(n.Depths) != 4 {
			t.Fatalf("node %d has %d depths, want one per stripe", i, len(n.Depths))
		}
		if i > 0 && meanDepth(n) < meanDepth(tr.Nodes[i-1]) {
			t.Fatalf("nodes not shallowest first at %d", i)
		}
	}
	// Every drawn node hangs under a drawn parent in most stripes: the
	// shallowest peers were kept, so their parents were too.
	perStripe := make([]int, 4)
	for _, ed := range tr.Edges {
		if !shown[ed.From] || !shown[ed.To] {
			t.Fatalf("edge %v leaves the drawn nodes", ed)
		}
		perStripe[ed.Stripe]++
	}
	for s, n := range perStripe {
		if n > MaxDashboardNodes || n < MaxDashboardNodes/2 {
			t.Errorf("stripe %d: %d edges among %d drawn nodes", s, n, MaxDashboardNodes)
		}
	}
	// The origin feeds 8 stream-equivalents: 8 children per stripe.
	if tr.Origin.Children != 8*4 {
		t.Errorf("origin children (stripe feeds) %d, want 32", tr.Origin.Children)
	}
}

// A peer removed from the tracker's view (reported silent, or expired)
// that rejoins under the same ID adds only what it received since it was
// last sampled, not its whole history again.
func TestTelemetryRejoinCountsOnce(t *testing.T) {
	e := newEnv(t, 4)
	tel := NewTelemetry(e.tr, TelemetryConfig{Interval: time.Second, History: 3})
	e.join(t, 1, 4)
	now := t0
	e.report(t, 1, PeerStats{PlayerBytes: 1000, OriginBytesIn: 1000, PlayedSlices: 10, StartupMS: 500})
	tel.Sample(now)
	if err := e.cl.Leave(context.Background(), "live", nid(1)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	tel.Sample(now) // peer 1 is not in the view
	e.join(t, 1, 4)
	e.report(t, 1, PeerStats{PlayerBytes: 1500, OriginBytesIn: 1500, PlayedSlices: 15, StartupMS: 500})
	now = now.Add(time.Second)
	tel.Sample(now)
	c := tel.Channels()[0]
	if c.Totals.PlayerBytes != 1500 || c.Totals.OriginSeedBytes != 1500 || c.Totals.PlayedSlices != 15 {
		t.Errorf("totals after a rejoin %+v, want player 1500, origin 1500, played 15 (counted once)", c.Totals)
	}
	if n := testutil.CollectAndCount(tel, "swarmtv_startup_seconds"); n != 1 {
		t.Errorf("startup histogram series: %d", n)
	}

	// Gone for longer than forgetAfter, its totals count again in full
	// (the tracker cannot tell it from a new process under the same ID).
	if err := e.cl.Leave(context.Background(), "live", nid(1)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(forgetAfter + time.Second)
	tel.Sample(now)
	e.join(t, 1, 4)
	e.report(t, 1, PeerStats{PlayerBytes: 100, PlayedSlices: 1})
	tel.Sample(now.Add(time.Second))
	if got := tel.Channels()[0].Totals.PlayerBytes; got != 1600 {
		t.Errorf("player bytes %d after a rejoin past forgetAfter, want 1600", got)
	}
}
