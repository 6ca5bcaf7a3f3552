package netlab_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/loadtest/netlab"
)

// A router with a delay holds every packet it forwards, both ways: UDP
// round trips from a host behind it to the public host take at least
// twice the delay (less the jitter), and none is lost; without the delay
// they are fast again. (The bound is a correctness check of the hold,
// not a speed target: without it the round trip is well under 1 ms.)
func TestDelayHoldsForwardedPackets(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: []netlab.NAT{netlab.PortRestricted}})
	site := lab.Sites[0]
	echo, err := lab.Public.ListenUDP(netip.AddrPortFrom(lab.Public.IPs[0], 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	c, err := site.Hosts[0].ListenUDP(netip.AddrPortFrom(site.Hosts[0].IPs[0], 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rtts := func(n int) (minRTT, maxRTT time.Duration) {
		t.Helper()
		buf := make([]byte, 64)
		for i := range n {
			start := time.Now()
			if _, err := c.WriteToUDPAddrPort([]byte{byte(i)}, echo.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				t.Fatalf("echo %d lost: %v", i, err)
			}
			rtt := time.Since(start)
			if i == 0 || rtt < minRTT {
				minRTT = rtt
			}
			maxRTT = max(maxRTT, rtt)
		}
		return minRTT, maxRTT
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const delay, jitter = 30 * time.Millisecond, 5 * time.Millisecond
	if err := lab.SetDelay(ctx, site, delay, jitter); err != nil {
		t.Fatal(err)
	}
	lo, hi := rtts(20)
	if lo < 2*(delay-jitter) {
		t.Fatalf("round trip %v through a router holding %v ± %v each way", lo, delay, jitter)
	}
	t.Logf("delay %v ± %v: round trips %v .. %v", delay, jitter, lo, hi)
	if err := lab.SetDelay(ctx, site, 0, 0); err != nil {
		t.Fatal(err)
	}
	lo, _ = rtts(5)
	if lo >= 2*(delay-jitter) {
		t.Fatalf("round trip %v after the delay was removed", lo)
	}
	if err := lab.SetDelay(ctx, site, time.Millisecond, 2*time.Millisecond); err == nil {
		t.Fatal("jitter above the delay accepted")
	}
	// A delay still on at the end is undone by Lab.Close (newLab's
	// cleanup checks that no namespace is left).
	if err := lab.SetDelay(ctx, site, 10*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
}
