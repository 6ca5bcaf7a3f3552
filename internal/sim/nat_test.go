package sim

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/swarmtv/swarmtv/chandelier"
	"github.com/swarmtv/swarmtv/nat/core"
)

// RFC 4787 section 4.1 (mapping) and section 5 (filtering), and DESIGN.md
// "NAT traversal": which pairs punch through. Pairs that cannot:
// symmetric on both sides, symmetric with port-restricted.
func TestPunchMatrix(t *testing.T) {
	types := []NATType{NATOpen, NATFullCone, NATRestricted, NATPortRestricted, NATSymmetric}
	fails := map[[2]NATType]bool{
		{NATSymmetric, NATSymmetric}:      true,
		{NATSymmetric, NATPortRestricted}: true,
		{NATPortRestricted, NATSymmetric}: true,
	}
	for i, a := range types {
		for j, b := range types {
			na, nb := newNAT(a, 0x64000001+uint32(i)), newNAT(b, 0x65000001+uint32(j))
			got := punch(1e9, na, nb)
			if want := !fails[[2]NATType{a, b}]; got != want {
				t.Errorf("punch %v ↔ %v = %v, want %v", a, b, got, want)
			}
		}
	}
}

// A punch's outcome depends on the NAT types alone: NATs that punched,
// sent and aged bindings before (to other peers, mapped and expired, the
// port counter wrapped) give the answer fresh ones give (punchable, which
// the simulator uses).
func TestPunchTypeOnly(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	nats := make([]*nat, 40)
	for i := range nats {
		nats[i] = newNAT(NATType(i%int(numNATTypes)), 0x64000001+uint32(i))
		nats[i].next = uint16(65535 - rng.IntN(50)) // wraps soon
	}
	now := int64(0)
	for step := range 5000 {
		a, b := nats[rng.IntN(len(nats))], nats[rng.IntN(len(nats))]
		if a == b {
			continue
		}
		if rng.IntN(3) == 0 { // unrelated traffic
			a.outbound(now, uint16(4000+rng.IntN(3)), endpoint{addr: uint32(rng.IntN(8)), port: uint16(rng.IntN(3))})
		}
		if got, want := punch(now, a, b), punchable[a.typ][b.typ]; got != want {
			t.Fatalf("step %d: punch %v -> %v = %v after history, fresh NATs %v", step, a.typ, b.typ, got, want)
		}
		now += rng.Int64N(int64(natTimeout) / 20) // some bindings expire
	}
}

// The simulator's NAT model, the real peers' pairing rule (nat/core's
// CanPunch over the RFC 5780 behaviours each class stands for) and the
// placement's reachability rule (chandelier.Direct) give the same answer
// for every pair of NAT types: simulated and real swarms place and
// connect the same pairs.
func TestPunchModelMatchesPairingRules(t *testing.T) {
	for a := NATType(0); a < numNATTypes; a++ {
		for b := NATType(0); b < numNATTypes; b++ {
			ta, ok1 := core.ParseType(a.String())
			tb, ok2 := core.ParseType(b.String())
			if !ok1 || !ok2 {
				t.Fatalf("nat/core has no type named %q or %q", a, b)
			}
			model := punch(1e9, newNAT(a, 0x64000001), newNAT(b, 0x65000001))
			rule := core.CanPunch(core.Typical(ta), core.Typical(tb))
			placement := chandelier.Direct(chandelier.NAT(a), chandelier.NAT(b))
			if model != rule || model != placement {
				t.Errorf("%v ↔ %v: simulator %v, nat/core.CanPunch %v, chandelier.Direct %v", a, b, model, rule, placement)
			}
			if chandelier.NAT(a).String() != a.String() {
				t.Errorf("chandelier names %v %q", a, chandelier.NAT(a))
			}
		}
	}
}

