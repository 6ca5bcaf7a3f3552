package netlab_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/loadtest/netlab"
	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/nat/core"
	"github.com/swarmtv/swarmtv/tracker"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newLab builds a lab and registers its teardown, checking afterwards
// that no namespace of it is left.
func newLab(t *testing.T, cfg netlab.Config) *netlab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lab, err := netlab.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	names := lab.Namespaces()
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
		for _, n := range names {
			if _, err := os.Stat("/run/netns/" + n); err == nil {
				t.Errorf("namespace %s left behind", n)
			}
		}
	})
	return lab
}

// stunServer starts the tracker's STUN service on the lab's public host,
// on both its addresses.
func stunServer(t *testing.T, lab *netlab.Lab) *tracker.STUNServer {
	t.Helper()
	var s *tracker.STUNServer
	err := lab.Public.Do(func() error {
		var err error
		s, err = tracker.ListenSTUN(tracker.STUNConfig{
			Primary: netip.AddrPortFrom(lab.Public.IPs[0], 3478),
			AltIP:   lab.Public.IPs[1],
			AltPort: 3479,
		}, quietLog())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client opens a UDP socket on host h and runs a STUN client over it.
func client(t *testing.T, h *netlab.Host) (*nat.ConnClient, netip.AddrPort) {
	t.Helper()
	conn, err := h.ListenUDP(netip.AddrPortFrom(h.IPs[0], 0))
	if err != nil {
		t.Fatal(err)
	}
	cc := nat.NewConnClient(conn, nil)
	t.Cleanup(func() { cc.Close(); conn.Close() })
	return cc, conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

var want = map[netlab.NAT]struct {
	typ                core.Type
	mapping, filtering core.Behaviour
}{
	netlab.FullCone:       {core.TypeFullCone, core.EndpointIndependent, core.EndpointIndependent},
	netlab.Restricted:     {core.TypeRestricted, core.EndpointIndependent, core.AddressDependent},
	netlab.PortRestricted: {core.TypePortRestricted, core.EndpointIndependent, core.AddressAndPortDependent},
	netlab.Symmetric:      {core.TypeSymmetric, core.AddressAndPortDependent, core.AddressAndPortDependent},
}

// The acceptance point: the RFC 5780 prober, run from a host
// behind each lab NAT against the tracker's STUN server on the public
// side, names every NAT correctly; the public host itself is open.
func TestClassifierNamesEveryLabNAT(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: netlab.AllNATs})
	s := stunServer(t, lab)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	for _, site := range lab.Sites {
		cc, local := client(t, site.Hosts[0])
		wg.Go(func() {
			rep, err := cc.Probe(ctx, s.Addr(), nat.ProbeConfig{Local: local})
			if err != nil {
				t.Errorf("%s: %v", site.NAT, err)
				return
			}
			w := want[site.NAT]
			if rep.Type != w.typ || rep.Mapping != w.mapping || rep.Filtering != w.filtering || !rep.NAT {
				t.Errorf("%s NAT classified as %v (mapping %v, filtering %v); want %v (%v, %v)\n%v",
					site.NAT, rep.Type, rep.Mapping, rep.Filtering, w.typ, w.mapping, w.filtering, rep)
			}
			if rep.Mapped.IP != site.Router.IPs[0].String() {
				t.Errorf("%s: mapped address %v, want the router's WAN address %v", site.NAT, rep.Mapped, site.Router.IPs[0])
			}
			// Masquerade keeps the port when it can; fully-random never
			// does on purpose (it may by chance, so only the cones are
			// checked).
			if site.NAT != netlab.Symmetric && !rep.PortPreserved {
				t.Errorf("%s: port not preserved: local %v mapped %v", site.NAT, local, rep.Mapped)
			}
			t.Logf("%s:\n%v", site.NAT, rep)
		})
	}
	cc, local := client(t, lab.Public)
	wg.Go(func() {
		rep, err := cc.Probe(ctx, s.Addr(), nat.ProbeConfig{Local: local})
		if err != nil || rep.Type != core.TypeOpen || rep.NAT {
			t.Errorf("public host: %v, %+v", err, rep.Result)
		}
	})
	wg.Wait()
}

// Unsolicited UDP to a NAT's public address reaches nobody: the routers
// drop it like home routers, and nothing leaks into the LAN.
func TestRoutersDropUnsolicitedUDP(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: []netlab.NAT{netlab.PortRestricted}})
	site := lab.Sites[0]
	in, err := site.Hosts[0].ListenUDP(netip.AddrPortFrom(site.Hosts[0].IPs[0], 0))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	port := in.LocalAddr().(*net.UDPAddr).Port
	out, err := lab.Public.ListenUDP(netip.AddrPortFrom(lab.Public.IPs[0], 0))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	to := &net.UDPAddr{IP: site.Router.IPs[0].AsSlice(), Port: port}
	for range 3 {
		if _, err := out.WriteToUDP([]byte("\x00unsolicited"), to); err != nil {
			t.Fatal(err)
		}
	}
	in.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, from, err := in.ReadFromUDP(make([]byte, 100)); err == nil {
		t.Fatalf("host behind the NAT got %d unsolicited bytes from %v", n, from)
	}
	// After the host sends out, the answer comes back through.
	if _, err := in.WriteToUDP([]byte("\x00hello"), out.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	out.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := out.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "\x00hello" || !from.IP.Equal(site.Router.IPs[0].AsSlice()) {
		t.Fatalf("outbound: %q from %v, err %v; want it from the WAN address %v", buf[:n], from, err, site.Router.IPs[0])
	}
	if _, err := out.WriteToUDP([]byte("\x00reply"), from); err != nil {
		t.Fatal(err)
	}
	in.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := in.ReadFromUDP(buf); err != nil || string(buf[:n]) != "\x00reply" {
		t.Fatalf("reply: %q, err %v", buf[:n], err)
	}
}

// The lab never touches the root namespace: no link of it appears there.
func TestLabLeavesRootNamespaceAlone(t *testing.T) {
	before, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	lab := newLab(t, netlab.Config{NATs: []netlab.NAT{netlab.FullCone, netlab.Symmetric}, HostsPerNAT: 2})
	after, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("root namespace links changed: %d before, %d after", len(before), len(after))
	}
	if got := len(lab.Namespaces()); got != 2+2+4 {
		t.Fatalf("%d namespaces, want 8", got)
	}
	for _, n := range lab.Namespaces() {
		if !strings.HasPrefix(n, lab.Prefix+"-") {
			t.Fatalf("namespace %s outside the lab's prefix %s", n, lab.Prefix)
		}
	}
	// Two hosts behind one NAT reach each other over the LAN.
	a, b := lab.Sites[0].Hosts[0], lab.Sites[0].Hosts[1]
	if err := a.Command(context.Background(), "ip", "route", "get", b.IPs[0].String()).Run(); err != nil {
		t.Fatalf("no LAN route between %v and %v: %v", a.IPs[0], b.IPs[0], err)
	}
}

