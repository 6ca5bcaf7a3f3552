package tracker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/tracker"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startSTUN(t *testing.T, cfg tracker.STUNConfig) *tracker.STUNServer {
	t.Helper()
	s, err := tracker.ListenSTUN(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func stunClient(t *testing.T) (*nat.ConnClient, netip.AddrPort) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cc := nat.NewConnClient(conn, nil)
	t.Cleanup(func() { cc.Close(); conn.Close() })
	return cc, conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// RFC 5780 section 7.2 and 7.3: each CHANGE-REQUEST is answered from the
// socket it names, and every answer carries XOR-MAPPED-ADDRESS,
// RESPONSE-ORIGIN and OTHER-ADDRESS.
func TestSTUNServerChangeRequest(t *testing.T) {
	a1 := netip.MustParseAddr("127.0.0.1")
	a2 := netip.MustParseAddr("127.0.0.2")
	s := startSTUN(t, tracker.STUNConfig{Primary: netip.AddrPortFrom(a1, 0), AltIP: a2})
	p1, p2 := s.Addr().Port(), s.OtherAddr().Port()
	if s.OtherAddr().Addr() != a2 || p1 == p2 {
		t.Fatalf("primary %v other %v", s.Addr(), s.OtherAddr())
	}
	c, local := stunClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		change uint32
		from   netip.AddrPort
	}{
		{0, netip.AddrPortFrom(a1, p1)},
		{nat.ChangePort, netip.AddrPortFrom(a1, p2)},
		{nat.ChangeIP, netip.AddrPortFrom(a2, p1)},
		{nat.ChangeIP | nat.ChangePort, netip.AddrPortFrom(a2, p2)},
	} {
		b, err := c.Bind(ctx, s.Addr(), tc.change, 3*time.Second)
		if err != nil {
			t.Fatalf("change %#x: %v", tc.change, err)
		}
		if b.From != tc.from || b.Origin != tc.from {
			t.Errorf("change %#x: answered from %v (origin %v), want %v", tc.change, b.From, b.Origin, tc.from)
		}
		if b.Mapped != local {
			t.Errorf("change %#x: mapped %v, want %v", tc.change, b.Mapped, local)
		}
		if b.Other != s.OtherAddr() {
			t.Errorf("change %#x: other %v, want %v", tc.change, b.Other, s.OtherAddr())
		}
	}
	// Requests to the other three sockets are answered too.
	for _, to := range []netip.AddrPort{netip.AddrPortFrom(a1, p2), netip.AddrPortFrom(a2, p1), netip.AddrPortFrom(a2, p2)} {
		if b, err := c.Bind(ctx, to, 0, 3*time.Second); err != nil || b.From != to {
			t.Errorf("request to %v: answer from %v, err %v", to, b.From, err)
		}
	}
}

// RFC 5780 section 7.2: a server with one address rejects change-IP with
// 420 and still honours change-port.
func TestSTUNServerSingleAddress(t *testing.T) {
	s := startSTUN(t, tracker.STUNConfig{Primary: netip.MustParseAddrPort("127.0.0.1:0")})
	if s.OtherAddr().Addr() != s.Addr().Addr() || s.OtherAddr().Port() == s.Addr().Port() {
		t.Fatalf("primary %v other %v", s.Addr(), s.OtherAddr())
	}
	c, _ := stunClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Bind(ctx, s.Addr(), nat.ChangeIP, 3*time.Second); !errors.Is(err, nat.ErrRejected) {
		t.Fatalf("change-IP on a one-address server: err %v, want ErrRejected", err)
	}
	b, err := c.Bind(ctx, s.Addr(), nat.ChangePort, 3*time.Second)
	if err != nil || b.From != s.OtherAddr() {
		t.Fatalf("change-port: from %v err %v, want from %v", b.From, err, s.OtherAddr())
	}
}

// The server ignores what is not a binding request and keeps serving.
func TestSTUNServerIgnoresGarbage(t *testing.T) {
	s := startSTUN(t, tracker.STUNConfig{Primary: netip.MustParseAddrPort("127.0.0.1:0")})
	c, _ := stunClient(t)
	raw, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	junk := [][]byte{{}, {0}, make([]byte, 20), append([]byte{0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 12)...)}
	for _, j := range junk {
		raw.Write(j)
	}
	raw.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := raw.Read(make([]byte, 1500)); err == nil {
		t.Fatalf("server answered garbage with %d bytes", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Bind(ctx, s.Addr(), 0, 3*time.Second); err != nil {
		t.Fatalf("after garbage: %v", err)
	}
}

func TestSTUNConfigValidate(t *testing.T) {
	for _, cfg := range []tracker.STUNConfig{
		{Primary: netip.MustParseAddrPort("0.0.0.0:3478")},
		{},
		{Primary: netip.MustParseAddrPort("127.0.0.1:0"), AltIP: netip.MustParseAddr("127.0.0.1")},
		{Primary: netip.MustParseAddrPort("127.0.0.1:0"), AltIP: netip.MustParseAddr("::1")},
	} {
		if s, err := tracker.ListenSTUN(cfg, quietLog()); err == nil {
			s.Close()
			t.Errorf("config %+v accepted", cfg)
		}
	}
}
