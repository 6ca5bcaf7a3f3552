package chandelier

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestRepair(t *testing.T) {
	status := map[string]Status{
		"dead":  {Failed: true},
		"child": {Child: true},
		"slow":  {Lag: 800 * time.Millisecond},
		"slow2": {Lag: 300 * time.Millisecond},
		"ok":    {},
	}
	get := func(id string) Status { return status[id] }
	for _, tc := range []struct {
		name    string
		backups []string
		want    string
		ok      bool
	}{
		{"first healthy in rank order", []string{"ok", "slow"}, "ok", true},
		{"skips failed", []string{"dead", "ok"}, "ok", true},
		{"never its own child (a cycle)", []string{"child", "slow"}, "slow", true},
		{"a child is not the last resort", []string{"child"}, "", false},
		{"skips laggards for a later healthy one", []string{"slow", "dead", "ok"}, "ok", true},
		{"least lag when all lag", []string{"slow", "slow2", "dead"}, "slow2", true},
		{"none left: pull and origin fallback", []string{"dead"}, "", false},
		{"no backups", nil, "", false},
	} {
		got, ok := Repair(tc.backups, get, 200*time.Millisecond)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: Repair(%v) = %q, %v; want %q, %v", tc.name, tc.backups, got, ok, tc.want, tc.ok)
		}
	}
}

// TestDirect checks the reachability rule against nat/core.CanPunch's
// matrix (RFC 4787 sections 4.1 and 5): only symmetric↔symmetric and
// symmetric↔port-restricted pairs need a relay; unknown is symmetric.
func TestDirect(t *testing.T) {
	for a := NAT(0); a < numNAT; a++ {
		for b := NAT(0); b < numNAT; b++ {
			sa, sb := a == NATSymmetric || a == NATUnknown, b == NATSymmetric || b == NATUnknown
			pa, pb := a == NATPortRestricted, b == NATPortRestricted
			want := !(sa && sb || sa && pb || pa && sb)
			if got := Direct(a, b); got != want {
				t.Errorf("Direct(%v, %v) = %v, want %v", a, b, got, want)
			}
		}
	}
}

// TestUnreachablePeersAreFedByReachers places a swarm where half the
// peers sit behind symmetric (or unprobed) and port-restricted NATs and
// checks that every edge is one the NATs allow and every peer is still
// fed: symmetric peers are fed by the open, full-cone and restricted
// ones.
func TestUnreachablePeersAreFedByReachers(t *testing.T) {
	w := newWorld(11, 1.5, 4)
	peers := w.joinN(600, t0)
	for k := range peers {
		switch k % 10 {
		case 0, 1:
			peers[k].NAT = NATSymmetric
		case 2, 3:
			peers[k].NAT = NATPortRestricted
		case 4:
			peers[k].NAT = NATUnknown
		default:
			peers[k].NAT = NAT(k % 3) // open, full cone, restricted
		}
	}
	o := newOpt(t, testConfig(16))
	o.Round(t0, Changes{Join: peers})
	f := Measure(o.Config(), peers, o.Assignments())
	checkInvariants(t, "hard NAT mix", f)
	if f.Deficit != 0 {
		t.Errorf("%d pairs unfed: %+v", f.Deficit, f)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{StreamRate: 0, OriginFeeds: 4},
		{StreamRate: 1, OriginFeeds: 3},
		{StreamRate: 1, OriginFeeds: 4, Usable: 1.5},
		{StreamRate: 1, OriginFeeds: 4, Backups: 9},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted a bad config", c)
		}
	}
	if _, err := New(Config{StreamRate: 1, OriginFeeds: 4}); err != nil {
		t.Errorf("a minimal config: %v", err)
	}
}

// TestRejectsReservedIDs: the origin's name and "" are not peer IDs.
func TestRejectsReservedIDs(t *testing.T) {
	o := newOpt(t, testConfig(4))
	plan := o.Round(t0, Changes{Join: []Peer{{ID: Origin}, {ID: ""}, {ID: "a", Upload: testRate}}})
	if len(plan.Rejected) != 2 || plan.Peers != 1 {
		t.Errorf("plan %+v: want 2 rejected, 1 peer", plan)
	}
}

// TestBackupsRanked checks the order of every assignment's backups in a
// built swarm (DESIGN.md, "Chandelier": ranked backups): same-ISP
// backups before those elsewhere (new ones; kept ones keep their place,
// and a fresh build keeps none), those with a free slot first among
// them; and most peers have a same-ISP first backup.
func TestBackupsRanked(t *testing.T) {
	w := newWorld(21, 1.5, 4)
	peers := w.joinN(1500, t0)
	o := newOpt(t, testConfig(16))
	o.Round(t0, Changes{Join: peers})
	o.Round(t0.Add(time.Second), Changes{})
	sameFirst, with := 0, 0
	for i := int32(1); int(i) < len(o.nodes); i++ {
		x := &o.nodes[i]
		for s := range o.cfg.Stripes {
			bs := x.backups[s]
			if len(bs) == 0 {
				continue
			}
			with++
			if o.nodes[bs[0].i].isp == x.isp {
				sameFirst++
			}
			for k := 1; k < len(bs); k++ {
				if o.rankBackup(x, s, bs[k-1], bs[k]) > 0 {
					t.Fatalf("%s stripe %d: backups %v out of rank order at %d", x.peer.ID, s, bs, k)
				}
				a, b := &o.nodes[bs[k-1].i], &o.nodes[bs[k].i]
				if a.isp != x.isp && b.isp == x.isp {
					t.Fatalf("%s stripe %d: a backup in another ISP ranked before one in its own", x.peer.ID, s)
				}
			}
		}
	}
	if with == 0 || float64(sameFirst) < 0.9*float64(with) {
		t.Errorf("%d of %d assignments have a same-ISP first backup, want >= 90 %% (measured 94 %%: the origin's children may only take depth-1 backups)", sameFirst, with)
	}
}