// RFC 4787 REQ-1: endpoint-independent mapping reuses the external port
// for every destination; a symmetric NAT (address-and-port-dependent
// mapping) allocates one per destination.
func TestMappingBehaviour(t *testing.T) {
	d1, d2 := endpoint{1, 1000}, endpoint{2, 1000}
	eim := newNAT(NATPortRestricted, 7)
	if a, b := eim.outbound(0, peerPort, d1), eim.outbound(0, peerPort, d2); a != b {
		t.Errorf("EIM: %v and %v for two destinations", a, b)
	}
	sym := newNAT(NATSymmetric, 7)
	if a, b := sym.outbound(0, peerPort, d1), sym.outbound(0, peerPort, d2); a == b {
		t.Errorf("symmetric: the same mapping %v for two destinations", a)
	}
}

// RFC 4787 section 5: filtering. Full cone lets anyone in on a mapping,
// restricted only addresses it sent to, port-restricted only the exact
// endpoints.
func TestFilteringBehaviour(t *testing.T) {
	dst := endpoint{0x0b000001, 5000}
	sameAddr := endpoint{dst.addr, 6000}
	other := endpoint{0x0c000001, 5000}
	for _, tc := range []struct {
		typ                      NATType
		exact, sameAddr, another bool
	}{
		{NATFullCone, true, true, true},
		{NATRestricted, true, true, false},
		{NATPortRestricted, true, false, false},
		{NATSymmetric, true, false, false},
	} {
		n := newNAT(tc.typ, 9)
		ext := n.outbound(0, peerPort, dst).port
		if got := n.inbound(1, dst, ext); got != tc.exact {
			t.Errorf("%v: from the destination: %v", tc.typ, got)
		}
		if got := n.inbound(1, sameAddr, ext); got != tc.sameAddr {
			t.Errorf("%v: from the destination's address, other port: %v", tc.typ, got)
		}
		if got := n.inbound(1, other, ext); got != tc.another {
			t.Errorf("%v: from another host: %v", tc.typ, got)
		}
		if n.inbound(1, dst, ext+1) {
			t.Errorf("%v: a packet to an unmapped port got in", tc.typ)
		}
	}
}

// RFC 4787 REQ-5: a binding expires after its timeout without outbound
// refresh; an expired EIM binding is replaced by a new port, so a stale
// reflexive address no longer reaches the host.
func TestBindingExpiry(t *testing.T) {
	n := newNAT(NATFullCone, 9)
	ext := n.outbound(0, peerPort, stunServer).port
	if !n.inbound(natTimeout-1, endpoint{5, 5}, ext) {
		t.Fatal("binding gone before its timeout")
	}
	if n.inbound(natTimeout+1, endpoint{5, 5}, ext) {
		t.Error("binding alive after its timeout")
	}
	if again := n.outbound(natTimeout+1, peerPort, stunServer).port; again == ext {
		t.Errorf("expired binding's port %d reused", ext)
	}
	// Refreshing keeps it.
	m := newNAT(NATFullCone, 9)
	p := m.outbound(0, peerPort, stunServer).port
	m.outbound(natTimeout/2, peerPort, stunServer)
	if !m.inbound(natTimeout+1, endpoint{5, 5}, p) {
		t.Error("a refreshed binding expired")
	}
}

func TestParseNATMix(t *testing.T) {
	m, err := ParseNATMix("open=0.5, symmetric=0.5")
	if err != nil || m[NATOpen] != 0.5 || m[NATSymmetric] != 0.5 {
		t.Fatalf("got %v, %v", m, err)
	}
	back, err := ParseNATMix(DefaultNATMix.String())
	if err != nil || back != DefaultNATMix {
		t.Errorf("round trip of %v: %v, %v", DefaultNATMix, back, err)
	}
	for _, bad := range []string{"open", "cgnat=1", "open=2", "open=0.5,open=0.5", "open=x", "open=0.3"} {
		if _, err := ParseNATMix(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if m.draw(0.99) != NATSymmetric || m.draw(0) != NATOpen {
		t.Error("draw does not follow the shares")
	}
	if !strings.Contains(NATType(9).String(), "9") {
		t.Error("unknown type name")
	}
}
