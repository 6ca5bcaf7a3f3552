package tracker

import (
	"cmp"
	"slices"
	"time"
)

// MaxDashboardNodes bounds the tree nodes a dashboard state carries per
// channel: beyond it the shallowest nodes are kept (by mean depth over
// the stripe trees, detached ones last) and the rest are counted in
// DashboardTree.Hidden, so the graph stays readable at thousands of
// viewers.
const MaxDashboardNodes = 400

// unknownLabel names a missing NAT class or ISP on the dashboard.
const unknownLabel = "unknown"

// DashboardState is the body of GET /api/v1/dashboard and of every
// "state" event of GET /api/v1/dashboard/events.
type DashboardState struct {
	Schema   string             `json:"schema"` // "swarmtv.dashboard/v1"
	UnixMS   int64              `json:"unix_ms"`
	Seq      uint64             `json:"seq"` // telemetry samples taken so far
	Viewers  int                `json:"viewers"`
	Channels []DashboardChannel `json:"channels"`
	// NAT counts the viewers by the NAT class they reported ("unknown":
	// not probed yet).
	NAT Breakdown `json:"nat"`
	// Connections counts the outcomes peers reported for the dials that
	// went through the tracker's rendezvous.
	Connections ConnectionCounts `json:"connections"`
	ISP         ISPMatrix        `json:"isp"`
}

// DashboardChannel is one channel's figures and stripe trees.
type DashboardChannel struct {
	ChannelTelemetry
	Tree DashboardTree `json:"tree"`
}

// DashboardTree is a channel's stripe trees for drawing: the origin, up
// to MaxDashboardNodes peers, and the parent→child edges of every stripe
// among them.
type DashboardTree struct {
	Stripes int             `json:"stripes"` // stripe trees of the channel
	Origin  TreeNodeBrief   `json:"origin"`
	Nodes   []TreeNodeBrief `json:"nodes"`  // shallowest first; detached ones last
	Edges   []TreeEdge      `json:"edges"`  // by stripe, then child; among Nodes and the origin
	Hidden  int             `json:"hidden"` // peers left out
}

// TreeNodeBrief is one node of a DashboardTree.
type TreeNodeBrief struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
	// Depth is the node's shallowest depth over the stripe trees (1:
	// a child of the origin); 0 for the origin and for a peer connected
	// to the origin in no stripe. Depths holds it per stripe (0:
	// detached in that stripe); empty for the origin.
	Depth     int    `json:"depth"`
	Depths    []int  `json:"depths"`
	Capacity  int    `json:"capacity"`
	Children  int    `json:"children"`   // peers it feeds on any stripe
	ISP       string `json:"isp"`        // from the tracker's IP-prefix table; "unknown" when none matches
	NAT       string `json:"nat"`        // as the peer reported it; "unknown" before its probe
	UploadBPS int64  `json:"upload_bps"` // as the peer measured it; 0 unknown
	LagMS     int64  `json:"lag_ms"`
	Stalls    int64  `json:"stalls"`
}

// TreeEdge is one parent→child edge of one stripe tree. Relayed is true
// when the child's latest connection to that parent, as it reported it to
// the rendezvous, went through the relay.
type TreeEdge struct {
	Stripe  int    `json:"stripe"`
	From    string `json:"from"`
	To      string `json:"to"`
	Relayed bool   `json:"relayed"`
}

// Breakdown counts peers by category (zero counts are left out). Known
// is false when the tracker has no data for the category yet; Note then
// says why.
type Breakdown struct {
	Known  bool           `json:"known"`
	Note   string         `json:"note"`
	Counts map[string]int `json:"counts"`
}

// ConnectionCounts are the peers' reported connection outcomes since the
// tracker started, and the tree edges whose latest connection is relayed
// now. Known is false when the tracker runs no rendezvous.
type ConnectionCounts struct {
	Known        bool   `json:"known"`
	Note         string `json:"note"`
	Direct       int64  `json:"direct"`
	Relayed      int64  `json:"relayed"`
	Failed       int64  `json:"failed"`
	RelayedEdges int    `json:"relayed_edges"`
}

