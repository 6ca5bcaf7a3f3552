package proxy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/tracker"
)

// silentParent is a real QUIC endpoint that accepts subscriptions and
// sends nothing: a parent that is up while the stream has not started.
func silentParent(t *testing.T) tracker.NodeInfo {
	t.Helper()
	id, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	ep, err := transport.Listen("127.0.0.1:0", id, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return tracker.NodeInfo{ID: string(id.ID()), Addr: ep.Addr().String()}
}

// stripePeer is a Peer with a running driver and no tracker traffic:
// what its control loop would do is called directly.
func stripePeer(t *testing.T, k int) *Peer {
	t.Helper()
	p, err := NewPeer(PeerConfig{Channel: "tv", Tracker: "http://127.0.0.1:1", RTSP: "127.0.0.1:0", NoProbe: true})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	node, err := swarm.New(swarm.Config{Channel: "tv", PublicKey: pub, Stripes: k, MaxChildren: 2})
	if err != nil {
		t.Fatal(err)
	}
	d, err := transport.NewDriver(transport.DriverConfig{Node: node, Endpoint: p.ep, Channel: "tv", Logger: p.log, OnLost: p.onLost})
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.channel = tracker.ChannelInfo{Name: "tv", Stripes: k}
	p.driver = d
	p.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	t.Cleanup(func() {
		d.Close()
		<-done
		p.ep.Close()
		p.rtsp.Close()
	})
	return p
}

func waitParents(t *testing.T, p *Peer, want []tracker.NodeInfo) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := p.driver.Parents()
		ok := len(got) == len(want)
		for s := range want {
			ok = ok && got[s] == peerOf(want[s])
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("driver parents %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A lost parent's stripes switch at once to their first usable backup;
// the switch is reported; an answer naming the lost parent again (sent
// before the tracker heard of the loss) does not undo it.
func TestLocalRepairSwitchesToBackups(t *testing.T) {
	const k = 4
	p := stripePeer(t, k)
	a, b, c := silentParent(t), silentParent(t), silentParent(t)
	as := []tracker.StripeAssignment{
		{Parent: a, Backups: []tracker.NodeInfo{b, c}},
		{Parent: b, Backups: []tracker.NodeInfo{a, c}},
		{Parent: a, Backups: []tracker.NodeInfo{a, c}}, // a ranked first but it is the lost one
		{Parent: c, Backups: []tracker.NodeInfo{}},
	}
	p.applyStripes(as, tracker.NodeInfo{}, time.Now())
	waitParents(t, p, []tracker.NodeInfo{a, b, a, c})
	sent := time.Now() // a heartbeat on its way

	p.onLost(transport.Lost{Parent: swarm.NodeID(a.ID), Stripes: []int{0, 2}})
	waitParents(t, p, []tracker.NodeInfo{b, b, c, c})
	select {
	case r := <-p.lost:
		want := []tracker.StripeSwitch{{Stripe: 0, Parent: b.ID}, {Stripe: 2, Parent: c.ID}}
		if r.parent != swarm.NodeID(a.ID) || !slices.Equal(r.switched, want) {
			t.Fatalf("report %+v, want parent %s switched %v", r, a.ID, want)
		}
	default:
		t.Fatal("the loss was not queued for the tracker")
	}

	// A stale answer still naming a: the local switches stay.
	p.applyStripes(as, tracker.NodeInfo{}, sent)
	if got := parentIDs(p.Stripes()); !slices.Equal(got, []string{b.ID, b.ID, c.ID, c.ID}) {
		t.Fatalf("after a stale answer: %v", got)
	}
	// A real change of one stripe moves only that stripe.
	as2 := []tracker.StripeAssignment{{Parent: b}, {Parent: b}, {Parent: c}, {Parent: b}}
	p.applyStripes(as2, tracker.NodeInfo{}, time.Now())
	waitParents(t, p, []tracker.NodeInfo{b, b, c, b})

	// No usable backup: the stripe is left to the origin's fallback.
	p.onLost(transport.Lost{Parent: swarm.NodeID(c.ID), Stripes: []int{2}})
	waitParents(t, p, []tracker.NodeInfo{b, b, {}, b})
	r := <-p.lost
	if len(r.switched) != 0 {
		t.Fatalf("switched %v with no backup", r.switched)
	}
	// The tracker's answer to the report, sent after the loss, may name
	// the lost parent again (say it is the origin): it is taken.
	p.applyStripes(as2, tracker.NodeInfo{}, time.Now())
	waitParents(t, p, []tracker.NodeInfo{b, b, c, b})
	// Lost again at once (it refuses): the next answer naming it is held
	// off rather than dialed in a tight loop.
	p.onLost(transport.Lost{Parent: swarm.NodeID(c.ID), Stripes: []int{2}})
	<-p.lost
	waitParents(t, p, []tracker.NodeInfo{b, b, {}, b})
	p.applyStripes(as2, tracker.NodeInfo{}, time.Now())
	if got := parentIDs(p.Stripes()); got[2] != "-" {
		t.Fatalf("a parent lost twice in a row was taken back at once: %v", got)
	}
	if d := holdOff(2); d <= 0 || holdOff(20) != failedFor || holdOff(1) != 0 {
		t.Fatalf("holdOff: %v %v %v", holdOff(1), d, holdOff(20))
	}
}

// A tracker that sends no stripes (an old one) gives every stripe its
// one parent.
func TestLegacyParent(t *testing.T) {
	p := stripePeer(t, 2)
	a := silentParent(t)
	p.applyStripes(nil, a, time.Now())
	waitParents(t, p, []tracker.NodeInfo{a, a})
	st := p.Status()
	if st.Parent != a || len(st.Stripes) != 2 || st.Stripes[1].Backups == nil {
		t.Fatalf("status %+v", st)
	}
}
