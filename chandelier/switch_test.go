package chandelier

import (
	"slices"
	"testing"
	"time"
)

// TestSwitchKeptWhenValid: a peer that repaired on its own (Repair, then
// a Switch report) keeps its new parent in the next round when the edge
// is valid, so the tracker does not undo the repair; a switch that would
// close a cycle is refused and the peer is placed again.
func TestSwitchKeptWhenValid(t *testing.T) {
	w := newWorld(5, 1.5, 4)
	peers := w.joinN(300, t0)
	o := newOpt(t, testConfig(16))
	o.Round(t0, Changes{Join: peers})
	// Quiet rounds until the improving moves are spent, so the switch's
	// round has nothing else to do.
	now := t0
	for range 20 {
		if now = now.Add(time.Second); o.Round(now, Changes{}).Moved == 0 {
			break
		}
	}
	all := o.Assignments()
	children := map[string]int{}
	for _, a := range all {
		children[a.Parent]++
	}
	var sw Switch
	for _, a := range all {
		if a.Parent == Origin || len(a.Backups) == 0 {
			continue
		}
		b := a.Backups[0]
		if children[b] < o.cfg.Feeds(w.peers[b].Upload) {
			sw = Switch{Peer: a.Peer, Stripe: a.Stripe, Parent: b}
			break
		}
	}
	if sw.Peer == "" {
		t.Fatal("no assignment with a backup that has a free slot")
	}
	plan := o.Round(now.Add(time.Second), Changes{Switched: []Switch{sw}})
	if len(plan.Changed) != 1 || plan.Changed[0].Parent != sw.Parent || plan.Moved != 1 {
		t.Fatalf("switch %+v: plan %+v, want the switch confirmed alone", sw, plan)
	}

	// A switch below itself: the peer's own child in its interior stripe.
	var bad Switch
	for _, a := range o.Assignments() {
		if a.Parent != Origin && a.Parent != "" {
			if s, _ := o.Interior(a.Parent); s == a.Stripe {
				bad = Switch{Peer: a.Parent, Stripe: a.Stripe, Parent: a.Peer}
				break
			}
		}
	}
	o.Round(now.Add(2*time.Second), Changes{Switched: []Switch{bad}})
	f := Measure(o.Config(), w.list(), o.Assignments())
	checkInvariants(t, "after a cyclic switch", f)
	if f.Deficit != 0 {
		t.Errorf("peer %s not placed again after a refused switch: %+v", bad.Peer, f)
	}
	for _, a := range o.Assignments() {
		if a.Peer == bad.Peer && a.Stripe == bad.Stripe && a.Parent == bad.Parent {
			t.Errorf("cyclic switch %+v kept", bad)
		}
	}
}

// TestQuietRoundsSkipStripes: once the improving moves are spent, a round
// with nothing new places no stripe again (each is marked stale only by a
// change in it) and reports nothing; a peer's own switch marks its stripe
// alone; a leave marks them all.
func TestQuietRoundsSkipStripes(t *testing.T) {
	w := newWorld(8, 1.5, 4)
	o := newOpt(t, testConfig(16))
	now := t0
	o.Round(now, Changes{Join: w.joinN(2000, now)})
	settled := false
	for range 40 {
		now = now.Add(time.Second)
		o.Round(now, Changes{})
		if !slices.Contains(o.stale, true) {
			settled = true
			break
		}
	}
	if !settled {
		t.Fatalf("stripes still stale after 40 quiet rounds: %v", o.stale)
	}
	now = now.Add(time.Second)
	if plan := o.Round(now, Changes{}); len(plan.Changed) != 0 || plan.Moved != 0 || slices.Contains(o.stale, true) {
		t.Fatalf("quiet round: %d changed, %d moved, stale %v", len(plan.Changed), plan.Moved, o.stale)
	}
	var sw Switch
	for _, a := range o.Assignments() {
		if a.Parent != Origin && len(a.Backups) > 0 {
			sw = Switch{Peer: a.Peer, Stripe: a.Stripe, Parent: a.Backups[0]}
			break
		}
	}
	o.applySwitch(sw)
	for s, st := range o.stale {
		if st != (s == sw.Stripe) {
			t.Fatalf("after a switch in stripe %d: stale %v", sw.Stripe, o.stale)
		}
	}
	now = now.Add(time.Second)
	o.Round(now, Changes{Leave: w.leaveN(1)})
	f := Measure(o.Config(), w.list(), o.Assignments())
	checkInvariants(t, "after a leave", f)
	if f.Deficit != 0 {
		t.Fatalf("deficit %d after a leave", f.Deficit)
	}
}
