package tracker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/chandelier"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// nid returns a valid node ID for a small number; the origin is nid(0).
func nid(i int) string { return fmt.Sprintf("%032x", i) }

// newCore returns a tracker with a fake clock and channel "live" (4
// stripes) whose origin feeds originCap whole-stream children.
func newCore(t *testing.T, originCap int, placer string) (*Tracker, *clock) {
	t.Helper()
	c := &clock{now: t0}
	tr, err := New(Config{HeartbeatInterval: time.Second, Now: c.Now, Placer: placer, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	reg := RegisterRequest{Channel: channelInfo("live", NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, 1), Capacity: originCap}
	if _, err := tr.Register(reg); err != nil {
		t.Fatal(err)
	}
	return tr, c
}

// checkChannel checks the tracker's view of a channel against the
// placement invariants (chandelier.Measure recomputes them from the
// edges) and the tracker's own indexes (children, expiry heap), and
// returns the figures.
func checkChannel(t *testing.T, tr *Tracker, name string) chandelier.Figures {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ch := tr.channels[name]
	var peers []chandelier.Peer
	var as []chandelier.Assignment
	kids := map[string]map[string]uint16{}
	for _, id := range ch.sortedIDs() {
		m := ch.peers[id]
		peers = append(peers, ch.peerOf(m))
		for s, a := range m.stripes {
			if a.Peer != id || a.Stripe != s {
				t.Fatalf("peer %s stripe %d holds the assignment of %s/%d", id, s, a.Peer, a.Stripe)
			}
			as = append(as, a)
			if a.Parent != "" {
				if kids[a.Parent] == nil {
					kids[a.Parent] = map[string]uint16{}
				}
				kids[a.Parent][id] |= 1 << s
			}
		}
	}
	// The children index holds exactly the edges (edges to peers that
	// left wait for the next round on both sides), each parent's
	// children sorted by ID with their addresses.
	for p, k := range kids {
		for c, mask := range k {
			if got := ch.stripesFrom(p, c); got != mask {
				t.Fatalf("children index: %s→%s mask %b, edges say %b", p, c, got, mask)
			}
		}
	}
	for p, k := range ch.kids {
		for i, c := range k {
			if kids[p][c.id] == 0 {
				t.Fatalf("children index holds %s→%s, no edge", p, c.id)
			}
			if i > 0 && k[i-1].id >= c.id {
				t.Fatalf("children of %s not sorted: %s before %s", p, k[i-1].id, c.id)
			}
			if c.addr != ch.peers[c.id].addr {
				t.Fatalf("children index: %s→%s at %s, the member is at %s", p, c.id, c.addr, ch.peers[c.id].addr)
			}
		}
	}
	if len(ch.expiry) != len(ch.peers) {
		t.Fatalf("expiry heap holds %d items for %d peers", len(ch.expiry), len(ch.peers))
	}
	for i, it := range ch.expiry {
		if it.m.heapIdx != i || ch.peers[it.m.id] != it.m {
			t.Fatalf("expiry heap item %d is stale (%s)", i, it.m.id)
		}
	}
	f := chandelier.Measure(ch.pcfg, peers, as)
	broken := f.OverCapacity + f.Cycles
	if ch.kind == PlacerChandelier {
		// The baseline is blind to NATs and shares a peer's feeds over
		// every stripe by design.
		broken += f.MultiInterior + f.Unreachable + f.BadBackups
	}
	if broken > 0 {
		t.Fatalf("invariants broken (%s): %+v", ch.kind, f)
	}
	return f
}

func joinReq(i, capacity int) JoinRequest {
	return JoinRequest{ID: nid(i), Addr: fmt.Sprintf("127.0.0.1:%d", 10000+i), Capacity: capacity}
}

// TestPerStripeAssignments: every peer gets every stripe from a parent
// at once (the join runs a round), parents within their feeds, a peer
// interior in one stripe at most, and stripes fed by different parents.
func TestPerStripeAssignments(t *testing.T) {
	tr, c := newCore(t, 2, "")
	for i := 1; i <= 40; i++ {
		c.Advance(10 * time.Millisecond)
		resp, err := tr.Join("live", joinReq(i, 4+i%3))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Stripes) != 4 || resp.Parent != resp.Stripes[0].Parent || resp.HeartbeatMS != 1000 {
			t.Fatalf("join %d: %+v", i, resp)
		}
		for s, a := range resp.Stripes {
			// The origin's 2 feeds per stripe cover the first peers; later
			// ones need a forwarder of every stripe.
			if a.Parent.IsZero() && i > 8 {
				t.Fatalf("join %d: stripe %d has no parent (%d peers, capacity to spare)", i, s, i)
			}
			if a.Backups == nil {
				t.Fatalf("join %d: null backups", i)
			}
		}
	}
	f := checkChannel(t, tr, "live")
	if f.Deficit != 0 || f.Peers != 40 || f.OriginFeeds != 8 || f.DepthMax > 6 {
		t.Fatalf("figures %+v", f)
	}
	// Different stripes come from different parents for most peers.
	distinct := 0
	backed := 0
	for i := 1; i <= 40; i++ {
		hb, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)})
		if err != nil {
			t.Fatal(err)
		}
		ps := map[string]bool{}
		for _, a := range hb.Stripes {
			ps[a.Parent.ID] = true
			if len(a.Backups) > 0 {
				backed++
			}
			for _, b := range a.Backups {
				if b.ID == nid(i) || b.ID == a.Parent.ID || b.Addr == "" {
					t.Fatalf("peer %d: bad backup %+v of parent %+v", i, b, a.Parent)
				}
			}
		}
		if len(ps) > 1 {
			distinct++
		}
	}
	if distinct < 30 || backed < 80 {
		t.Fatalf("%d of 40 peers have more than one parent, %d of 160 stripes have backups", distinct, backed)
	}
	// The tree view carries every stripe.
	view, err := tr.Tree("live")
	if err != nil || len(view.Nodes) != 40 {
		t.Fatalf("tree: %d nodes, %v", len(view.Nodes), err)
	}
	for _, n := range view.Nodes {
		if len(n.Stripes) != 4 || n.Parent != n.Stripes[0].Parent || n.Depth != n.Stripes[0].Depth || n.Depth < 1 {
			t.Fatalf("tree node %+v", n)
		}
	}
}