// A NAT whose WAN link bounces loses its mappings; a symmetric NAT comes
// back on new ports, and the peer's mapping watch notices from its next
// STUN answer.
func TestMappingChangeAfterWANBounce(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: []netlab.NAT{netlab.Symmetric}})
	s := stunServer(t, lab)
	cc, _ := client(t, lab.Sites[0].Hosts[0])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var w core.MappingWatch
	observe := func() (bool, core.Addr) {
		b, err := cc.Bind(ctx, s.Addr(), 0, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return w.Observe(nat.CoreAddr(b.Mapped))
	}
	observe()
	if changed, _ := observe(); changed {
		t.Fatal("mapping changed without a bounce")
	}
	before := w.Current()
	if err := lab.BounceWAN(ctx, lab.Sites[0]); err != nil {
		t.Fatal(err)
	}
	changed, prev := observe()
	if !changed || prev != before || w.Current() == before {
		t.Fatalf("after the bounce: changed=%v prev=%v now=%v (before %v)", changed, prev, w.Current(), before)
	}

	// The same through Client.Watch, as a peer runs it.
	changes := make(chan nat.MappingChange, 4)
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- cc.Watch(wctx, s.Addr(), 50*time.Millisecond, func(c nat.MappingChange) { changes <- c })
	}()
	defer func() { wcancel(); <-done }()
	time.Sleep(200 * time.Millisecond) // a few unchanged answers first
	select {
	case c := <-changes:
		t.Fatalf("change %+v reported without a bounce", c)
	default:
	}
	if err := lab.BounceWAN(ctx, lab.Sites[0]); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changes:
		if c.Prev == c.Now || nat.CoreAddr(c.Prev) != w.Current() {
			t.Fatalf("change %+v; the mapping before was %v", c, w.Current())
		}
	case <-ctx.Done():
		t.Fatal("Watch did not notice the bounce")
	}
}

// Close is idempotent, and a lab that is closed is gone.
func TestCloseTwice(t *testing.T) {
	lab, err := netlab.New(context.Background(), netlab.Config{NATs: []netlab.NAT{netlab.FullCone}})
	if err != nil {
		t.Fatal(err)
	}
	names := lab.Namespaces()
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, n := range names {
		if _, err := os.Stat("/run/netns/" + n); err == nil {
			t.Errorf("namespace %s left behind", n)
		}
	}
	if len(lab.Namespaces()) != 0 {
		t.Errorf("closed lab still lists %v", lab.Namespaces())
	}
}

// A symmetric NAT that allocates ports in sequence is still symmetric to
// RFC 5780, but its mapping tests show the step, so its next mappings
// can be predicted (RFC 5128 section 3.6); fully-random shows none.
func TestClassifierSeesSequentialPorts(t *testing.T) {
	lab := newLab(t, netlab.Config{NATs: []netlab.NAT{netlab.SymmetricSequential, netlab.Symmetric}})
	s := stunServer(t, lab)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, site := range lab.Sites {
		cc, local := client(t, site.Hosts[0])
		rep, err := cc.Probe(ctx, s.Addr(), nat.ProbeConfig{Local: local})
		if err != nil {
			t.Fatalf("%s: %v", site.NAT, err)
		}
		if rep.Type != core.TypeSymmetric {
			t.Errorf("%s classified as %v, want symmetric\n%v", site.NAT, rep.Type, rep)
		}
		wantStep := 0
		if site.NAT == netlab.SymmetricSequential {
			wantStep = 1
		}
		if rep.PortStep != wantStep {
			t.Errorf("%s: port step %d, want %d\n%v", site.NAT, rep.PortStep, wantStep, rep)
		}
	}
}
