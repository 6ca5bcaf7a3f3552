package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"

	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/tracker"
)

// trackerNATFlags are the tracker's NAT traversal flags.
type trackerNATFlags struct {
	stun    *string
	altIP   *string
	altPort *int
	relay   *string
}

func addTrackerNATFlags(fs *flag.FlagSet) trackerNATFlags {
	return trackerNATFlags{
		stun: fs.String("stun", "auto", "STUN service `address` (a specific IP:port) for peers' NAT discovery; "+
			"auto: the --listen IP, port 3478 (any free port if taken); off: none"),
		altIP:   fs.String("stun-alt-ip", "", "the host's second `IP` for RFC 5780 mapping tests (optional; without it mapping and filtering are told apart less finely)"),
		altPort: fs.Int("stun-alt-port", 0, "the STUN service's second `port` (0: the primary port + 1, or any free port)"),
		relay:   fs.String("relay", "on", "relay UDP between peers that cannot punch through their NATs, on the STUN `IP` (on), another IP of this host, or off"),
	}
}

// natService is the tracker's STUN service, relay and rendezvous.
type natService struct {
	stun  *tracker.STUNServer // nil when off
	relay *nat.Relay          // nil when off
	rv    *tracker.Rendezvous
}

func (n *natService) Close() {
	if n.relay != nil {
		n.relay.Close()
	}
	if n.stun != nil {
		n.stun.Close()
	}
}

// startNAT starts what the flags ask for. listen is the tracker's HTTP
// address (for --stun auto).
func startNAT(t *tracker.Tracker, f trackerNATFlags, listen string, log *slog.Logger) (*natService, error) {
	n := &natService{}
	var primary netip.AddrPort
	switch *f.stun {
	case "off", "":
	case "auto":
		host, _, err := net.SplitHostPort(listen)
		ip, perr := netip.ParseAddr(host)
		if err != nil || perr != nil || ip.IsUnspecified() {
			log.Warn("no STUN service: --listen has no specific IP; give --stun PUBLIC_IP:3478 so peers can learn their NAT")
			break
		}
		primary = netip.AddrPortFrom(ip.Unmap(), 3478)
	default:
		ap, err := netip.ParseAddrPort(*f.stun)
		if err != nil {
			return nil, fmt.Errorf("--stun %q: want IP:port (a specific address of this host), auto or off", *f.stun)
		}
		primary = ap
	}
	if primary.IsValid() {
		cfg := tracker.STUNConfig{Primary: primary}
		if *f.altIP != "" {
			ip, err := netip.ParseAddr(*f.altIP)
			if err != nil {
				return nil, fmt.Errorf("--stun-alt-ip %q: want an IP address", *f.altIP)
			}
			cfg.AltIP = ip
		}
		if *f.altPort < 0 || *f.altPort > 65535 {
			return nil, fmt.Errorf("--stun-alt-port %d: want 0..65535", *f.altPort)
		}
		s, err := listenSTUN(cfg, *f.altPort, *f.stun == "auto", log)
		if err != nil {
			return nil, err
		}
		n.stun = s
	}
	switch *f.relay {
	case "off", "":
	default:
		var ip netip.Addr
		if *f.relay == "on" {
			if n.stun == nil {
				break
			}
			ip = n.stun.Addr().Addr()
		} else {
			var err error
			if ip, err = netip.ParseAddr(*f.relay); err != nil {
				n.Close()
				return nil, fmt.Errorf("--relay %q: want on, off or an IP address of this host", *f.relay)
			}
		}
		r, err := nat.NewRelay(nat.RelayConfig{IP: ip}, log)
		if err != nil {
			n.Close()
			return nil, err
		}
		n.relay = r
		log.Info("relay on", "ip", ip)
	}
	n.rv = tracker.NewRendezvous(t, tracker.RendezvousConfig{STUN: n.stun, Relay: n.relay, Logger: log})
	return n, nil
}

// listenSTUN starts the STUN service; with anyPort, ports in use are
// replaced by free ones (peers learn the address from GET /v1/nat).
func listenSTUN(cfg tracker.STUNConfig, altPort int, anyPort bool, log *slog.Logger) (*tracker.STUNServer, error) {
	tries := []tracker.STUNConfig{cfg}
	if altPort == 0 && cfg.Primary.Port() != 0 && cfg.Primary.Port() < 65535 {
		tries[0].AltPort = cfg.Primary.Port() + 1
	} else {
		tries[0].AltPort = uint16(altPort)
	}
	if anyPort {
		c := cfg
		c.Primary = netip.AddrPortFrom(cfg.Primary.Addr(), 0)
		c.AltPort = 0
		tries = append(tries, c)
	}
	var err error
	for _, c := range tries {
		var s *tracker.STUNServer
		if s, err = tracker.ListenSTUN(c, log); err == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("--stun: %w", err)
}

func wrapRendezvous(rv *tracker.Rendezvous, h http.Handler) http.Handler {
	if rv == nil {
		return h
	}
	return rv.Wrap(h)
}
