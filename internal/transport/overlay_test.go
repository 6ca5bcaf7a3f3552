package transport

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
	"github.com/swarmtv/swarmtv/overlay"
)

// ovNode is one overlay member on a real endpoint.
type ovNode struct {
	ep   *Endpoint
	ov   *Overlay
	done chan error
	once sync.Once
	err  error // Run's result, after stop
}

func (n *ovNode) peer() overlay.Peer { return n.ov.Self() }

// stop ends the member as a crash would look from outside: the driver
// and the socket go away.
func (n *ovNode) stop() {
	n.once.Do(func() {
		n.ov.Close()
		n.err = <-n.done
		n.ep.Close()
	})
}

func ovConfig(self overlay.Peer, seed uint64) overlay.Config {
	return overlay.Config{
		Self:          self,
		Rand:          rand.NewPCG(seed, 1),
		Round:         200 * time.Millisecond,
		ProbeTimeout:  time.Second,
		LookupTimeout: time.Second,
		// Short, so that a killed member's remembered entry is rechecked
		// soon (it must stay out of the ring).
		RecheckInterval: 500 * time.Millisecond,
	}
}

// startOverlay runs an overlay-only node (its own accept loop).
func startOverlay(t *testing.T, seed uint64) *ovNode {
	t.Helper()
	ep := newEndpoint(t)
	node, err := overlay.New(ovConfig(OverlayPeer(ep.ID(), ep.Advertised("")), seed))
	if err != nil {
		t.Fatal(err)
	}
	ov, err := NewOverlay(OverlayConfig{Node: node, Endpoint: ep, Channel: testChannel, Logger: testLogger(t), Accept: true})
	if err != nil {
		t.Fatal(err)
	}
	n := &ovNode{ep: ep, ov: ov, done: make(chan error, 1)}
	go func() { n.done <- ov.Run(context.Background()) }()
	t.Cleanup(func() {
		n.stop()
		if n.err != nil {
			t.Errorf("overlay Run: %v", n.err)
		}
	})
	return n
}

