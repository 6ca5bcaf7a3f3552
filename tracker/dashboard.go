package tracker

import (
	"time"
)

// MaxDashboardNodes bounds the tree nodes a dashboard state carries per
// channel: beyond it the shallowest nodes are kept (breadth first) and the
// rest are counted in DashboardTree.Hidden, so the graph stays readable at
// thousands of viewers.
const MaxDashboardNodes = 400

// DashboardState is the body of GET /api/v1/dashboard and of every
// "state" event of GET /api/v1/dashboard/events.
type DashboardState struct {
	Schema   string             `json:"schema"` // "swarmtv.dashboard/v1"
	UnixMS   int64              `json:"unix_ms"`
	Seq      uint64             `json:"seq"` // telemetry samples taken so far
	Viewers  int                `json:"viewers"`
	Channels []DashboardChannel `json:"channels"`
	NAT      Breakdown          `json:"nat"`
	ISP      ISPMatrix          `json:"isp"`
}

// DashboardChannel is one channel's figures and tree.
type DashboardChannel struct {
	ChannelTelemetry
	Tree DashboardTree `json:"tree"`
}

// DashboardTree is a channel's tree for drawing: the origin and up to
// MaxDashboardNodes peers.
type DashboardTree struct {
	Origin TreeNodeBrief   `json:"origin"`
	Nodes  []TreeNodeBrief `json:"nodes"`  // breadth first; detached ones last
	Edges  []TreeEdge      `json:"edges"`  // parent → child, among Nodes and the origin
	Hidden int             `json:"hidden"` // peers left out
}

// TreeNodeBrief is one node of a DashboardTree.
type TreeNodeBrief struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	Depth    int    `json:"depth"` // 0: the origin or a detached peer
	Capacity int    `json:"capacity"`
	Children int    `json:"children"`
	ISP      string `json:"isp"` // "unknown" until an IP-prefix→ASN table exists
	NAT      string `json:"nat"` // "unknown" until NAT classification exists
	LagMS    int64  `json:"lag_ms"`
	Stalls   int64  `json:"stalls"`
}

// TreeEdge is one parent→child edge. Relayed is true for a connection
// through a relay (none yet: relays are not built).
type TreeEdge struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Relayed bool   `json:"relayed"`
}

// Breakdown counts peers by category. Known is false when the tracker has
// no data for the category yet; the dashboard says so.
type Breakdown struct {
	Known  bool           `json:"known"`
	Note   string         `json:"note"`
	Counts map[string]int `json:"counts"`
}

// ISPMatrix is P2P bytes by sending ISP × receiving ISP.
type ISPMatrix struct {
	Known bool      `json:"known"`
	Note  string    `json:"note"`
	ISPs  []string  `json:"isps"`
	Bytes [][]int64 `json:"bytes"` // Bytes[i][j]: from ISPs[i] to ISPs[j]
}

// DashboardState returns the dashboard's current state.
func (m *Telemetry) DashboardState() DashboardState {
	st := DashboardState{
		Schema:   "swarmtv.dashboard/v1",
		UnixMS:   time.Now().UnixMilli(),
		Seq:      m.Samples(),
		Channels: []DashboardChannel{},
	}
	var p2p int64
	for _, c := range m.Channels() {
		dc := DashboardChannel{ChannelTelemetry: c}
		if tv, err := m.t.Tree(c.Name); err == nil {
			dc.Tree = briefTree(tv)
		}
		st.Viewers += c.Viewers
		p2p += c.Totals.P2PBytes
		st.Channels = append(st.Channels, dc)
	}
	st.NAT = Breakdown{
		Note:   "NAT classification is not built yet: every peer is counted as unknown.",
		Counts: map[string]int{"unknown": st.Viewers},
	}
	st.ISP = ISPMatrix{
		Note:  "No IP-prefix→ASN table is configured: all P2P traffic is shown as unknown → unknown.",
		ISPs:  []string{"unknown"},
		Bytes: [][]int64{{p2p}},
	}
	return st
}

func briefTree(tv TreeView) DashboardTree {
	dt := DashboardTree{
		Origin: TreeNodeBrief{ID: tv.Origin.ID, Addr: tv.Origin.Addr, Capacity: tv.OriginCapacity, ISP: "unknown", NAT: "unknown"},
		Nodes:  []TreeNodeBrief{},
		Edges:  []TreeEdge{},
	}
	shown := map[string]bool{tv.Origin.ID: true}
	for _, n := range tv.Nodes {
		if n.Parent == tv.Origin.ID {
			dt.Origin.Children++
		}
		if len(dt.Nodes) >= MaxDashboardNodes {
			dt.Hidden++
			continue
		}
		shown[n.ID] = true
		dt.Nodes = append(dt.Nodes, TreeNodeBrief{
			ID: n.ID, Addr: n.Addr, Depth: n.Depth, Capacity: n.Capacity, Children: len(n.Children),
			ISP: "unknown", NAT: "unknown", LagMS: n.Stats.LagMS, Stalls: n.Stats.Stalls,
		})
	}
	for _, n := range tv.Nodes {
		if n.Parent != "" && shown[n.ID] && shown[n.Parent] {
			dt.Edges = append(dt.Edges, TreeEdge{From: n.Parent, To: n.ID})
		}
	}
	return dt
}