// ISPMatrix is P2P bytes by sending ISP × receiving ISP, summed over
// channels since the tracker started.
//
// It is an approximation from the peers' heartbeats: at every telemetry
// sample, the P2P bytes a peer received since the previous sample are
// split evenly over the stripes a peer parent feeds it and counted from
// that parent's ISP (every stripe carries an equal share of the stream);
// bytes a peer received with no peer parent at the sample (pulled from
// partners or ring members, or from a parent that left) count as from
// "unknown".
type ISPMatrix struct {
	Known bool      `json:"known"`
	Note  string    `json:"note"`
	ISPs  []string  `json:"isps"`  // sorted; "unknown" last
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
	relayed := relayedEdges(m.rv)
	nat := map[string]int{}
	for _, c := range m.Channels() {
		dc := DashboardChannel{ChannelTelemetry: c}
		if tv, err := m.t.Tree(c.Name); err == nil {
			dc.Tree = m.briefTree(tv, relayed)
			for _, n := range tv.Nodes {
				nat[cmp.Or(n.NAT, unknownLabel)]++
			}
			st.Connections.RelayedEdges += countRelayed(tv, relayed)
		}
		st.Viewers += c.Viewers
		st.Channels = append(st.Channels, dc)
	}
	st.NAT = natBreakdown(nat)
	st.Connections = m.connections(st.Connections.RelayedEdges)
	st.ISP = m.ispMatrix()
	return st
}

func natBreakdown(counts map[string]int) Breakdown {
	b := Breakdown{Counts: counts}
	for k, n := range counts {
		if k != unknownLabel && n > 0 {
			b.Known = true
		}
	}
	switch {
	case !b.Known:
		b.Note = "no peer has reported a NAT class: the tracker runs no STUN service (--stun off) or the peers' probes have not finished."
	case counts[unknownLabel] > 0:
		b.Note = "unknown: peers whose NAT probe has not finished (or failed)."
	}
	return b
}

func (m *Telemetry) connections(relayedEdges int) ConnectionCounts {
	if m.rv == nil {
		return ConnectionCounts{Note: "this tracker runs no rendezvous: peers dial each other directly and report no outcomes."}
	}
	cs := m.rv.Connections()
	return ConnectionCounts{Known: true, Direct: cs.Direct, Relayed: cs.Relayed, Failed: cs.Failed, RelayedEdges: relayedEdges}
}

// relayedEdges returns the (channel, child, parent) keys whose latest
// reported connection went through the relay (empty when none did).
func relayedEdges(rv *Rendezvous) map[string]bool {
	out := map[string]bool{}
	if rv == nil {
		return out
	}
	for _, c := range rv.Connections().Connections { // oldest first: the latest wins
		k := c.Channel + " " + c.From + " " + c.Target
		if c.Outcome == OutcomeRelayed {
			out[k] = true
		} else {
			delete(out, k)
		}
	}
	return out
}

func edgeRelayed(relayed map[string]bool, channel, child, parent string) bool {
	return relayed[channel+" "+child+" "+parent]
}

func countRelayed(tv TreeView, relayed map[string]bool) int {
	n := 0
	if len(relayed) == 0 {
		return 0
	}
	for _, nd := range tv.Nodes {
		var seen []string
		for _, s := range nd.Stripes {
			if s.Parent != "" && !slices.Contains(seen, s.Parent) && edgeRelayed(relayed, tv.Channel, nd.ID, s.Parent) {
				seen = append(seen, s.Parent)
				n++
			}
		}
	}
	return n
}