// TestSwitchKept: a peer that lost a parent and switched to its first
// backup is answered with the backup at once, and the next round keeps
// the switch.
func TestSwitchKept(t *testing.T) {
	tr, c := newCore(t, 1, "")
	for i := 1; i <= 30; i++ {
		if _, err := tr.Join("live", joinReq(i, 4)); err != nil {
			t.Fatal(err)
		}
	}
	// Find a peer whose stripe has a peer parent and a backup.
	var who, stripe int
	var parent, backup NodeInfo
	for i := 30; i >= 1 && who == 0; i-- {
		hb, _ := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)})
		for s, a := range hb.Stripes {
			if a.Parent.ID != nid(0) && len(a.Backups) > 0 {
				who, stripe, parent, backup = i, s, a.Parent, a.Backups[0]
				break
			}
		}
	}
	if who == 0 {
		t.Fatal("no assignment with a peer parent and a backup")
	}
	c.Advance(100 * time.Millisecond)
	resp, err := tr.ParentLost("live", ParentLostRequest{ID: nid(who), Parent: parent.ID,
		Switched: []StripeSwitch{{Stripe: stripe, Parent: backup.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Stripes[stripe].Parent != backup {
		t.Fatalf("after the switch stripe %d comes from %+v, want the backup %+v", stripe, resp.Stripes[stripe].Parent, backup)
	}
	for s, a := range resp.Stripes {
		if a.Parent.ID == parent.ID {
			t.Fatalf("stripe %d still names the lost parent", s)
		}
	}
	tr.Round()
	hb, _ := tr.Heartbeat("live", HeartbeatRequest{ID: nid(who)})
	if hb.Stripes[stripe].Parent != backup {
		t.Fatalf("the round undid the switch: %+v", hb.Stripes[stripe].Parent)
	}
	checkChannel(t, tr, "live")
	// The lost parent answered heartbeats lately: it stays.
	if _, err := tr.Heartbeat("live", HeartbeatRequest{ID: parent.ID}); err != nil {
		t.Fatalf("live parent removed on one report: %v", err)
	}
}

// TestLostWithoutBackup: a stripe the peer could not switch is placed
// afresh at once; losing the origin gets a new parent (or the origin).
func TestLostWithoutBackup(t *testing.T) {
	tr, _ := newCore(t, 1, "")
	for i := 1; i <= 12; i++ {
		if _, err := tr.Join("live", joinReq(i, 8)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 12; i++ {
		hb, _ := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)})
		for s, a := range hb.Stripes {
			if a.Parent.IsZero() {
				t.Fatalf("setup: peer %d stripe %d without a parent", i, s)
			}
		}
	}
	// Peer 12 reports the origin lost (a peer fed by the origin on a
	// stripe): every stripe has a parent in the answer.
	for i := 1; i <= 12; i++ {
		hb, _ := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)})
		lost := ""
		for _, a := range hb.Stripes {
			if a.Parent.ID != nid(0) {
				lost = a.Parent.ID
			}
		}
		if lost == "" {
			continue
		}
		resp, err := tr.ParentLost("live", ParentLostRequest{ID: nid(i), Parent: lost})
		if err != nil {
			t.Fatal(err)
		}
		for s, a := range resp.Stripes {
			if a.Parent.IsZero() {
				t.Fatalf("peer %d stripe %d left without a parent after losing %s: %+v", i, s, lost, resp)
			}
		}
	}
	checkChannel(t, tr, "live")
}

