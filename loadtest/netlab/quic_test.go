package netlab_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/loadtest/netlab"
	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/nat/core"
)

// quicPeer is a transport.Endpoint (QUIC and STUN on one socket) on a
// lab host, with the STUN client and the punch session fed from the
// endpoint's non-QUIC handler — the layout DESIGN.md fixes for a peer.
type quicPeer struct {
	ep    *transport.Endpoint
	stun  *nat.Client
	sess  atomic.Pointer[nat.PunchSession]
	local netip.AddrPort
	rep   nat.Report
}

func newQUICPeer(t *testing.T, h *netlab.Host) *quicPeer {
	t.Helper()
	id, err := transport.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	p := &quicPeer{}
	err = h.Do(func() error {
		var err error
		p.ep, err = transport.Listen(netip.AddrPortFrom(h.IPs[0], 0).String(), id, quietLog())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.ep.Close() })
	p.local = p.ep.Addr().AddrPort()
	p.stun = nat.Attach(p.ep, func(b []byte, from net.Addr) {
		ua, ok := from.(*net.UDPAddr)
		if s := p.sess.Load(); ok && s != nil {
			s.Receive(b, ua.AddrPort())
		}
	})
	return p
}

func (p *quicPeer) startPunch(token uint64, remote *quicPeer) *nat.PunchSession {
	m, _ := netip.ParseAddrPort(remote.rep.Mapped.String())
	s := nat.NewPunchSession(core.PunchConfig{Token: token, Timeout: 3 * time.Second}, []netip.AddrPort{remote.local, m},
		func(b []byte, to netip.AddrPort) error {
			_, err := p.ep.WriteTo(b, net.UDPAddrFromAddrPort(to))
			return err
		})
	p.sess.Store(s)
	return s
}

// QUIC runs over the punched path: peers behind real NATs (including a
// symmetric one facing a restricted cone) probe with STUN and punch on
// their endpoint's one socket, then one dials the other at the address
// the punch proved, the fingerprint is checked, and bytes cross a stream
// both ways.
func TestQUICOverPunchedPath(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: []netlab.NAT{netlab.Restricted, netlab.Symmetric, netlab.PortRestricted, netlab.PortRestricted}})
	s := stunServer(t, lab)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, on a failure too
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, pair := range [][2]int{{0, 1}, {2, 3}} {
		a, b := newQUICPeer(t, lab.Sites[pair[0]].Hosts[0]), newQUICPeer(t, lab.Sites[pair[1]].Hosts[0])
		name := string(lab.Sites[pair[0]].NAT) + "↔" + string(lab.Sites[pair[1]].NAT)
		for _, p := range []*quicPeer{a, b} {
			wg.Go(func() {
				var err error
				if p.rep, err = p.stun.Probe(ctx, s.Addr(), nat.ProbeConfig{Local: p.local}); err != nil {
					t.Errorf("%s: probe: %v", name, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		sa, sb := a.startPunch(uint64(pair[0]+1), b), b.startPunch(uint64(pair[0]+1), a)
		var ra nat.PunchResult
		var ea, eb error
		wg.Go(func() { ra, ea = sa.Run(ctx) })
		wg.Go(func() { _, eb = sb.Run(ctx) })
		wg.Wait()
		if ea != nil || eb != nil {
			t.Fatalf("%s: punch: %v / %v", name, ea, eb)
		}

		accepted := make(chan *transport.Conn, 1)
		wg.Go(func() {
			c, err := b.ep.Accept(ctx)
			if err != nil {
				t.Errorf("%s: accept: %v", name, err)
				close(accepted)
				return
			}
			accepted <- c
			st, err := c.AcceptStream(ctx)
			if err != nil {
				t.Errorf("%s: accept stream: %v", name, err)
				return
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(st, buf); err != nil {
				t.Errorf("%s: read: %v", name, err)
				return
			}
			st.Write(append([]byte("echo "), buf...))
			st.Close()
		})
		conn, err := a.ep.Dial(ctx, ra.Path.String(), b.ep.ID())
		if err != nil {
			t.Fatalf("%s: QUIC dial over the punched path %v: %v", name, ra.Path, err)
		}
		st, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.Write([]byte("hello"))
		got, err := io.ReadAll(st)
		if err != nil || string(got) != "echo hello" {
			t.Fatalf("%s: got %q, err %v", name, got, err)
		}
		bc := <-accepted
		wg.Wait()
		if bc == nil || bc.Remote() != a.ep.ID() {
			t.Fatalf("%s: accepted a connection from %v, want %v", name, bc, a.ep.ID())
		}
		t.Logf("%s: QUIC over %v (punched in %v)", name, ra.Path, ra.Elapsed.Round(time.Millisecond))
		conn.CloseWithError(0, "")
		bc.CloseWithError(0, "")
	}
}

// A pair that cannot punch (symmetric ↔ symmetric) talks QUIC through
// the relay on the public host: both bind to the session port with punch
// probes, one dials the relay address expecting the other's fingerprint.
func TestQUICOverRelayForSymmetricPair(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: []netlab.NAT{netlab.Symmetric, netlab.Symmetric}})
	s := stunServer(t, lab)
	relay, err := nat.NewRelay(nat.RelayConfig{IP: lab.Public.IPs[0], Listen: lab.Public.ListenUDP}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a, b := newQUICPeer(t, lab.Sites[0].Hosts[0]), newQUICPeer(t, lab.Sites[1].Hosts[0])
	for _, p := range []*quicPeer{a, b} {
		wg.Go(func() {
			var err error
			if p.rep, err = p.stun.Probe(ctx, s.Addr(), nat.ProbeConfig{Local: p.local}); err != nil {
				t.Errorf("probe: %v", err)
			}
		})
	}
	wg.Wait()
	if core.CanPunch(a.rep.Result, b.rep.Result) {
		t.Fatalf("symmetric pair predicted punchable: %+v / %+v", a.rep.Result, b.rep.Result)
	}
	const token = 99
	raddr, err := relay.Allocate(token)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*quicPeer{a, b} {
		sess := nat.NewPunchSession(core.PunchConfig{Token: token}, []netip.AddrPort{raddr}, func(pkt []byte, to netip.AddrPort) error {
			_, err := p.ep.WriteTo(pkt, net.UDPAddrFromAddrPort(to))
			return err
		})
		p.sess.Store(sess)
		if res, err := sess.Run(ctx); err != nil || res.Path != raddr {
			t.Fatalf("bind to relay %v: %+v %v", raddr, res, err)
		}
	}
	accepted := make(chan error, 1)
	wg.Go(func() {
		c, err := b.ep.Accept(ctx)
		if err == nil {
			if c.Remote() != a.ep.ID() {
				err = errors.New("accepted " + string(c.Remote()))
			}
			st, serr := c.AcceptStream(ctx)
			if serr == nil {
				io.Copy(st, st)
				st.Close()
			}
		}
		accepted <- err
	})
	conn, err := a.ep.Dial(ctx, raddr.String(), b.ep.ID())
	if err != nil {
		t.Fatalf("QUIC dial through the relay: %v", err)
	}
	defer conn.CloseWithError(0, "")
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("relayed"))
	st.Close()
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "relayed" {
		t.Fatalf("echo %q, err %v", got, err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if relay.Forwarded() == 0 {
		t.Fatal("relay counted no bytes")
	}
	t.Logf("QUIC through relay %v: %d bytes forwarded", raddr, relay.Forwarded())
}
