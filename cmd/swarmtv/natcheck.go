package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/proxy"
	"github.com/swarmtv/swarmtv/tracker"
)

// peerNATFlags are the peer's NAT traversal flags.
type peerNATFlags struct {
	check *bool
	stun  *string
	watch *time.Duration
	off   *bool
	pin   *string
}

func addPeerNATFlags(fs *flag.FlagSet) peerNATFlags {
	return peerNATFlags{
		check: fs.Bool("nat-check", false, "probe this peer's NAT from its QUIC socket (mapped address, mapping and filtering behaviour, port preservation, NAT class, candidates), print it and exit"),
		stun:  fs.String("stun", "", "STUN server `host:port` (default: the one the tracker advertises)"),
		watch: fs.Duration("nat-watch", 5*time.Second, "how often to re-ask the mapped address (keeps the NAT mapping alive; a change is reported)"),
		off:   fs.Bool("no-nat", false, "no NAT traversal: dial peers at the addresses the tracker gives"),
		pin:   fs.String("parent", "", "pin every stripe's parent to the peer `ID@HOST:PORT`, whatever the tracker assigns (tests and diagnostics)"),
	}
}

func (f peerNATFlags) config() proxy.NATConfig {
	return proxy.NATConfig{Off: *f.off, STUN: *f.stun, Watch: *f.watch}
}

// pinned parses --parent.
func (f peerNATFlags) pinned() (tracker.NodeInfo, error) {
	if *f.pin == "" {
		return tracker.NodeInfo{}, nil
	}
	id, addr, ok := strings.Cut(*f.pin, "@")
	if _, _, err := net.SplitHostPort(addr); !ok || !tracker.ValidNodeID(id) || err != nil {
		return tracker.NodeInfo{}, fmt.Errorf("--parent %q: want ID@HOST:PORT with a node ID of 32 lowercase hex digits", *f.pin)
	}
	return tracker.NodeInfo{ID: id, Addr: addr}, nil
}

// runNATCheck probes the NAT from a socket bound like the peer's QUIC
// socket and prints what it learned.
func runNATCheck(ctx context.Context, f peerNATFlags, trackerURL, listen string, stdout io.Writer, log *slog.Logger) error {
	server := *f.stun
	if server == "" {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		in, err := (&tracker.Client{BaseURL: trackerURL}).NAT(ictx)
		cancel()
		if err != nil {
			return fmt.Errorf("asking the tracker at %s for its STUN service: %w (or give --stun HOST:PORT)", trackerURL, err)
		}
		if in.STUN == "" {
			return fmt.Errorf("the tracker at %s runs no STUN service; give --stun HOST:PORT", trackerURL)
		}
		server = in.STUN
	}
	ua, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return fmt.Errorf("--stun %q: %w", server, err)
	}
	id, err := transport.NewIdentity()
	if err != nil {
		return err
	}
	ep, err := transport.Listen(listen, id, log)
	if err != nil {
		return fmt.Errorf("--quic %s: %w", listen, err)
	}
	defer ep.Close()
	c := nat.Attach(ep, nil)
	sa := ua.AddrPort()
	rep, err := proxy.ProbeNAT(ctx, c, netip.AddrPortFrom(sa.Addr().Unmap(), sa.Port()), ep.Addr().AddrPort(), 1500*time.Millisecond)
	fmt.Fprint(stdout, rep.String())
	if errors.Is(err, nat.ErrNoAnswer) {
		return fmt.Errorf("no answer from the STUN server %s: UDP to it is blocked, or it is down", server)
	}
	return err
}