// TestExpiryHeap: silent peers expire (and only they), in O(due) — the
// heap holds one item per peer — and their children are re-placed.
func TestExpiryHeap(t *testing.T) {
	tr, c := newCore(t, 1, "")
	for i := 1; i <= 50; i++ {
		if _, err := tr.Join("live", joinReq(i, 6)); err != nil {
			t.Fatal(err)
		}
	}
	// Odd peers go silent; even ones heartbeat every second.
	for range 3 {
		c.Advance(time.Second)
		for i := 2; i <= 50; i += 2 {
			if _, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(tr.Channels().Channels); n != 1 || tr.Channels().Channels[0].Viewers != 50 {
		t.Fatalf("peers silent for exactly 3 intervals were expired: %+v", tr.Channels())
	}
	c.Advance(time.Second)
	for i := 2; i <= 50; i += 2 {
		if _, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)}); err != nil {
			t.Fatalf("heartbeat %d: %v", i, err)
		}
	}
	for i := 1; i <= 50; i += 2 {
		if _, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)}); !errors.Is(err, ErrUnknownPeer) {
			t.Fatalf("silent peer %d: %v, want ErrUnknownPeer", i, err)
		}
	}
	tr.Round()
	f := checkChannel(t, tr, "live")
	if f.Peers != 25 || f.Deficit != 0 {
		t.Fatalf("after expiry and a round: %+v", f)
	}
}

