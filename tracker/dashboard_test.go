package tracker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The dashboard's NAT mix, connection outcomes, relayed edges and ISP
// matrix come from what the peers reported and the prefix table.
func TestDashboardNATISPAndRelayed(t *testing.T) {
	table, err := ParseISPTable(strings.NewReader("10.1.0.0/16,AS1 Alpha\n10.2.0.0/16,AS2 Beta\n127.0.0.0/8,AS0 Origin\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: t0}
	tr, err := New(Config{HeartbeatInterval: time.Second, Now: c.Now, Logger: testLogger(t), ISPs: table})
	if err != nil {
		t.Fatal(err)
	}
	origin := NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}
	if _, err := tr.Register(RegisterRequest{Channel: channelInfo("live", origin, 1), Capacity: 1}); err != nil {
		t.Fatal(err)
	}
	nats := []string{"fullcone", "symmetric", "", "open", "portrestricted", "fullcone"}
	for i := 1; i <= 6; i++ {
		net := []string{"10.1", "10.2"}[i%2]
		// The HTTP API sets ISP from the table; in-process joins carry it.
		addr := net + ".0." + itoa(i) + ":4000"
		req := JoinRequest{ID: nid(i), Addr: addr, Capacity: 8, NAT: nats[i-1], ISP: table.ispOf(addr, "")}
		if _, err := tr.Join("live", req); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	rv := NewRendezvous(tr, RendezvousConfig{Now: c.Now})
	tel := NewTelemetry(tr, TelemetryConfig{Rendezvous: rv})

	tv, err := tr.Tree("live")
	if err != nil {
		t.Fatal(err)
	}
	// One child's link to a peer parent went through the relay; another
	// link was direct; a third dial failed.
	var child, parent string
	for _, n := range tv.Nodes {
		for _, s := range n.Stripes {
			if child == "" && s.Parent != "" && s.Parent != origin.ID {
				child, parent = n.ID, s.Parent
			}
		}
	}
	if child == "" {
		t.Fatal("no peer is fed by a peer")
	}
	for _, r := range []ConnectResult{
		{ID: child, Target: parent, Outcome: OutcomeFailed},
		{ID: child, Target: parent, Outcome: OutcomeRelayed},
		{ID: nid(1), Target: origin.ID, Outcome: OutcomeDirect},
	} {
		if err := rv.Result("live", r); err != nil {
			t.Fatal(err)
		}
	}

	// Every peer reports 4000 P2P bytes received.
	tel.Sample(t0)
	want := map[[2]string]int64{}
	for i := 1; i <= 6; i++ {
		if _, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i), Stats: PeerStats{P2PBytesIn: 4000}}); err != nil {
			t.Fatal(err)
		}
	}
	isp := map[string]string{}
	for _, n := range tv.Nodes {
		isp[n.ID] = n.ISP
	}
	for _, n := range tv.Nodes {
		var from []string
		for _, s := range n.Stripes {
			if p, ok := isp[s.Parent]; ok {
				from = append(from, p)
			}
		}
		if len(from) == 0 {
			from = []string{"unknown"}
		}
		for k, f := range from {
			share := 4000 / int64(len(from))
			if k == 0 {
				share += 4000 % int64(len(from)) // the remainder goes to the first
			}
			want[[2]string{f, n.ISP}] += share
		}
	}
	c.Advance(time.Second)
	tel.Sample(c.Now())

	st := tel.DashboardState()
	if !st.NAT.Known || st.NAT.Counts["fullcone"] != 2 || st.NAT.Counts["symmetric"] != 1 || st.NAT.Counts["unknown"] != 1 ||
		st.NAT.Counts["open"] != 1 || st.NAT.Counts["portrestricted"] != 1 {
		t.Errorf("NAT mix %+v", st.NAT)
	}
	cs := st.Connections
	if !cs.Known || cs.Direct != 1 || cs.Relayed != 1 || cs.Failed != 1 || cs.RelayedEdges != 1 {
		t.Errorf("connections %+v, want 1 direct, 1 relayed, 1 failed, 1 relayed edge", cs)
	}
	relayed := 0
	for _, e := range st.Channels[0].Tree.Edges {
		if e.Relayed {
			relayed++
			if e.From != parent || e.To != child {
				t.Errorf("edge %+v marked relayed; only %s→%s was", e, parent, child)
			}
		}
	}
	if relayed == 0 {
		t.Error("no edge marked relayed")
	}
	if o := st.Channels[0].Tree.Origin; o.ISP != "AS0 Origin" {
		t.Errorf("origin ISP %q", o.ISP)
	}
	for _, n := range st.Channels[0].Tree.Nodes {
		if n.ISP != "AS1 Alpha" && n.ISP != "AS2 Beta" {
			t.Errorf("node %s ISP %q", n.ID, n.ISP)
		}
	}

	m := st.ISP
	if !m.Known || len(m.ISPs) < 2 || m.ISPs[0] != "AS1 Alpha" || m.ISPs[1] != "AS2 Beta" {
		t.Fatalf("ISP matrix %+v", m)
	}
	var sum int64
	for i, from := range m.ISPs {
		for j, to := range m.ISPs {
			sum += m.Bytes[i][j]
			if m.Bytes[i][j] != want[[2]string{from, to}] {
				t.Errorf("ISP matrix %s → %s: %d, want %d", from, to, m.Bytes[i][j], want[[2]string{from, to}])
			}
		}
	}
	if sum != 6*4000 {
		t.Errorf("ISP matrix sums to %d, want every P2P byte (24000)", sum)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(tel)
	exp0 := `
# HELP swarmtv_relayed_connections Parent-child links of the stripe trees whose latest connection went through the relay, at the last telemetry sample.
# TYPE swarmtv_relayed_connections gauge
swarmtv_relayed_connections 1
`
	exp := exp0
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "swarmtv_relayed_connections"); err != nil {
		t.Error(err)
	}
	var same, cross int64
	for k, v := range want {
		if k[0] == k[1] {
			same += v
		} else {
			cross += v
		}
	}
	exp = fmt.Sprintf(`
# HELP swarmtv_p2p_isp_bytes_total Media bytes the channel's peers received from other peers, by path: same_isp, cross_isp, or unknown (a side in no ISP of the prefix table, or no peer parent at the sample); attributed to per-stripe parents as the dashboard's ISP matrix is.
# TYPE swarmtv_p2p_isp_bytes_total counter
swarmtv_p2p_isp_bytes_total{channel="live",path="cross_isp"} %d
swarmtv_p2p_isp_bytes_total{channel="live",path="same_isp"} %d
swarmtv_p2p_isp_bytes_total{channel="live",path="unknown"} 0
`, cross, same)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "swarmtv_p2p_isp_bytes_total"); err != nil {
		t.Error(err)
	}
	if same == 0 || cross == 0 {
		t.Errorf("same %d cross %d: the test wants both paths used", same, cross)
	}
	if n := testutil.CollectAndCount(tel, "swarmtv_nat_peers"); n != len(NATClasses)+1 {
		t.Errorf("swarmtv_nat_peers has %d series, want one per class and unknown", n)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}

	// The child reconnects directly: the link is no longer relayed.
	if err := rv.Result("live", ConnectResult{ID: child, Target: parent, Outcome: OutcomeDirect}); err != nil {
		t.Fatal(err)
	}
	tel.Sample(c.Now().Add(time.Second))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.Replace(exp0, " 1\n", " 0\n", 1)), "swarmtv_relayed_connections"); err != nil {
		t.Error(err)
	}
	st = tel.DashboardState()
	if st.Connections.RelayedEdges != 0 || st.Connections.Direct != 2 {
		t.Errorf("after a direct reconnect: %+v, want no relayed edge and 2 direct", st.Connections)
	}
	for _, e := range st.Channels[0].Tree.Edges {
		if e.Relayed {
			t.Errorf("edge %+v still marked relayed", e)
		}
	}
}
