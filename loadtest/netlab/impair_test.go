package netlab_test

import (
	"context"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/loadtest/netlab"
	"github.com/swarmtv/swarmtv/nat/core"
)

// With 5 % loss at both NATs the probe still names them and the pair
// still punches (LAB.md measured punching at 5 % loss).
func TestClassifyAndPunchUnderLoss(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: []netlab.NAT{netlab.PortRestricted, netlab.Restricted}})
	s := stunServer(t, lab)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, site := range lab.Sites {
		if err := lab.SetLoss(ctx, site, 5); err != nil {
			t.Fatal(err)
		}
	}
	a, b := newLabPeer(t, "a", lab.Sites[0].Hosts[0]), newLabPeer(t, "b", lab.Sites[1].Hosts[0])
	probeAll(t, ctx, s, []*labPeer{a, b})
	if a.rep.Type != core.TypePortRestricted || b.rep.Type != core.TypeRestricted {
		t.Fatalf("under loss: %v and %v", a.rep.Type, b.rep.Type)
	}
	ok, _, _, err := punchPair(ctx, 11, a, b)
	if err != nil || !ok {
		t.Fatalf("punch under loss: direct=%v err=%v", ok, err)
	}
	// 100 % loss: nothing gets through; removing it restores the path.
	if err := lab.SetLoss(ctx, lab.Sites[0], 100); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cc.Bind(ctx, s.Addr(), 0, 500*time.Millisecond); err == nil {
		t.Fatal("STUN answered through a router dropping everything")
	}
	if err := lab.SetLoss(ctx, lab.Sites[0], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cc.Bind(ctx, s.Addr(), 0, 5*time.Second); err != nil {
		t.Fatalf("after removing the loss: %v", err)
	}
}

// A partition between two sites stops their traffic but not their
// traffic to the public side; healing it restores the path.
func TestPartitionAndHeal(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: []netlab.NAT{netlab.FullCone, netlab.FullCone}})
	s := stunServer(t, lab)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := newLabPeer(t, "a", lab.Sites[0].Hosts[0]), newLabPeer(t, "b", lab.Sites[1].Hosts[0])
	probeAll(t, ctx, s, []*labPeer{a, b})
	if err := lab.Partition(ctx, lab.Sites[:1], lab.Sites[1:], true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cc.Bind(ctx, s.Addr(), 0, 3*time.Second); err != nil {
		t.Fatalf("a lost the public side: %v", err)
	}
	if _, err := b.cc.Bind(ctx, s.Addr(), 0, 500*time.Millisecond); err == nil {
		t.Fatal("b reached the public side across the cut")
	}
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	ok, _, _, err := punchPair(pctx, 12, a, b)
	if err != nil || ok {
		t.Fatalf("punched across a partition: direct=%v err=%v", ok, err)
	}
	if err := lab.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	ok, _, _, err = punchPair(ctx, 13, a, b)
	if err != nil || !ok {
		t.Fatalf("after healing: direct=%v err=%v", ok, err)
	}
	if _, err := b.cc.Bind(ctx, s.Addr(), 0, 3*time.Second); err != nil {
		t.Fatalf("b after healing: %v", err)
	}
}