// TestRepairSkipsLaggingBackups: a peer playing 1 s behind live skips a
// backup that reported 3 s for one within RepairSlack of its own lag;
// with its own lag unknown, rank order decides.
func TestRepairSkipsLaggingBackups(t *testing.T) {
	lag := map[string]time.Duration{"far": 3 * time.Second, "near": 1200 * time.Millisecond}
	get := func(id string) Status { return Status{Lag: lag[id]} }
	if got, _ := Repair([]string{"far", "near"}, get, MaxBackupLag(time.Second)); got != "near" {
		t.Errorf("own lag 1 s: switched to %q, want near", got)
	}
	if got, _ := Repair([]string{"far", "near"}, get, MaxBackupLag(0)); got != "far" {
		t.Errorf("own lag unknown: switched to %q, want the first ranked", got)
	}
	if got, _ := Repair([]string{"far"}, get, MaxBackupLag(time.Second)); got != "far" {
		t.Errorf("only a lagging backup: got %q, want it rather than none", got)
	}
}

// TestRelayedLastResort: a symmetric peer whose only possible parents
// are symmetric and port-restricted (nat/core.CanPunch: no direct path)
// gets no parent without a relay, a relayed one with Config.Relay once
// it went RelayAfter without one (marked, counted in the plan and by
// Measure, not as unreachable), and
// a direct one in the next round once an open forwarder joins.
func TestRelayedLastResort(t *testing.T) {
	rate := int64(testRate)
	feeds := func(n int) int64 { return int64(n) * rate / 4 * 10 / 9 } // n stripe feeds at Usable 0.9
	peers := []Peer{
		{ID: "fwd-sym", Upload: feeds(8), NAT: NATSymmetric, ISP: "a", Joined: t0},
		{ID: "fwd-pr", Upload: feeds(8), NAT: NATPortRestricted, ISP: "a", Joined: t0},
		{ID: "fwd-sym2", Upload: feeds(8), NAT: NATSymmetric, ISP: "a", Joined: t0},
		{ID: "fwd-pr2", Upload: feeds(8), NAT: NATPortRestricted, ISP: "a", Joined: t0},
		{ID: "child", Upload: 0, NAT: NATSymmetric, ISP: "a", Joined: t0},
	}
	for _, relay := range []bool{false, true} {
		cfg := Config{StreamRate: rate, OriginFeeds: 4, Relay: relay}
		o := newOpt(t, cfg)
		plan := o.Round(t0, Changes{Join: peers})
		if relay {
			// Not at once: a direct slot may come within RelayAfter.
			if f := Measure(o.Config(), peers, o.Assignments()); f.Relayed != 0 || f.Deficit == 0 {
				t.Fatalf("relayed at once: %+v", f)
			}
			plan = o.Round(t0.Add(DefaultRelayAfter), Changes{})
		}
		f := Measure(o.Config(), peers, o.Assignments())
		checkInvariants(t, fmt.Sprintf("relay %v", relay), f)
		as := o.PeerAssignments("child")
		fed := 0
		for _, a := range as {
			if a.Parent != "" {
				fed++
				if a.Parent != Origin && !a.Relayed {
					t.Errorf("relay %v: stripe %d of the symmetric child from %s, not marked relayed", relay, a.Stripe, a.Parent)
				}
			}
		}
		t.Logf("relay %v: child fed on %d stripes (%d through the origin), plan relayed %d (standing %d), measured relayed %d, deficit %d",
			relay, fed, f.OriginFeeds, plan.Relayed, plan.RelayedEdges, f.Relayed, f.Deficit)
		if !relay {
			if f.Relayed != 0 || plan.Relayed != 0 {
				t.Errorf("no relay, yet %d relayed edges", f.Relayed)
			}
			if f.Deficit == 0 {
				t.Fatal("the child was fed directly: the test's NATs do not force a relay")
			}
			continue
		}
		if f.Deficit != 0 || plan.Relayed == 0 || f.Relayed != plan.RelayedEdges {
			t.Fatalf("with a relay: deficit %d, plan relayed %d/%d, measured %d", f.Deficit, plan.Relayed, plan.RelayedEdges, f.Relayed)
		}
		// An open forwarder for every stripe: the relayed edges go direct.
		var opens []Peer
		for k := range 4 {
			opens = append(opens, Peer{ID: fmt.Sprintf("open%d", k), Upload: feeds(8), NAT: NATOpen, ISP: "a", Joined: t0})
		}
		all := append(slices.Clone(peers), opens...)
		o.Round(t0.Add(DefaultRelayAfter+time.Second), Changes{Join: opens})
		for r := 2; r < 10; r++ { // the improving moves: one per stripe and round here
			plan = o.Round(t0.Add(DefaultRelayAfter+time.Duration(r)*time.Second), Changes{})
		}
		f = Measure(o.Config(), all, o.Assignments())
		checkInvariants(t, "relay, then open forwarders", f)
		if f.Relayed != 0 || plan.RelayedEdges != 0 || f.Deficit != 0 {
			t.Errorf("after open forwarders joined: %d relayed edges stand (plan %d), deficit %d", f.Relayed, plan.RelayedEdges, f.Deficit)
		}
	}
}