func (m *Telemetry) ispMatrix() ISPMatrix {
	m.mu.Lock()
	sum := map[ispPair]int64{}
	for _, c := range m.channels {
		for k, v := range c.isp {
			sum[k] += v
		}
	}
	m.mu.Unlock()
	names := map[string]bool{}
	for k := range sum {
		names[cmp.Or(k.from, unknownLabel)] = true
		names[cmp.Or(k.to, unknownLabel)] = true
	}
	isps := make([]string, 0, len(names))
	for n := range names {
		if n != unknownLabel {
			isps = append(isps, n)
		}
	}
	slices.Sort(isps)
	if names[unknownLabel] {
		isps = append(isps, unknownLabel)
	}
	idx := map[string]int{}
	for i, n := range isps {
		idx[n] = i
	}
	mx := ISPMatrix{ISPs: isps, Bytes: make([][]int64, len(isps))}
	for i := range mx.Bytes {
		mx.Bytes[i] = make([]int64, len(isps))
	}
	for k, v := range sum {
		mx.Bytes[idx[cmp.Or(k.from, unknownLabel)]][idx[cmp.Or(k.to, unknownLabel)]] += v
	}
	if m.t.cfg.ISPs.Len() == 0 {
		mx.Note = "no IP-prefix table is configured (swarmtv tracker --isp-table FILE): every peer is in ISP unknown."
	} else {
		mx.Known = true
		mx.Note = "Approximation: each peer's P2P bytes, split evenly over its per-stripe peer parents' ISPs at every 1 s sample; bytes with no peer parent count as from unknown."
	}
	return mx
}

// briefTree cuts a channel's trees down to what the dashboard draws.
func (m *Telemetry) briefTree(tv TreeView, relayed map[string]bool) DashboardTree {
	K := 0
	for _, n := range tv.Nodes {
		K = max(K, len(n.Stripes))
	}
	dt := DashboardTree{
		Stripes: K,
		Origin: TreeNodeBrief{ID: tv.Origin.ID, Addr: tv.Origin.Addr, Capacity: tv.OriginCapacity, Depths: []int{},
			ISP: cmp.Or(m.t.cfg.ISPs.ispOf(tv.Origin.Addr, ""), unknownLabel), NAT: unknownLabel},
		Nodes: []TreeNodeBrief{},
		Edges: []TreeEdge{},
	}
	type ranked struct {
		n    *TreeNode
		mean float64 // mean depth over stripes, a detached stripe counting as the deepest
		min  int
	}
	rs := make([]ranked, 0, len(tv.Nodes))
	for i := range tv.Nodes {
		n := &tv.Nodes[i]
		r := ranked{n: n}
		for _, s := range n.Stripes {
			d := s.Depth
			if d == 0 {
				d = len(tv.Nodes) + 1
			} else if r.min == 0 || d < r.min {
				r.min = d
			}
			r.mean += float64(d)
			if s.Parent == tv.Origin.ID {
				dt.Origin.Children++
			}
		}
		if len(n.Stripes) > 0 {
			r.mean /= float64(len(n.Stripes))
		}
		rs = append(rs, r)
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if c := cmp.Compare(a.mean, b.mean); c != 0 {
			return c
		}
		return cmp.Compare(a.n.ID, b.n.ID)
	})
	shown := map[string]bool{tv.Origin.ID: true}
	for _, r := range rs {
		if len(dt.Nodes) >= MaxDashboardNodes {
			dt.Hidden++
			continue
		}
		n := r.n
		shown[n.ID] = true
		depths := make([]int, len(n.Stripes))
		for s, a := range n.Stripes {
			depths[s] = a.Depth
		}
		dt.Nodes = append(dt.Nodes, TreeNodeBrief{
			ID: n.ID, Addr: n.Addr, Depth: r.min, Depths: depths, Capacity: n.Capacity, Children: len(n.Children),
			ISP: cmp.Or(n.ISP, unknownLabel), NAT: cmp.Or(n.NAT, unknownLabel), UploadBPS: n.UploadBPS,
			LagMS: n.Stats.LagMS, Stalls: n.Stats.Stalls,
		})
	}
	byID := make(map[string]*TreeNode, len(tv.Nodes))
	for i := range tv.Nodes {
		byID[tv.Nodes[i].ID] = &tv.Nodes[i]
	}
	for s := range K {
		for _, nb := range dt.Nodes {
			n := byID[nb.ID]
			if s >= len(n.Stripes) {
				continue
			}
			if p := n.Stripes[s].Parent; p != "" && shown[p] {
				dt.Edges = append(dt.Edges, TreeEdge{Stripe: s, From: p, To: n.ID,
					Relayed: edgeRelayed(relayed, tv.Channel, n.ID, p)})
			}
		}
	}
	return dt
}
