package nat

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/swarmtv/swarmtv/nat/core"
)

// ProbeConfig tunes Probe.
type ProbeConfig struct {
	// Local is the socket's own address as the host sees it (a specific
	// IP, not a wildcard): test I compares it with the mapped address
	// to tell "no NAT". Required.
	Local netip.AddrPort
	// Wait bounds each test; a filtering test that gets no answer within
	// Wait counts as filtered. Default 1.5 s.
	Wait time.Duration
}

// Report is what Probe learned: the classifier's result and the raw
// observations it was computed from.
type Report struct {
	core.Result
	Obs    core.Observations
	Server netip.AddrPort
	RTT    time.Duration // of test I
}

// String formats the report in the manner of `tailscale netcheck`.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "STUN server:    %v (other %v)\n", r.Server, r.Obs.Other)
	fmt.Fprintf(&b, "local address:  %v\n", r.Obs.Local)
	fmt.Fprintf(&b, "mapped address: %v (rtt %v)\n", r.Mapped, r.RTT.Round(time.Millisecond))
	fmt.Fprintf(&b, "NAT:            %v (type %v)\n", r.NAT, r.Type)
	fmt.Fprintf(&b, "mapping:        %v\n", r.Mapping)
	fmt.Fprintf(&b, "filtering:      %v\n", r.Filtering)
	fmt.Fprintf(&b, "port preserved: %v\n", r.PortPreserved)
	if r.PortStep != 0 {
		fmt.Fprintf(&b, "port step:      %+d (ports predictable)\n", r.PortStep)
	}
	if r.SingleAddress {
		b.WriteString("note:           the server has one address; address-dependent mapping reads as endpoint-independent\n")
	}
	return b.String()
}

// Probe runs RFC 5780 behaviour discovery against the server at its
// primary address: test I, then the filtering tests (section 4.4) — before
// any packet is sent to the alternate address, whose answers would
// otherwise open the filters under test — then the mapping tests
// (section 4.3). It takes about Wait when filtering tests go
// unanswered. A server that does not answer test I gives a report of
// type blocked and ErrNoAnswer.
func (c *Client) Probe(ctx context.Context, server netip.AddrPort, cfg ProbeConfig) (Report, error) {
	if !cfg.Local.IsValid() || cfg.Local.Addr().IsUnspecified() {
		return Report{}, fmt.Errorf("nat: Probe needs the socket's specific local address, got %v", cfg.Local)
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 1500 * time.Millisecond
	}
	server = unmap(server)
	o := core.Observations{Local: CoreAddr(unmap(cfg.Local)), Primary: CoreAddr(server)}
	rep := Report{Server: server}

	b1, err := c.Bind(ctx, server, 0, cfg.Wait)
	if err != nil {
		rep.Obs = o
		rep.Result = core.Classify(o)
		return rep, err
	}
	rep.RTT = b1.RTT
	o.Mapped1 = CoreAddr(b1.Mapped)
	o.Other = CoreAddr(b1.Other)
	if !b1.Other.IsValid() {
		// Not an RFC 5780 server: only the mapped address is known.
		rep.Obs = o
		rep.Result = core.Classify(o)
		return rep, nil
	}
	single := b1.Other.Addr() == server.Addr()

	// Filtering tests II and III, together.
	var wg sync.WaitGroup
	var errII, errIII error
	wg.Go(func() {
		if single {
			errII = ErrRejected
			return
		}
		_, errII = c.Bind(ctx, server, ChangeIP|ChangePort, cfg.Wait)
	})
	wg.Go(func() { _, errIII = c.Bind(ctx, server, ChangePort, cfg.Wait) })
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	o.FilterTested = !errors.Is(errIII, ErrRejected)
	o.FilterChangeIPPort = errII == nil
	o.FilterChangePort = errIII == nil
	if single && o.FilterChangePort {
		// Change-IP cannot be tested: port-only answers leave endpoint-
		// independent and address-dependent filtering apart unknown.
		o.FilterTested = false
	}

	// Mapping tests II and III, one after the other: a NAT that
	// allocates in sequence then shows its step in order (PortStep).
	var b2, b3 Binding
	var err2, err3 error
	if single {
		b3, err3 = c.Bind(ctx, netip.AddrPortFrom(server.Addr(), b1.Other.Port()), 0, cfg.Wait)
	} else {
		b2, err2 = c.Bind(ctx, netip.AddrPortFrom(b1.Other.Addr(), server.Port()), 0, cfg.Wait)
		b3, err3 = c.Bind(ctx, b1.Other, 0, cfg.Wait)
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if err2 == nil {
		o.Mapped2 = CoreAddr(b2.Mapped)
	}
	if err3 == nil {
		o.Mapped3 = CoreAddr(b3.Mapped)
	}
	rep.Obs = o
	rep.Result = core.Classify(o)
	return rep, nil
}
