package nat_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/nat/core"
)

func newRelay(t *testing.T, idle time.Duration) *nat.Relay {
	t.Helper()
	r, err := nat.NewRelay(nat.RelayConfig{IP: netip.MustParseAddr("127.0.0.1"), Idle: idle}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func readFrom(t *testing.T, c *net.UDPConn, d time.Duration) (string, netip.AddrPort, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1500)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	return string(buf[:n]), from, err
}

// Two peers bind with a PunchSession towards the relay; then the relay
// forwards between exactly those two, and a third address can neither
// bind nor inject.
func TestRelayForwardsBetweenBoundPeers(t *testing.T) {
	r := newRelay(t, 10*time.Second)
	addr, err := r.Allocate(5)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := r.Allocate(5); again != addr {
		t.Fatalf("second Allocate: %v, want %v", again, addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Bind a and b with punch sessions (the answers go through their
	// ConnClient readers), then read raw.
	var socks []*net.UDPConn
	for range 2 {
		ps := newPunchSock(t)
		res, err := ps.start(core.PunchConfig{Token: 5}, addr).Run(ctx)
		if err != nil || res.Path != addr {
			t.Fatalf("bind: %+v %v", res, err)
		}
		ps.cc.Close()
		socks = append(socks, ps.conn)
	}
	a, b := socks[0], socks[1]
	if _, err := a.WriteToUDPAddrPort([]byte("\x00from a"), addr); err != nil {
		t.Fatal(err)
	}
	if got, from, err := readFrom(t, b, 5*time.Second); err != nil || got != "\x00from a" || from != addr {
		t.Fatalf("b got %q from %v, err %v", got, from, err)
	}
	if _, err := b.WriteToUDPAddrPort([]byte("\x00from b"), addr); err != nil {
		t.Fatal(err)
	}
	if got, _, err := readFrom(t, a, 5*time.Second); err != nil || got != "\x00from b" {
		t.Fatalf("a got %q, err %v", got, err)
	}
	// The relay counts a packet after its write returns, which may be
	// after the receiver read it.
	for deadline := time.Now().Add(2 * time.Second); r.Forwarded() < 14 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if r.Forwarded() != 14 {
		t.Fatalf("forwarded %d bytes, want 14", r.Forwarded())
	}

	// A third socket: its probe is not acked, its data reaches nobody.
	c := listen(t)
	c.WriteToUDPAddrPort(core.AppendPunch(nil, core.PunchProbe, 5), addr)
	c.WriteToUDPAddrPort([]byte("\x00intruder"), addr)
	if got, _, err := readFrom(t, c, 300*time.Millisecond); err == nil {
		t.Fatalf("third address got %q", got)
	}
	if got, _, err := readFrom(t, b, 300*time.Millisecond); err == nil {
		t.Fatalf("bound peer got the intruder's %q", got)
	}
}

// A session without traffic ends after Idle; Allocate after Close fails.
func TestRelayIdleAndClose(t *testing.T) {
	r := newRelay(t, 200*time.Millisecond)
	if _, err := r.Allocate(1); err != nil {
		t.Fatal(err)
	}
	if r.Sessions() != 1 {
		t.Fatalf("%d sessions", r.Sessions())
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Sessions() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r.Sessions() != 0 {
		t.Fatal("idle session not ended")
	}
	r.Close()
	if _, err := r.Allocate(2); !errors.Is(err, nat.ErrRelayClosed) {
		t.Fatalf("Allocate after Close: %v", err)
	}
}

// The first peer's packets sent before its partner bound (a QUIC
// client's first flight) are held and delivered when the partner binds,
// a few at most; nothing is held for an address that did not bind.
func TestRelayHoldsFirstFlight(t *testing.T) {
	r := newRelay(t, 10*time.Second)
	addr, err := r.Allocate(6)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pa := newPunchSock(t)
	if _, err := pa.start(core.PunchConfig{Token: 6}, addr).Run(ctx); err != nil {
		t.Fatal(err)
	}
	pa.cc.Close()
	for i := range 6 {
		pa.conn.WriteToUDPAddrPort([]byte{0, byte('0' + i)}, addr)
	}
	listen(t).WriteToUDPAddrPort([]byte("\x00stranger"), addr)
	time.Sleep(100 * time.Millisecond) // let the relay read them all
	// The partner binds with a bare probe and reads everything raw: the
	// ack, then the held packets.
	b := listen(t)
	b.WriteToUDPAddrPort(core.AppendPunch(nil, core.PunchProbe, 6), addr)
	if ack, _, err := readFrom(t, b, 5*time.Second); err != nil || ack != string(core.AppendPunch(nil, core.PunchAck, 6)) {
		t.Fatalf("bind ack %q, err %v", ack, err)
	}
	var got []string
	for {
		s, _, err := readFrom(t, b, 300*time.Millisecond)
		if err != nil {
			break
		}
		got = append(got, s)
	}
	want := []string{"\x000", "\x001", "\x002", "\x003"}
	if len(got) != len(want) {
		t.Fatalf("partner got %q, want the first %d packets %q", got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("partner got %q, want %q", got, want)
		}
	}
}
