package tracker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/stun/v4"
)

// STUN CHANGE-REQUEST flags (RFC 5780 section 7.2).
const (
	changeIP   = 0x04
	changePort = 0x02
)

// STUNConfig says where a STUNServer listens. The server answers binding
// requests on up to four sockets: {Primary IP, AltIP} × {Primary port,
// AltPort}. RFC 5780 behaviour discovery needs two addresses for the
// mapping tests and two ports for the filtering tests; with one address
// the server still answers change-port requests and reports its other
// port as OTHER-ADDRESS (the client then knows the server has one
// address).
type STUNConfig struct {
	// Primary is the main address, e.g. 203.0.113.2:3478. Its IP must be
	// a specific address (not 0.0.0.0): OTHER-ADDRESS and
	// RESPONSE-ORIGIN name it. Port 0 picks a free port.
	Primary netip.AddrPort
	// AltPort is the second port; 0 picks a free one.
	AltPort uint16
	// AltIP is the host's second address; invalid (zero) if it has
	// only one.
	AltIP netip.Addr
}

func (c STUNConfig) validate() error {
	if !c.Primary.Addr().IsValid() || c.Primary.Addr().IsUnspecified() {
		return fmt.Errorf("tracker: STUN primary address %v: give a specific IP address of this host (e.g. its public address), not a wildcard", c.Primary)
	}
	if c.AltIP.IsValid() && (c.AltIP == c.Primary.Addr() || c.AltIP.Is4() != c.Primary.Addr().Is4()) {
		return fmt.Errorf("tracker: STUN alternate IP %v must be another address of the same family as %v", c.AltIP, c.Primary.Addr())
	}
	return nil
}

// STUNServer answers STUN binding requests (RFC 5389) with
// XOR-MAPPED-ADDRESS, and supports RFC 5780 behaviour discovery:
// OTHER-ADDRESS, RESPONSE-ORIGIN and CHANGE-REQUEST. Close stops it and
// waits for its readers.
type STUNServer struct {
	log *slog.Logger
	// conns[i][j] listens on IP i (0 primary, 1 alternate) and port j
	// (0 primary, 1 alternate); conns[1] is nil without an alternate IP.
	// Set at start, read-only after.
	conns [2][2]*net.UDPConn
	addrs [2][2]netip.AddrPort
	wg    sync.WaitGroup

	closeOnce sync.Once
}

// ListenSTUN opens the server's sockets and starts answering.
func ListenSTUN(cfg STUNConfig, log *slog.Logger) (*STUNServer, error) {
	if log == nil {
		return nil, errors.New("tracker: ListenSTUN needs a logger")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &STUNServer{log: log.With("svc", "stun")}
	ips := []netip.Addr{cfg.Primary.Addr()}
	if cfg.AltIP.IsValid() {
		ips = append(ips, cfg.AltIP)
	}
	ports := [2]uint16{cfg.Primary.Port(), cfg.AltPort}
	// The first IP fixes the ports (when picked by the kernel); the
	// alternate IP reuses them.
	for i, ip := range ips {
		for j := range 2 {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, ports[j])))
			if err != nil {
				s.closeConns()
				return nil, fmt.Errorf("tracker: STUN listen on %v port %d: %w", ip, ports[j], err)
			}
			s.conns[i][j] = c
			s.addrs[i][j] = netip.AddrPortFrom(ip, uint16(c.LocalAddr().(*net.UDPAddr).Port))
			ports[j] = s.addrs[i][j].Port()
		}
	}
	for i := range 2 {
		for j := range 2 {
			if s.conns[i][j] != nil {
				s.wg.Go(func() { s.serve(i, j) })
			}
		}
	}
	s.log.Info("STUN server listening", "primary", s.addrs[0][0], "other", s.OtherAddr())
	return s, nil
}

// Addr returns the primary address (A1:P1) clients send to.
func (s *STUNServer) Addr() netip.AddrPort { return s.addrs[0][0] }

// OtherAddr returns the address the server reports as OTHER-ADDRESS:
// alternate IP and port (A2:P2), or primary IP and alternate port when
// the host has one address.
func (s *STUNServer) OtherAddr() netip.AddrPort {
	if s.conns[1][1] != nil {
		return s.addrs[1][1]
	}
	return s.addrs[0][1]
}

// Close stops the server and waits for its goroutines.
func (s *STUNServer) Close() error {
	s.closeOnce.Do(s.closeConns)
	s.wg.Wait()
	return nil
}

func (s *STUNServer) closeConns() {
	for i := range 2 {
		for j := range 2 {
			if s.conns[i][j] != nil {
				s.conns[i][j].Close()
			}
		}
	}
}

func (s *STUNServer) serve(i, j int) {
	conn := s.conns[i][j]
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("STUN read", "err", err)
			continue
		}
		reply, oi, oj, ok := s.answer(buf[:n], from, i, j)
		if !ok || len(reply) == 0 {
			continue
		}
		if _, err := s.conns[oi][oj].WriteToUDPAddrPort(reply, from); err != nil {
			s.log.Debug("STUN write", "to", from, "err", err)
		}
	}
}

// answer builds the reply to a packet that arrived on socket (i, j) from
// the given address, and says which socket sends it. ok is false for
// anything but a well-formed binding request.
func (s *STUNServer) answer(b []byte, from netip.AddrPort, i, j int) (reply []byte, oi, oj int, ok bool) {
	if !stun.IsMessage(b) {
		return nil, 0, 0, false
	}
	req := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := req.Decode(); err != nil || req.Type != stun.BindingRequest {
		return nil, 0, 0, false
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	oi, oj = i, j
	if v, err := req.Get(stun.AttrChangeRequest); err == nil {
		if len(v) != 4 {
			return s.errorReply(req, stun.CodeBadRequest), i, j, true
		}
		flags := binary.BigEndian.Uint32(v)
		if flags&changeIP != 0 {
			oi = 1 - i
		}
		if flags&changePort != 0 {
			oj = 1 - j
		}
		if s.conns[oi][oj] == nil {
			// RFC 5780 section 7.2: no alternate address to answer from.
			return s.errorReply(req, stun.CodeUnknownAttribute), i, j, true
		}
	}
	origin := s.addrs[oi][oj]
	other := s.OtherAddr()
	msg, err := stun.Build(
		stun.NewTransactionIDSetter(req.TransactionID),
		stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
		&stun.ResponseOrigin{IP: origin.Addr().AsSlice(), Port: int(origin.Port())},
		&stun.OtherAddress{IP: other.Addr().AsSlice(), Port: int(other.Port())},
		stun.NewSoftware("swarmtv"),
		stun.Fingerprint,
	)
	if err != nil {
		s.log.Debug("STUN build", "err", err)
		return nil, 0, 0, false
	}
	return msg.Raw, oi, oj, true
}

func (s *STUNServer) errorReply(req *stun.Message, code stun.ErrorCode) []byte {
	msg, err := stun.Build(
		stun.NewTransactionIDSetter(req.TransactionID),
		stun.NewType(stun.MethodBinding, stun.ClassErrorResponse),
		code,
		stun.Fingerprint,
	)
	if err != nil {
		return nil
	}
	return msg.Raw
}