// TestJoinBatch: a batch is one round; bad entries get their own error
// and change nothing.
func TestJoinBatch(t *testing.T) {
	tr, _ := newCore(t, 2, "")
	reqs := []JoinRequest{joinReq(1, 2), {ID: "bad", Addr: "127.0.0.1:1"}, joinReq(2, 0), {ID: nid(0), Addr: "127.0.0.1:2"}, joinReq(3, 1)}
	resps, errs := tr.JoinBatch("live", reqs)
	if errs[0] != nil || errs[2] != nil || errs[4] != nil || !errors.Is(errs[1], ErrBadRequest) || !errors.Is(errs[3], ErrIDConflict) {
		t.Fatalf("errors %v", errs)
	}
	if resps[0].Parent.IsZero() || resps[2].Parent.IsZero() || resps[4].Parent.IsZero() {
		t.Fatalf("responses %+v", resps)
	}
	tr.mu.Lock()
	rounds := tr.channels["live"].rounds
	tr.mu.Unlock()
	if rounds != 1 {
		t.Fatalf("%d rounds for one batch", rounds)
	}
	if f := checkChannel(t, tr, "live"); f.Peers != 3 {
		t.Fatalf("%d peers", f.Peers)
	}
	_, errs = tr.JoinBatch("nope", []JoinRequest{joinReq(9, 1)})
	if !errors.Is(errs[0], ErrUnknownChannel) {
		t.Fatalf("unknown channel: %v", errs[0])
	}
}

// TestMeasurementsUsed: a measured upload beyond the capacity is capped
// by it; a heartbeat's new NAT class and upload reach the placer.
func TestMeasurementsUsed(t *testing.T) {
	tr, _ := newCore(t, 1, "")
	req := joinReq(1, 2)
	req.UploadBPS = 50_000_000
	req.NAT = "symmetric"
	if _, err := tr.Join("live", req); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	ch := tr.channels["live"]
	feeds := ch.pcfg.Feeds(ch.peerOf(ch.peers[nid(1)]).Upload)
	nat := ch.peerOf(ch.peers[nid(1)]).NAT
	tr.mu.Unlock()
	if feeds != 2 || nat != chandelier.NATSymmetric {
		t.Fatalf("feeds %d (want the capacity, 2), nat %v", feeds, nat)
	}
	if _, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(1), UploadBPS: 1_000_000, NAT: "open"}); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	feeds = ch.pcfg.Feeds(ch.peerOf(ch.peers[nid(1)]).Upload)
	pending := len(ch.pending.Update)
	tr.mu.Unlock()
	if feeds != 0 || pending != 1 {
		t.Fatalf("after a 1 Mbit/s measurement: feeds %d, pending updates %d", feeds, pending)
	}
	tr.Round()
	checkChannel(t, tr, "live")
}

// TestBaselinePlacer: the baseline is selectable and keeps the
// invariants; an unknown placer is refused.
func TestBaselinePlacer(t *testing.T) {
	tr, _ := newCore(t, 1, PlacerBaseline)
	for i := 1; i <= 30; i++ {
		if _, err := tr.Join("live", joinReq(i, 8)); err != nil {
			t.Fatal(err)
		}
	}
	tr.Round()
	if f := checkChannel(t, tr, "live"); f.Peers != 30 || f.Deficit != 0 {
		t.Fatalf("baseline figures %+v", f)
	}
	if _, err := New(Config{Placer: "shallowest"}); err == nil || !strings.Contains(err.Error(), "placer") {
		t.Fatalf("unknown placer: %v", err)
	}
}

// TestRandomOps: random joins, heartbeats, switches, losses, leaves and
// expiries; the invariants hold after every round, for both placers.
func TestRandomOps(t *testing.T) {
	for _, placer := range []string{PlacerChandelier, PlacerBaseline} {
		t.Run(placer, func(t *testing.T) {
			tr, c := newCore(t, 2, placer)
			rng := rand.New(rand.NewPCG(3, 4))
			nats := append([]string{""}, NATClasses...)
			for step := range 600 {
				i := 1 + rng.IntN(80)
				op := rng.IntN(10)
				switch {
				case op < 4:
					req := joinReq(i, rng.IntN(5))
					req.NAT = nats[rng.IntN(len(nats))]
					req.ISP = fmt.Sprintf("isp%d", rng.IntN(3))
					req.UploadBPS = int64(rng.IntN(8_000_000))
					if _, err := tr.Join("live", req); err != nil {
						t.Fatal(err)
					}
				case op < 6:
					// Measurements take effect in the next round.
					tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)})
				case op < 8:
					hb, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)})
					if err != nil {
						break
					}
					s := rng.IntN(4)
					a := hb.Stripes[s]
					if a.Parent.IsZero() || a.Parent.ID == nid(i) {
						break
					}
					req := ParentLostRequest{ID: nid(i), Parent: a.Parent.ID}
					if len(a.Backups) > 0 && rng.IntN(2) == 0 {
						req.Switched = []StripeSwitch{{Stripe: s, Parent: a.Backups[0].ID}}
					}
					if _, err := tr.ParentLost("live", req); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
				case op < 9:
					if err := tr.Leave("live", LeaveRequest{ID: nid(i)}); err != nil {
						t.Fatal(err)
					}
				default:
					c.Advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
					tr.Round()
				}
				// Between rounds a lowered upload or a re-join may leave a
				// parent above its new feeds; joins and rounds settle it.
				if op < 4 || op == 9 {
					checkChannel(t, tr, "live")
				}
			}
		})
	}
}