// ringConsistent reports whether every member's successor and
// predecessor are its neighbours in ID order, and why not.
func ringConsistent(nodes []*ovNode) (bool, string) {
	ids := make([]overlay.Peer, len(nodes))
	for i, n := range nodes {
		ids[i] = n.peer()
	}
	slices.SortFunc(ids, func(a, b overlay.Peer) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	for _, n := range nodes {
		st := n.ov.Status()
		i := slices.Index(ids, n.peer())
		pred := ids[(i+len(ids)-1)%len(ids)]
		if !st.Joined && len(nodes) > 1 {
			return false, n.peer().String() + " not joined"
		}
		want := min(len(ids)-1, n.ov.node.Config().Successors)
		if len(ids) > 1 && len(st.Successors) < want {
			return false, n.peer().ID.String() + " has a short successor list"
		}
		for k := range want {
			if st.Successors[k] != ids[(i+1+k)%len(ids)] {
				return false, n.peer().ID.String() + " has a wrong successor list"
			}
		}

		if !st.HasPred || st.Pred != pred {
			return false, n.peer().ID.String() + " has the wrong predecessor"
		}
	}
	return true, ""
}

func waitConsistent(t *testing.T, nodes []*ovNode, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, why := ringConsistent(nodes)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ring not consistent after %v: %s", within, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// owner is the member responsible for key: its successor among nodes.
func owner(nodes []*ovNode, key overlay.ID) overlay.Peer {
	var best overlay.Peer
	bestD := ^uint64(0)
	for _, n := range nodes {
		if d := uint64(n.peer().ID - key); d <= bestD {
			best, bestD = n.peer(), d
		}
	}
	return best
}

// TestOverlayRealRing: members on real QUIC endpoints join through one
// member's host:port (no key known beforehand, as --bootstrap), form a
// consistent ring, answer lookups with the right owner, and when one
// member dies the others detect it and close the ring around it.
func TestOverlayRealRing(t *testing.T) {
	const n = 6
	nodes := []*ovNode{startOverlay(t, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 1; i < n; i++ {
		m := startOverlay(t, uint64(i+1))
		via, err := m.ov.JoinAddr(ctx, nodes[0].ep.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if via != nodes[0].peer() {
			t.Fatalf("joined via %v, want %v", via, nodes[0].peer())
		}
		nodes = append(nodes, m)
	}
	waitConsistent(t, nodes, 30*time.Second)

	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 30 {
		key := overlay.ID(rng.Uint64())
		from := nodes[i%n]
		res, err := from.ov.Lookup(ctx, key)
		if err != nil {
			t.Fatalf("lookup %v from %v: %v", key, from.peer().ID, err)
		}
		if want := owner(nodes, key); res.Owner != want {
			t.Fatalf("lookup %v: owner %v, want %v", key, res.Owner.ID, want.ID)
		}
	}

	// The estimate of the ring's size converges on the truth.
	deadline := time.Now().Add(30 * time.Second)
	for {
		est := nodes[1].ov.Status().Estimates
		if est.Peers > n-0.5 && est.Peers < n+0.5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("size estimate %v, want about %d", est.Peers, n)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Partner discovery over the wire: one member's offer of room reaches
	// every other member through the gossip (gossip-offers frames).
	nodes[2].ov.SetOffers([]overlay.Offer{{Stripe: 1, Depth: 1, Free: 3}})
	for _, m := range nodes {
		if m == nodes[2] {
			continue
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			os := m.ov.Offers(1)
			if len(os) > 0 && os[0].Peer == nodes[2].peer() && os[0].Depth == 1 && os[0].Free == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v: offers %+v, want %v's offer of room", m.peer().ID, os, nodes[2].peer().ID)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Kill a member: the rest notice and close the ring.
	dead := nodes[3]
	dead.stop()
	rest := slices.Delete(slices.Clone(nodes), 3, 4)
	waitConsistent(t, rest, 30*time.Second)
	res, err := nodes[0].ov.Lookup(ctx, dead.peer().ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := owner(rest, dead.peer().ID); res.Owner != want {
		t.Fatalf("the dead member's key is owned by %v, want %v", res.Owner.ID, want.ID)
	}
}

// TestOverlayImpostorCutOff: a node whose hello claims a ring member that
// is not its key is cut off with a protocol error, and so is one that
// sends a malformed overlay frame; the member's ring is untouched.
func TestOverlayImpostorCutOff(t *testing.T) {
	a := startOverlay(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, frames := range map[string][]byte{
		"impostor": wire.AppendFrame(nil, wire.FrameOverlayHello,
			wire.OverlayHello{Channel: testChannel, From: a.peer()}.Append(nil)),
		"garbage": nil, // filled below: a good hello, then a bad message
	} {
		t.Run(name, func(t *testing.T) {
			ep := newEndpoint(t)
			if frames == nil {
				frames = wire.AppendFrame(nil, wire.FrameOverlayHello,
					wire.OverlayHello{Channel: testChannel, From: OverlayPeer(ep.ID(), ep.Advertised(""))}.Append(nil))
				frames = wire.AppendFrame(frames, wire.FrameOverlay, []byte{wire.Version, 99})
			}
			c, err := ep.Dial(ctx, a.ep.Addr().String(), a.ep.ID())
			if err != nil {
				t.Fatal(err)
			}
			st, err := c.OpenStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Write(frames); err != nil {
				t.Fatal(err)
			}
			select {
			case <-c.Context().Done():
			case <-ctx.Done():
				t.Fatal("connection not closed")
			}
			var ae *quic.ApplicationError
			if err := context.Cause(c.Context()); !errors.As(err, &ae) || ae.ErrorCode != CodeProtocol {
				t.Fatalf("closed with %v, want protocol error", err)
			}
		})
	}
	if st := a.ov.Status(); len(st.Members) != 0 || st.HasPred {
		t.Fatalf("the member's tables changed: %+v", st)
	}
}

// TestOverlayThroughDriver: a node running a swarm Driver hands overlay
// streams arriving on its connections to its Overlay
// (DriverConfig.Overlay); an overlay-only node joins through it.
func TestOverlayThroughDriver(t *testing.T) {
	s := newStream(t, 2)
	ep := newEndpoint(t)
	node, err := overlay.New(ovConfig(OverlayPeer(ep.ID(), ep.Advertised("")), 1))
	if err != nil {
		t.Fatal(err)
	}
	ov, err := NewOverlay(OverlayConfig{Node: node, Endpoint: ep, Channel: testChannel, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := swarm.New(swarm.Config{Channel: testChannel, PublicKey: s.pub, Stripes: s.k, Source: true, Origin: ep.ID(), SliceDuration: s.slice})
	if err != nil {
		t.Fatal(err)
	}
	drv, err := NewDriver(DriverConfig{Node: sn, Endpoint: ep, Channel: testChannel, Logger: testLogger(t), Overlay: ov})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { errs <- ov.Run(ctx) }()
	go func() { errs <- drv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-errs
		<-errs
	})
	hub := &ovNode{ep: ep, ov: ov}
	b := startOverlay(t, 2)
	c := startOverlay(t, 3)
	jctx, jcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer jcancel()
	if _, err := b.ov.JoinAddr(jctx, ep.Addr().String()); err != nil {
		t.Fatal(err)
	}
	c.ov.Join(b.peer())
	waitConsistent(t, []*ovNode{hub, b, c}, 30*time.Second)
}

func TestOverlayConfigRefused(t *testing.T) {
	ep := newEndpoint(t)
	other := newEndpoint(t)
	mk := func(self overlay.Peer) *overlay.Node {
		n, err := overlay.New(overlay.Config{Self: self, Rand: rand.NewPCG(1, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for name, cfg := range map[string]OverlayConfig{
		"no node":       {Endpoint: ep, Channel: "c", Logger: testLogger(t)},
		"no channel":    {Node: mk(OverlayPeer(ep.ID(), "127.0.0.1:1")), Endpoint: ep, Logger: testLogger(t)},
		"bad self addr": {Node: mk(overlay.Peer{ID: 1, Addr: "127.0.0.1:1"}), Endpoint: ep, Channel: "c", Logger: testLogger(t)},
		"wrong id":      {Node: mk(overlay.Peer{ID: 1, Addr: string(ep.ID()) + "@127.0.0.1:1"}), Endpoint: ep, Channel: "c", Logger: testLogger(t)},
		"other node":    {Node: mk(OverlayPeer(other.ID(), "127.0.0.1:1")), Endpoint: ep, Channel: "c", Logger: testLogger(t)},
	} {
		if _, err := NewOverlay(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if OverlayID("zz") != 0 || OverlayID("00000000000000ff0000") != 0xff {
		t.Error("OverlayID")
	}
}

// TestFetchChannelInfo: a newcomer given only a member's host:port gets
// the channel's description from it (and the member's verified ID); a
// member of another channel gives none.
func TestFetchChannelInfo(t *testing.T) {
	ep := newEndpoint(t)
	node, err := overlay.New(ovConfig(OverlayPeer(ep.ID(), ep.Advertised("")), 1))
	if err != nil {
		t.Fatal(err)
	}
	ov, err := NewOverlay(OverlayConfig{Node: node, Endpoint: ep, Channel: testChannel, Logger: testLogger(t), Accept: true,
		Info: func() []byte { return []byte(`{"name":"test"}`) }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ov.Run(context.Background()) }()
	t.Cleanup(func() { ov.Close(); <-done })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	newcomer := newEndpoint(t)
	id, info, err := FetchChannelInfo(ctx, newcomer, ep.Addr().String(), testChannel)
	if err != nil {
		t.Fatal(err)
	}
	if id != ep.ID() || string(info) != `{"name":"test"}` {
		t.Fatalf("got %s %q", id, info)
	}
	if _, _, err := FetchChannelInfo(ctx, newcomer, ep.Addr().String(), "other"); !errors.Is(err, ErrNoInfo) {
		t.Fatalf("another channel: %v, want ErrNoInfo", err)
	}
}
