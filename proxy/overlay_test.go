package proxy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/overlay"
	"github.com/swarmtv/swarmtv/tracker"
)

// A channel description from a bootstrap peer is checked like the
// tracker's: a bad one is refused with the reason.
func TestParseChannelInfo(t *testing.T) {
	good := tracker.ChannelInfo{Name: "demo", SDP: "v=0\r\n", PublicKey: "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqo=",
		Origin: tracker.NodeInfo{ID: "0123456789abcdef0123456789abcdef", Addr: "127.0.0.1:1"}, Stripes: 4, SliceMS: 100}
	good.PublicKey = "GrO0GWxJV0mZSPFXYG9jR5G8n1FLxyuCp2OT2zYfwaU=" // 32 bytes
	enc := func(c tracker.ChannelInfo) []byte { b, _ := json.Marshal(c); return b }
	if _, err := parseChannelInfo(enc(good), "demo"); err != nil {
		t.Fatalf("good description refused: %v", err)
	}
	bad := map[string][]byte{
		"other channel": enc(good),
		"not json":      []byte("{"),
		"unknown field": []byte(`{"name":"demo","evil":1}`),
	}
	mod := func(f func(*tracker.ChannelInfo)) []byte { c := good; f(&c); return enc(c) }
	bad["no key"] = mod(func(c *tracker.ChannelInfo) { c.PublicKey = "" })
	bad["stripes"] = mod(func(c *tracker.ChannelInfo) { c.Stripes = 0 })
	bad["slice"] = mod(func(c *tracker.ChannelInfo) { c.SliceMS = -1 })
	bad["origin"] = mod(func(c *tracker.ChannelInfo) { c.Origin.ID = "x" })
	for name, b := range bad {
		ch := "demo"
		if name == "other channel" {
			ch = "live"
		}
		if _, err := parseChannelInfo(b, ch); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBootstrapFlagChecked(t *testing.T) {
	cfg := PeerConfig{Channel: "demo", Tracker: "http://127.0.0.1:1", Bootstrap: "nohostport"}
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Fatalf("bad --bootstrap: %v", err)
	}
}

// While the tracker is away, a stripe with no usable backup takes a ring
// member by the ring rule, with ranks from the tracker's last tree view:
// the shallowest member that ranks before the peer, had room, is not its
// child and has not failed lately; the peer's depth then follows its new
// parent and never grows. With the tracker up it waits for the tracker.
func TestOverlayBackup(t *testing.T) {
	id, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	self := string(id.ID())
	node := func(c byte) tracker.NodeInfo {
		return tracker.NodeInfo{ID: strings.Repeat(string(c), 32), Addr: "127.0.0.1:1"}
	}
	deep, kid, full, a, b := node('d'), node('c'), node('f'), node('a'), node('b')
	p := &Peer{id: id, failed: map[string]time.Time{}, candidates: []tracker.NodeInfo{deep, kid, full, a, b}}
	two := func(d0, d1 int) []tracker.TreeStripe { return []tracker.TreeStripe{{Depth: d0}, {Depth: d1}} }
	p.setRingView(tracker.TreeView{Nodes: []tracker.TreeNode{
		{ID: self, Capacity: 2, Children: []string{kid.ID}, Stripes: two(3, 2)},
		{ID: deep.ID, Capacity: 2, Children: []string{}, Stripes: two(4, 4)},
		{ID: kid.ID, Capacity: 2, Children: []string{}, Stripes: two(1, 1)}, // stale: it is the peer's child now
		{ID: full.ID, Capacity: 1, Children: []string{"x"}, Stripes: two(1, 1)},
		{ID: a.ID, Capacity: 2, Children: []string{}, Stripes: two(2, 1)},
		{ID: b.ID, Capacity: 2, Children: []string{}, Stripes: two(1, 2)},
	}})
	now := time.Now()
	if _, ok := p.overlayBackupLocked(now, 0, transport.StripeNewest{}); ok {
		t.Fatal("a ring member taken while the tracker answers")
	}
	p.trackerAway = true
	if c, ok := p.overlayBackupLocked(now, 0, transport.StripeNewest{}); !ok || c != b {
		t.Fatalf("stripe 0: %v %v, want b (depth 1)", c, ok)
	}
	if d := p.ringDepthLocked(0); d != 2 {
		t.Fatalf("depth %d in stripe 0 under a depth-1 parent, want 2", d)
	}
	if c, ok := p.overlayBackupLocked(now, 1, transport.StripeNewest{}); !ok || c != a {
		t.Fatalf("stripe 1: %v %v, want a (depth 1)", c, ok)
	}
	p.failed[a.ID] = now
	// Stripe 1: b has depth 2 like the peer; it ranks before the peer
	// only if its ring ID is smaller.
	c, ok := p.overlayBackupLocked(now, 1, transport.StripeNewest{})
	bFirst := transport.OverlayID(swarm.NodeID(b.ID)) < transport.OverlayID(id.ID())
	if ok != bFirst || ok && c != b {
		t.Fatalf("a failed: %v %v, want b only if its ring ID is smaller (%v)", c, ok, bFirst)
	}
	p.failed[b.ID] = now
	if c, ok := p.overlayBackupLocked(now, 0, transport.StripeNewest{}); ok {
		t.Fatalf("only a deeper member, a child and a full one left, got %v", c)
	}
	if _, ok := p.overlayBackupLocked(now.Add(failedFor), 0, transport.StripeNewest{}); !ok {
		t.Fatal("members that failed long ago are not tried again")
	}
}

// overlayCollector exposes one overlay view's series.
type overlayCollector struct{ v OverlayView }

func (c overlayCollector) Describe(ch chan<- *prometheus.Desc) { describeOverlay(ch) }
func (c overlayCollector) Collect(ch chan<- prometheus.Metric) { collectOverlay(ch, c.v) }

// The overlay series are described and collected with the view's values.
func TestOverlayMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(overlayCollector{OverlayView{Joined: true, EstPeers: 12.5, EstHealth: 0.99, MessagesSent: 42}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	want := map[string]float64{
		"swarmtv_peer_overlay_joined": 1, "swarmtv_peer_overlay_estimated_peers": 12.5,
		"swarmtv_peer_overlay_estimated_health": 0.99, "swarmtv_peer_overlay_messages_sent_total": 42,
	}
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// Partner discovery feeds the ring rule: a member known only from its
// offer of room (not among the ring-table candidates) is a candidate, and
// a member's own offer overrides the tracker's older view of its depth
// and room; an offer without room is not taken.
func TestOverlayBackupOffers(t *testing.T) {
	id, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	self := string(id.ID())
	node := func(c byte) tracker.NodeInfo {
		return tracker.NodeInfo{ID: strings.Repeat(string(c), 32), Addr: "127.0.0.1:1"}
	}
	offer := func(n tracker.NodeInfo, depth, free uint16) overlay.Offer {
		return overlay.Offer{Peer: transport.OverlayPeer(swarm.NodeID(n.ID), n.Addr), Depth: depth, Free: free}
	}
	a, far, full := node('a'), node('e'), node('f')
	p := &Peer{id: id, failed: map[string]time.Time{}, candidates: []tracker.NodeInfo{a}, trackerAway: true}
	p.setRingView(tracker.TreeView{Nodes: []tracker.TreeNode{
		{ID: self, Capacity: 2, Stripes: []tracker.TreeStripe{{Depth: 3}}},
		{ID: a.ID, Capacity: 2, Stripes: []tracker.TreeStripe{{Depth: 4}}}, // deeper in the tracker's view
	}})
	now := time.Now()
	if c, ok := p.overlayBackupLocked(now, 0, transport.StripeNewest{}); ok {
		t.Fatalf("took %v with no member ranking before the peer", c)
	}
	// Offers: a member beyond the ring tables with room at depth 1, one
	// without room at depth 1.
	p.ringOffers = [][]overlay.Offer{{offer(full, 1, 0), offer(far, 1, 2)}}
	if c, ok := p.overlayBackupLocked(now, 0, transport.StripeNewest{}); !ok || c != far {
		t.Fatalf("%v %v, want the member found by its offer (depth 1, room)", c, ok)
	}
	if d := p.ringDepthLocked(0); d != 2 {
		t.Fatalf("depth %d under a depth-1 parent, want 2", d)
	}
	// a's own offer of depth 1 overrides the tracker's view of depth 4.
	p.failed[far.ID] = now
	p.ringOffers = [][]overlay.Offer{{offer(a, 1, 1), offer(far, 1, 2)}}
	if c, ok := p.overlayBackupLocked(now, 0, transport.StripeNewest{}); !ok || c != a {
		t.Fatalf("%v %v, want a by its own offer of depth 1", c, ok)
	}
	// An offer made before the tracker went away does not rank a member
	// shallower than the tracker's view (a move just before the outage
	// could have put it deeper): a counts at depth 4 again.
	p.ringSelf.depth[0] = 3
	p.ringOffersAt, p.awaySince = now, now.Add(time.Second)
	if c, ok := p.overlayBackupLocked(now, 0, transport.StripeNewest{}); ok {
		t.Fatalf("took %v on an offer older than the outage", c)
	}
	p.awaySince = now.Add(-time.Second) // made during the outage: true
	if c, ok := p.overlayBackupLocked(now, 0, transport.StripeNewest{}); !ok || c != a {
		t.Fatalf("%v %v, want a by its offer made during the outage", c, ok)
	}
}

// Issue 6: the peer's repair reads the ring's gossip estimates: a backup
// whose offer of room says it is full is passed over while the swarm's
// mean upload leaves room elsewhere, and taken when upload is scarce.
func TestBackupFullByEstimates(t *testing.T) {
	id, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	full := tracker.NodeInfo{ID: strings.Repeat("f", 32), Addr: "127.0.0.1:1"}
	p := &Peer{id: id, failed: map[string]time.Time{}}
	p.ringOffers = [][]overlay.Offer{{{Peer: transport.OverlayPeer(swarm.NodeID(full.ID), full.Addr), Depth: 1, Free: 0}}}
	const stream = 4_000_000
	p.estimates = estimatesOf(overlay.Estimates{Peers: 300, MeanUpload: 2.4 * stream, Health: 0.99}, stream)
	if b, ok := p.backupLocked([]tracker.NodeInfo{full}, time.Now(), 0, nil, transport.StripeNewest{}); ok {
		t.Fatalf("took the full backup %v while the swarm has upload to spare", b)
	}
	p.estimates = estimatesOf(overlay.Estimates{Peers: 300, MeanUpload: 1.05 * stream, Health: 0.99}, stream)
	if b, ok := p.backupLocked([]tracker.NodeInfo{full}, time.Now(), 0, nil, transport.StripeNewest{}); !ok || b != full {
		t.Fatalf("took %v, %v with scarce upload; want the full backup", b, ok)
	}
	if e := estimatesOf(overlay.Estimates{MeanUpload: 1e6}, 0); e.UploadRatio != 0 {
		t.Errorf("upload ratio %v without a stream rate, want 0 (unknown)", e.UploadRatio)
	}
}
