package nat_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/nat/core"
)

// punchSock is a UDP socket whose non-STUN packets go to the current
// punch session.
type punchSock struct {
	conn *net.UDPConn
	cc   *nat.ConnClient
	sess atomic.Pointer[nat.PunchSession]
}

func newPunchSock(t *testing.T) *punchSock {
	t.Helper()
	ps := &punchSock{conn: listen(t)}
	ps.cc = nat.NewConnClient(ps.conn, func(b []byte, from netip.AddrPort) {
		if s := ps.sess.Load(); s != nil {
			s.Receive(b, from)
		}
	})
	t.Cleanup(func() { ps.cc.Close() })
	return ps
}

func (ps *punchSock) addr() netip.AddrPort { return ps.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (ps *punchSock) start(cfg core.PunchConfig, cands ...netip.AddrPort) *nat.PunchSession {
	s := nat.NewPunchSession(cfg, cands, func(b []byte, to netip.AddrPort) error {
		_, err := ps.conn.WriteToUDPAddrPort(b, to)
		return err
	})
	ps.sess.Store(s)
	return s
}

// Two sockets on loopback punch to each other, even with a dead
// candidate listed first, and each ends on the other's real address.
func TestPunchSessionLoopback(t *testing.T) {
	a, b := newPunchSock(t), newPunchSock(t)
	dead := listen(t).LocalAddr().(*net.UDPAddr).AddrPort()
	cfg := core.PunchConfig{Token: 77, Timeout: 5 * time.Second}
	sa := a.start(cfg, dead, b.addr())
	sb := b.start(cfg, a.addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var ra, rb nat.PunchResult
	var ea, eb error
	wg.Go(func() { ra, ea = sa.Run(ctx) })
	wg.Go(func() { rb, eb = sb.Run(ctx) })
	wg.Wait()
	if ea != nil || eb != nil || ra.Path != b.addr() || rb.Path != a.addr() {
		t.Fatalf("a: %+v %v; b: %+v %v", ra, ea, rb, eb)
	}
}

// A remote that never punches back: the attempt fails at its timeout.
func TestPunchSessionFailsAlone(t *testing.T) {
	a, b := newPunchSock(t), newPunchSock(t)
	s := a.start(core.PunchConfig{Token: 1, Timeout: 400 * time.Millisecond}, b.addr())
	start := time.Now()
	_, err := s.Run(context.Background())
	if !errors.Is(err, nat.ErrPunchFailed) {
		t.Fatalf("err %v, want ErrPunchFailed", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 5*time.Second {
		t.Fatalf("failed after %v", d)
	}
}
