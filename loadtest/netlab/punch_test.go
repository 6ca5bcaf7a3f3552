package netlab_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/loadtest/netlab"
	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/nat/core"
	"github.com/swarmtv/swarmtv/tracker"
)

// labPeer is one UDP socket on a lab host, as a peer would use it: STUN
// answers go to its client, punch packets to its current session.
type labPeer struct {
	name  string
	host  *netlab.Host
	conn  *net.UDPConn
	cc    *nat.ConnClient
	sess  atomic.Pointer[nat.PunchSession]
	local netip.AddrPort
	rep   nat.Report
}

func newLabPeer(t *testing.T, name string, h *netlab.Host) *labPeer {
	t.Helper()
	p := &labPeer{name: name, host: h}
	conn, err := h.ListenUDP(netip.AddrPortFrom(h.IPs[0], 0))
	if err != nil {
		t.Fatal(err)
	}
	p.conn, p.local = conn, conn.LocalAddr().(*net.UDPAddr).AddrPort()
	p.cc = nat.NewConnClient(conn, func(b []byte, from netip.AddrPort) {
		if s := p.sess.Load(); s != nil {
			s.Receive(b, from)
		}
	})
	t.Cleanup(func() { p.cc.Close(); conn.Close() })
	return p
}

// candidates are what the tracker would hand the other side: the LAN
// address and the STUN-mapped one.
func (p *labPeer) candidates() []netip.AddrPort {
	m, _ := netip.ParseAddrPort(p.rep.Mapped.String())
	return []netip.AddrPort{p.local, m}
}

func (p *labPeer) start(token uint64, remote *labPeer) *nat.PunchSession {
	s := nat.NewPunchSession(core.PunchConfig{Token: token, Timeout: 3 * time.Second}, remote.candidates(), func(b []byte, to netip.AddrPort) error {
		_, err := p.conn.WriteToUDPAddrPort(b, to)
		return err
	})
	p.sess.Store(s)
	return s
}

// punchPair has a and b punch simultaneously; it returns whether both
// ended Direct, and their results.
func punchPair(ctx context.Context, token uint64, a, b *labPeer) (ok bool, ra, rb nat.PunchResult, err error) {
	sa, sb := a.start(token, b), b.start(token, a)
	var wg sync.WaitGroup
	var ea, eb error
	wg.Go(func() { ra, ea = sa.Run(ctx) })
	wg.Go(func() { rb, eb = sb.Run(ctx) })
	wg.Wait()
	switch {
	case ea == nil && eb == nil:
		return true, ra, rb, nil
	case errors.Is(ea, nat.ErrPunchFailed) && errors.Is(eb, nat.ErrPunchFailed):
		return false, ra, rb, nil
	}
	return false, ra, rb, fmt.Errorf("a: %v, b: %v", ea, eb)
}

func probeAll(t *testing.T, ctx context.Context, s *tracker.STUNServer, peers []*labPeer) {
	t.Helper()
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(func() {
			var err error
			p.rep, err = p.cc.Probe(ctx, s.Addr(), nat.ProbeConfig{Local: p.local})
			if err != nil {
				t.Errorf("%s: probe: %v", p.name, err)
			}
		})
	}
	wg.Wait()
}

// Hole punching on plain UDP sockets across every pair of lab NAT types
// (two routers of each type, so same-type pairs cross the internet too),
// as LAB.md measured it: EIM with EIM punches whatever the filtering,
// full or restricted cone with symmetric punches, port-restricted with
// symmetric and symmetric with symmetric fail (relay needed). The
// classifier's CanPunch predicts every outcome from the probes alone.
func TestPunchMatrixAcrossLabNATs(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: append(append([]netlab.NAT{}, netlab.AllNATs...), netlab.AllNATs...)})
	s := stunServer(t, lab)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	n := len(netlab.AllNATs)
	type pair struct{ a, b *labPeer }
	var pairs []pair
	var peers []*labPeer
	for i := range n {
		for j := i; j < n; j++ {
			a := newLabPeer(t, string(lab.Sites[i].NAT)+"#1", lab.Sites[i].Hosts[0])
			b := newLabPeer(t, string(lab.Sites[n+j].NAT)+"#2", lab.Sites[n+j].Hosts[0])
			pairs = append(pairs, pair{a, b})
			peers = append(peers, a, b)
		}
	}
	probeAll(t, ctx, s, peers)
	if t.Failed() {
		return
	}
	relay := map[[2]core.Type]bool{
		{core.TypePortRestricted, core.TypeSymmetric}: true,
		{core.TypeSymmetric, core.TypeSymmetric}:      true,
	}
	var wg sync.WaitGroup
	for k, pr := range pairs {
		wg.Go(func() {
			ok, ra, rb, err := punchPair(ctx, uint64(1000+k), pr.a, pr.b)
			if err != nil {
				t.Errorf("%s ↔ %s: %v", pr.a.name, pr.b.name, err)
				return
			}
			want := !relay[[2]core.Type{pr.a.rep.Type, pr.b.rep.Type}]
			if ok != want {
				t.Errorf("%s ↔ %s: direct=%v, want %v", pr.a.name, pr.b.name, ok, want)
			}
			if pred := core.CanPunch(pr.a.rep.Result, pr.b.rep.Result); pred != ok {
				t.Errorf("%s ↔ %s: direct=%v but CanPunch predicted %v", pr.a.name, pr.b.name, ok, pred)
			}
			if ok {
				// Each side ends on the other's public (router WAN) address.
				if ra.Path.Addr().String() != pr.b.rep.Mapped.IP {
					t.Errorf("%s: path %v is not %s's public address %s", pr.a.name, ra.Path, pr.b.name, pr.b.rep.Mapped.IP)
				}
				if rb.Path.Addr().String() != pr.a.rep.Mapped.IP {
					t.Errorf("%s: path %v is not %s's public address %s", pr.b.name, rb.Path, pr.a.name, pr.a.rep.Mapped.IP)
				}
				t.Logf("%-16s ↔ %-16s direct in %v / %v", pr.a.name, pr.b.name, ra.Elapsed.Round(time.Millisecond), rb.Elapsed.Round(time.Millisecond))
			} else {
				t.Logf("%-16s ↔ %-16s relay needed", pr.a.name, pr.b.name)
			}
		})
	}
	wg.Wait()
}

// Two hosts behind the same NAT (no hairpinning) connect over their LAN
// addresses.
func TestPunchBehindSameNATUsesLAN(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: []netlab.NAT{netlab.PortRestricted}, HostsPerNAT: 2})
	s := stunServer(t, lab)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := newLabPeer(t, "a", lab.Sites[0].Hosts[0])
	b := newLabPeer(t, "b", lab.Sites[0].Hosts[1])
	probeAll(t, ctx, s, []*labPeer{a, b})
	if a.rep.Mapped.IP != b.rep.Mapped.IP {
		t.Fatalf("same NAT, different public IPs: %v %v", a.rep.Mapped, b.rep.Mapped)
	}
	ok, ra, rb, err := punchPair(ctx, 7, a, b)
	if err != nil || !ok {
		t.Fatalf("direct=%v err=%v", ok, err)
	}
	if ra.Path != b.local || rb.Path != a.local {
		t.Fatalf("paths %v / %v, want the LAN addresses %v / %v", ra.Path, rb.Path, b.local, a.local)
	}
}
