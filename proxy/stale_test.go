package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/overlay"
	"github.com/swarmtv/swarmtv/tracker"
)

// Issue 6 (chandelier.Pointless on the real peer): a stripe that starves
// (its newest slice captured more than chandelier.Starved ago) does not
// switch to a backup whose offer shows nothing newer, even allowing a
// slice per slice duration since the offer was made; a backup with a
// newer slice, or whose offer carries none (an older build), is taken.
func TestBackupStaleByOffer(t *testing.T) {
	id, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	node := func(c byte) tracker.NodeInfo {
		return tracker.NodeInfo{ID: strings.Repeat(string(c), 32), Addr: "127.0.0.1:1"}
	}
	stale, fresh, unknown := node('a'), node('b'), node('c')
	offer := func(n tracker.NodeInfo, newest uint64, age time.Duration) overlay.Offer {
		return overlay.Offer{Peer: transport.OverlayPeer(swarm.NodeID(n.ID), n.Addr), Depth: 1, Free: 1, Newest: newest, Age: age}
	}
	now := time.Now()
	p := &Peer{id: id, failed: map[string]time.Time{}}
	p.channel.SliceMS = 100
	p.ringOffersAt = now
	p.ringOffers = [][]overlay.Offer{{offer(stale, 100, 0), offer(fresh, 100, 0), offer(unknown, 0, 0)}}
	starved := transport.StripeNewest{Seq: 100, Capture: now.Add(-5 * time.Second), OK: true}
	fed := transport.StripeNewest{Seq: 100, Capture: now.Add(-time.Second), OK: true}
	pick := func(own transport.StripeNewest, backups ...tracker.NodeInfo) (tracker.NodeInfo, bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.backupLocked(backups, now, 0, nil, own)
	}
	if b, ok := pick(starved, stale); ok {
		t.Fatalf("a starved stripe took %v, whose offer shows nothing newer", b)
	}
	if b, ok := pick(fed, stale); !ok || b != stale {
		t.Fatalf("a fed stripe: %v %v, want the backup (any live one will do)", b, ok)
	}
	if b, ok := pick(starved, unknown); !ok || b != unknown {
		t.Fatalf("%v %v, want the backup whose offer has no newest slice", b, ok)
	}
	// An offer 2 s old: the backup may have had 20 slices since.
	p.ringOffers[0][1] = offer(fresh, 100, 2*time.Second)
	if b, ok := pick(starved, stale, fresh); !ok || b != fresh {
		t.Fatalf("%v %v, want the backup whose offer is old enough to hold newer", b, ok)
	}
	// The ring rule passes over the stale member the same way.
	p.trackerAway = true
	p.ringSelf.depth = []int{5}
	p.ringOffers = [][]overlay.Offer{{offer(stale, 100, 0)}}
	p.mu.Lock()
	b, ok := p.overlayBackupLocked(now, 0, starved)
	p.mu.Unlock()
	if ok {
		t.Fatalf("the ring rule took %v, whose offer shows nothing newer", b)
	}
	p.mu.Lock()
	b, ok = p.overlayBackupLocked(now, 0, fed)
	p.mu.Unlock()
	if !ok || b.ID != stale.ID {
		t.Fatalf("the ring rule with a fed stripe: %v %v", b, ok)
	}
}

// Issue 6: a member's newest slice per stripe travels in its offers over
// real QUIC overlay connections (wire type gossip-newest), and the peer
// that hears it judges a switch of a starved stripe by it.
func TestStaleOverRealOverlay(t *testing.T) {
	aov, _, aid, _ := startOverlay(t, 21)
	bov, _, _, b := startOverlay(t, 22)
	bov.SetOffers([]overlay.Offer{{Stripe: 0, Depth: 1, Free: 2, Newest: 500}})
	aov.Join(bov.Self())
	var got overlay.Offer
	for deadline := time.Now().Add(20 * time.Second); got.Newest == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no offer with a newest slice heard from the member in 20 s")
		}
		for _, o := range aov.Offers(0) {
			if o.Peer == bov.Self() {
				got = o
			}
		}
	}
	if got.Newest != 500 || got.Depth != 1 || got.Free != 2 {
		t.Fatalf("heard %+v, want newest 500, depth 1, free 2", got)
	}
	p := &Peer{id: aid, failed: map[string]time.Time{}}
	p.channel.SliceMS = 100
	p.stripes = make([]tracker.StripeAssignment, 1)
	p.refreshCandidates(aov)
	now := time.Now()
	starvedAt := func(seq uint64) transport.StripeNewest {
		return transport.StripeNewest{Seq: seq, Capture: now.Add(-10 * time.Second), OK: true}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if b2, ok := p.backupLocked([]tracker.NodeInfo{b}, now, 0, nil, starvedAt(10_000)); ok {
		t.Fatalf("took %v, which held nothing newer than a starved stripe", b2)
	}
	if b2, ok := p.backupLocked([]tracker.NodeInfo{b}, now, 0, nil, starvedAt(400)); !ok || b2 != b {
		t.Fatalf("%v %v, want the member holding newer slices", b2, ok)
	}
}
