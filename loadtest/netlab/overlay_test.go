package netlab_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/loadtest/netlab"
	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/overlay"
)

// labMember is an overlay member on a lab host behind a NAT: its ring
// address is the mapped address STUN found (a full-cone NAT forwards what
// arrives there).
type labMember struct {
	q    *quicPeer
	ov   *transport.Overlay
	done chan error
}

func (m *labMember) self() overlay.Peer { return m.ov.Self() }

// ringsOf checks that each group of members forms one consistent ring in
// ID order, and says what is out of place if not.
func ringsOf(groups ...[]*labMember) (bool, string) {
	for _, g := range groups {
		ids := make([]overlay.ID, len(g))
		for i, m := range g {
			ids[i] = m.self().ID
		}
		slices.Sort(ids)
		for _, m := range g {
			st := m.ov.Status()
			i := slices.Index(ids, m.self().ID)
			next, prev := ids[(i+1)%len(ids)], ids[(i+len(ids)-1)%len(ids)]
			if len(st.Successors) == 0 || st.Successors[0].ID != next || !st.HasPred || st.Pred.ID != prev {
				return false, fmt.Sprintf("%v: successor %v, predecessor %v (has %v); want %v and %v", m.self().ID, st.Successors, st.Pred.ID, st.HasPred, next, prev)
			}
		}
	}
	return true, ""
}

func waitRings(t *testing.T, within time.Duration, groups ...[]*labMember) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, why := ringsOf(groups...)
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("rings not consistent after %v: %s", within, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Issue 6, acceptance (network lab): overlay members behind real NATs in
// two groups of sites form one ring; the internet is cut between the
// groups for 30 s — each group closes its own ring — and healed: the
// rings find each other again (rechecks of the members they lost) and
// merge into one.
func TestOverlayPartitionMerge(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: []netlab.NAT{netlab.FullCone, netlab.FullCone, netlab.FullCone, netlab.FullCone}})
	s := stunServer(t, lab)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var members []*labMember
	var wg sync.WaitGroup
	for i, site := range lab.Sites {
		q := newQUICPeer(t, site.Hosts[0])
		rep, err := q.stun.Probe(ctx, s.Addr(), nat.ProbeConfig{Local: q.local})
		if err != nil {
			t.Fatalf("site %d: probe: %v", i, err)
		}
		self := transport.OverlayPeer(q.ep.ID(), rep.Mapped.String())
		node, err := overlay.New(overlay.Config{Self: self, Rand: rand.NewPCG(uint64(i), 6), Round: 500 * time.Millisecond, RecheckInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ov, err := transport.NewOverlay(transport.OverlayConfig{Node: node, Endpoint: q.ep, Channel: "lab", Logger: quietLog(), Accept: true})
		if err != nil {
			t.Fatal(err)
		}
		m := &labMember{q: q, ov: ov, done: make(chan error, 1)}
		wg.Go(func() { m.done <- ov.Run(ctx) })
		members = append(members, m)
	}
	t.Cleanup(func() {
		for _, m := range members {
			m.ov.Close()
		}
		wg.Wait()
	})
	for _, m := range members[1:] {
		m.ov.Join(members[0].self())
	}
	took := waitRings(t, 60*time.Second, members)
	t.Logf("one ring of %d members behind NATs in %v", len(members), took.Round(time.Millisecond))

	if err := lab.Partition(ctx, lab.Sites[:2], lab.Sites[2:], true); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	took = waitRings(t, 30*time.Second, members[:2], members[2:])
	t.Logf("partitioned: two rings after %v", took.Round(time.Millisecond))
	time.Sleep(30*time.Second - time.Since(cut))

	if err := lab.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	took = waitRings(t, 60*time.Second, members)
	t.Logf("healed after 30 s: one ring again after %v", took.Round(time.Millisecond))
	res, err := members[3].ov.Lookup(ctx, members[0].self().ID)
	if err != nil || res.Owner != members[0].self() {
		t.Fatalf("lookup across the healed cut: %+v, %v", res.Owner, err)
	}
}