func TestISPTable(t *testing.T) {
	const table = `# prefix,isp
10.0.0.0/8, BigNet
10.1.0.0/16,SmallNet
  192.0.2.0/24 , DocNet

2001:db8::/32,V6Net
`
	tb, err := ParseISPTable(strings.NewReader(table))
	if err != nil || tb.Len() != 4 {
		t.Fatalf("parse: %v, %d prefixes", err, tb.Len())
	}
	for ip, want := range map[string]string{
		"10.2.3.4": "BigNet", "10.1.9.9": "SmallNet", "192.0.2.200": "DocNet", "::ffff:10.1.0.1": "SmallNet",
		"2001:db8::1": "V6Net", "8.8.8.8": "", "2001:db9::1": "",
	} {
		if got := tb.ispOf(ip+":1", ""); got != want && !strings.Contains(ip, ":") {
			t.Errorf("%s: %q, want %q", ip, got, want)
		}
		if got := tb.ispOf("["+ip+"]:1", ""); strings.Contains(ip, ":") && got != want {
			t.Errorf("%s: %q, want %q", ip, got, want)
		}
	}
	// The advertised address wins; the remote address is the fallback.
	if got := tb.ispOf("8.8.8.8:1", "192.0.2.1:5"); got != "DocNet" {
		t.Errorf("fallback to the remote address: %q", got)
	}
	if got := tb.ispOf("peer.example:1", "10.0.0.1:5"); got != "BigNet" {
		t.Errorf("host name advertised: %q", got)
	}
	var none *ISPTable
	if got, ok := none.Lookup(netipMust("10.0.0.1")); ok || got != "" {
		t.Errorf("nil table: %q", got)
	}
	for _, bad := range []string{"10.0.0.0/8", "10.0.0.0/33,x", "nonsense,x", "10.0.0.0/8,", "10.0.0.0/8,a\n10.0.0.1/8,b",
		"10.0.0.0/8," + strings.Repeat("x", 65)} {
		if _, err := ParseISPTable(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestISPFromTableOverHTTP: the HTTP join takes the ISP from the table,
// not from the peer's claim.
func TestISPFromTableOverHTTP(t *testing.T) {
	tb, err := ParseISPTable(strings.NewReader("127.0.0.0/8,Loopback\n10.9.0.0/16,Ten\n"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(Config{ISPs: tb})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Register(RegisterRequest{Channel: channelInfo("live", NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, 1), Capacity: 1}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tr.Handler())
	t.Cleanup(srv.Close)
	cl := &Client{BaseURL: srv.URL, HTTP: srv.Client()}
	ctx := context.Background()
	for i, addr := range []string{"10.9.1.1:5000", "198.51.100.1:5000"} {
		if _, err := cl.Join(ctx, "live", JoinRequest{ID: nid(i + 1), Addr: addr, Capacity: 1, ISP: "Claimed"}); err != nil {
			t.Fatal(err)
		}
	}
	view, err := cl.Tree(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range view.Nodes {
		got[n.ID] = n.ISP
	}
	if got[nid(1)] != "Ten" || got[nid(2)] != "Loopback" {
		t.Fatalf("ISPs %v: want the advertised address's, then the remote address's", got)
	}
}

func TestExampleISPTable(t *testing.T) {
	tb, err := LoadISPTable("../deploy/isp-prefixes.csv")
	if err != nil || tb.Len() < 4 {
		t.Fatalf("example table: %v (%d prefixes)", err, tb.Len())
	}
	if _, err := LoadISPTable("testdata/does-not-exist.csv"); err == nil {
		t.Fatal("missing file accepted")
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestJoinWindow: concurrent joins within the window share rounds, and
// every one is answered with parents.
func TestJoinWindow(t *testing.T) {
	tr, err := New(Config{JoinWindow: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Register(RegisterRequest{Channel: channelInfo("live", NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, 1), Capacity: 4}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	errc := make(chan error, n)
	for i := 1; i <= n; i++ {
		go func() {
			resp, err := tr.Join("live", joinReq(i, 6))
			if err == nil && resp.Stripes[0].Parent.IsZero() && i > 16 {
				err = fmt.Errorf("peer %d: no parent on stripe 0", i)
			}
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	tr.mu.Lock()
	rounds := tr.channels["live"].rounds
	tr.mu.Unlock()
	if rounds >= n {
		t.Fatalf("%d rounds for %d concurrent joins", rounds, n)
	}
	if _, err := tr.Join("live", JoinRequest{ID: nid(0), Addr: "127.0.0.1:1"}); !errors.Is(err, ErrIDConflict) {
		t.Fatalf("origin's ID: %v", err)
	}
	if _, err := New(Config{JoinWindow: -time.Second}); err == nil {
		t.Fatal("negative join window accepted")
	}
	checkChannel(t, tr, "live")
}

// A join answer names the start age for the swarm as it is: the longer
// StartAge while the channel is settled (its first peers, and joins at
// a tenth of the audience per 10 s or fewer), the shorter CrowdStartAge
// during a flash crowd (more joins within 10 s than a tenth of the
// peers, and over 10), the longer one again once the crowd's joins are
// older than 10 s.
func TestJoinStartAge(t *testing.T) {
	tr, c := newCore(t, 8, PlacerChandelier)
	age := func(i int) time.Duration {
		t.Helper()
		resp, err := tr.Join("live", joinReq(i, 4))
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(resp.StartAgeMS) * time.Millisecond
	}
	for i := 1; i <= crowdFloor; i++ {
		if got := age(i); got != DefaultStartAge {
			t.Fatalf("join %d of a new channel: start age %v, want %v", i, got, DefaultStartAge)
		}
	}
	for i := crowdFloor + 1; i <= 200; i++ {
		c.Advance(20 * time.Millisecond)
		if got := age(i); got != DefaultCrowdStartAge {
			t.Fatalf("join %d, 50 a second: start age %v, want %v", i, got, DefaultCrowdStartAge)
		}
	}
	c.Advance(crowdWindow)
	if got := age(201); got != DefaultStartAge {
		t.Fatalf("a join after the crowd: start age %v, want %v", got, DefaultStartAge)
	}
	// 9 more at once: 10 joins within 10 s, not over the floor.
	for i := 202; i <= 210; i++ {
		if got := age(i); got != DefaultStartAge {
			t.Fatalf("join %d, settled: start age %v, want %v", i, got, DefaultStartAge)
		}
	}
	tr2, err := New(Config{HeartbeatInterval: time.Second, Now: c.Now, StartAge: -1, CrowdStartAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr2.Register(RegisterRequest{Channel: channelInfo("live", NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, 1), Capacity: 8}); err != nil {
		t.Fatal(err)
	}
	if resp, err := tr2.Join("live", joinReq(1, 4)); err != nil || resp.StartAgeMS != 0 {
		t.Fatalf("start ages off: answer names %d ms (%v), want none", resp.StartAgeMS, err)
	}
}
