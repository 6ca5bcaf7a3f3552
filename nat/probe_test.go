package nat_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/nat/core"
	"github.com/swarmtv/swarmtv/tracker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func twoAddressServer(t *testing.T) *tracker.STUNServer {
	t.Helper()
	s, err := tracker.ListenSTUN(tracker.STUNConfig{
		Primary: netip.MustParseAddrPort("127.0.0.1:0"),
		AltIP:   netip.MustParseAddr("127.0.0.2"),
	}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// A socket on loopback has no NAT and no filter: RFC 5780 names it open.
func TestProbeNoNATOverPlainUDP(t *testing.T) {
	s := twoAddressServer(t)
	conn := listen(t)
	var others int
	cc := nat.NewConnClient(conn, func([]byte, netip.AddrPort) { others++ })
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	rep, err := cc.Probe(ctx, s.Addr(), nat.ProbeConfig{Local: local})
	if err != nil {
		t.Fatal(err)
	}
	want := core.Result{Mapped: nat.CoreAddr(local), Mapping: core.EndpointIndependent, Filtering: core.EndpointIndependent, PortPreserved: true, Type: core.TypeOpen}
	if rep.Result != want {
		t.Fatalf("got %+v\nwant %+v\n%v", rep.Result, want, rep)
	}
	if rep.Obs.Other != nat.CoreAddr(s.OtherAddr()) {
		t.Fatalf("other %v, want %v", rep.Obs.Other, s.OtherAddr())
	}
}

// With a one-address server the probe says so and leaves what it cannot
// tell unknown rather than guessing.
func TestProbeSingleAddressServer(t *testing.T) {
	s, err := tracker.ListenSTUN(tracker.STUNConfig{Primary: netip.MustParseAddrPort("127.0.0.1:0")}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn := listen(t)
	cc := nat.NewConnClient(conn, nil)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep, err := cc.Probe(ctx, s.Addr(), nat.ProbeConfig{Local: conn.LocalAddr().(*net.UDPAddr).AddrPort()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.SingleAddress || rep.Mapping != core.EndpointIndependent || rep.Filtering != core.Unknown || rep.NAT {
		t.Fatalf("got %+v", rep.Result)
	}
}

// No server: the probe reports blocked and ErrNoAnswer within its wait.
func TestProbeNoServerIsBlocked(t *testing.T) {
	dead := listen(t) // a socket that never answers
	conn := listen(t)
	cc := nat.NewConnClient(conn, nil)
	defer cc.Close()
	start := time.Now()
	rep, err := cc.Probe(context.Background(), dead.LocalAddr().(*net.UDPAddr).AddrPort(),
		nat.ProbeConfig{Local: conn.LocalAddr().(*net.UDPAddr).AddrPort(), Wait: 300 * time.Millisecond})
	if !errors.Is(err, nat.ErrNoAnswer) || rep.Type != core.TypeBlocked {
		t.Fatalf("err %v type %v", err, rep.Type)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

// Answers that do not belong to an outstanding request are passed on,
// not swallowed.
func TestClientPassesOtherPackets(t *testing.T) {
	c := nat.NewClient(func([]byte, netip.AddrPort) error { return nil })
	if c.Receive([]byte("hello, not STUN"), netip.MustParseAddrPort("127.0.0.1:1")) {
		t.Fatal("non-STUN packet claimed")
	}
}

// The prober runs over a real transport.Endpoint's shared socket (the one
// that carries QUIC), through HandleNonQUIC and WriteTo, while QUIC
// connections work on the same socket.
func TestProbeOverTransportEndpoint(t *testing.T) {
	s := twoAddressServer(t)
	newEP := func() *transport.Endpoint {
		id, err := transport.NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		ep, err := transport.Listen("127.0.0.1:0", id, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Close() })
		return ep
	}
	a, b := newEP(), newEP()
	passed := make(chan struct{}, 1)
	c := nat.Attach(a, func([]byte, net.Addr) {
		select {
		case passed <- struct{}{}:
		default:
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep, err := c.Probe(ctx, s.Addr(), nat.ProbeConfig{Local: a.Addr().AddrPort()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Type != core.TypeOpen || rep.Mapped != nat.CoreAddr(a.Addr().AddrPort()) {
		t.Fatalf("got %+v", rep.Result)
	}
	// QUIC still works on the socket the probe used.
	accepted := make(chan error, 1)
	go func() {
		conn, err := a.Accept(ctx)
		if err == nil {
			defer conn.CloseWithError(0, "")
		}
		accepted <- err
	}()
	conn, err := b.Dial(ctx, a.Addr().String(), a.ID())
	if err != nil {
		t.Fatalf("QUIC dial after probe: %v", err)
	}
	defer conn.CloseWithError(0, "")
	if err := <-accepted; err != nil {
		t.Fatalf("accept: %v", err)
	}
	// A non-QUIC packet that is no STUN answer goes to the next handler.
	raw := listen(t)
	if _, err := raw.WriteToUDP([]byte("\x00\x00 not stun: quic-go hands packets without the QUIC fixed bit to ReadNonQUICPacket"), a.Addr()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-passed:
	case <-ctx.Done():
		t.Fatal("non-STUN packet not passed on")
	}
}
