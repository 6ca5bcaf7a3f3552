package nat

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmtv/swarmtv/nat/core"
)

// ErrRelayClosed is returned by Allocate after Close.
var ErrRelayClosed = errors.New("nat: relay closed")

// RelayConfig configures a Relay.
type RelayConfig struct {
	// IP is the address relay sockets listen on (the host's public
	// address). Required.
	IP netip.Addr
	// Idle ends a session with no traffic for this long; default 30 s.
	Idle time.Duration
	// Listen opens a relay socket; default net.ListenUDP. (The network
	// lab passes one that opens it in a namespace.)
	Listen func(addr netip.AddrPort) (*net.UDPConn, error)
}

// Relay forwards UDP between two peers that cannot punch: a minimal
// TURN-like service for the tracker or origin host. The tracker
// allocates a session (one UDP port) for a pair, and gives both peers
// its address and token. Each peer binds by running a PunchSession
// towards the relay address with that token: the relay acks the probes
// and remembers the first two source addresses. From then on every other
// packet from one is sent on to the other, so QUIC dials the relay
// address as if it were the remote peer (the TLS fingerprint check is end
// to end). Packets from any third address are dropped; the first few
// from the first peer to bind wait for the second (its first QUIC
// flight need not be resent).
type Relay struct {
	cfg RelayConfig
	log *slog.Logger
	wg  sync.WaitGroup

	forwarded atomic.Uint64 // bytes forwarded, all sessions

	mu       sync.Mutex
	sessions map[uint64]*relaySession // guarded by mu
	closed   bool                     // guarded by mu
}

type relaySession struct {
	token uint64
	conn  *net.UDPConn

	mu    sync.Mutex
	peers [2]netip.AddrPort // guarded by mu; bound in order
	held  [][]byte          // guarded by mu: from the first peer before the second bound
}

// maxHeld bounds the packets a session holds for a partner that has not
// bound yet (a QUIC client's first flight).
const maxHeld = 4

// NewRelay returns a relay with no sessions.
func NewRelay(cfg RelayConfig, log *slog.Logger) (*Relay, error) {
	if !cfg.IP.IsValid() {
		return nil, errors.New("nat: relay needs the IP address to listen on")
	}
	if log == nil {
		return nil, errors.New("nat: relay needs a logger")
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 30 * time.Second
	}
	if cfg.Listen == nil {
		cfg.Listen = func(a netip.AddrPort) (*net.UDPConn, error) {
			return net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
		}
	}
	return &Relay{cfg: cfg, log: log.With("svc", "relay"), sessions: map[uint64]*relaySession{}}, nil
}

// Allocate opens a session for token and returns its address. A token
// already allocated returns the same address.
func (r *Relay) Allocate(token uint64) (netip.AddrPort, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return netip.AddrPort{}, ErrRelayClosed
	}
	if s, ok := r.sessions[token]; ok {
		return s.conn.LocalAddr().(*net.UDPAddr).AddrPort(), nil
	}
	conn, err := r.cfg.Listen(netip.AddrPortFrom(r.cfg.IP, 0))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("nat: relay socket: %w", err)
	}
	s := &relaySession{token: token, conn: conn}
	r.sessions[token] = s
	r.wg.Go(func() { r.serve(s) })
	return conn.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}

// Release ends a session.
func (r *Relay) Release(token uint64) {
	r.mu.Lock()
	s := r.sessions[token]
	delete(r.sessions, token)
	r.mu.Unlock()
	if s != nil {
		s.conn.Close()
	}
}

// Sessions returns the number of open sessions.
func (r *Relay) Sessions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Forwarded returns the bytes forwarded so far, all sessions together.
func (r *Relay) Forwarded() uint64 { return r.forwarded.Load() }

// Close ends every session and waits for their goroutines.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	ss := r.sessions
	r.sessions = map[uint64]*relaySession{}
	r.mu.Unlock()
	for _, s := range ss {
		s.conn.Close()
	}
	r.wg.Wait()
	return nil
}

func (r *Relay) serve(s *relaySession) {
	defer r.Release(s.token)
	buf := make([]byte, 65535)
	for {
		s.conn.SetReadDeadline(time.Now().Add(r.cfg.Idle))
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.log.Debug("relay session idle, closing", "token", s.token)
			}
			return
		}
		from = unmap(from)
		if kind, token, ok := core.ParsePunch(buf[:n]); ok && kind == core.PunchProbe {
			if token == s.token && s.bind(from) {
				s.conn.WriteToUDPAddrPort(core.AppendPunch(nil, core.PunchAck, token), from)
				// The other peer's first packets, sent before this one
				// bound, go out now instead of waiting for a resend.
				for _, p := range s.takeHeld(from) {
					if _, err := s.conn.WriteToUDPAddrPort(p, from); err == nil {
						r.forwarded.Add(uint64(len(p)))
					}
				}
			}
			continue
		}
		if to, ok := s.partner(from); ok {
			if _, err := s.conn.WriteToUDPAddrPort(buf[:n], to); err == nil {
				r.forwarded.Add(uint64(n))
			}
		} else {
			s.hold(from, buf[:n])
		}
	}
}

// bind records from as one of the session's two peers; false if two
// others are bound already.
func (s *relaySession) bind(from netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.peers {
		if s.peers[i] == from {
			return true
		}
		if !s.peers[i].IsValid() {
			s.peers[i] = from
			return true
		}
	}
	return false
}

// hold keeps a packet from the first bound peer while its partner has
// not bound; packets from anyone else are dropped.
func (s *relaySession) hold(from netip.AddrPort, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peers[0] == from && !s.peers[1].IsValid() && len(s.held) < maxHeld {
		s.held = append(s.held, append([]byte(nil), b...))
	}
}

// takeHeld returns the held packets if to is the second peer.
func (s *relaySession) takeHeld(to netip.AddrPort) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peers[1] != to {
		return nil
	}
	h := s.held
	s.held = nil
	return h
}

func (s *relaySession) partner(from netip.AddrPort) (netip.AddrPort, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.peers[0] == from && s.peers[1].IsValid():
		return s.peers[1], true
	case s.peers[1] == from && s.peers[0].IsValid():
		return s.peers[0], true
	}
	return netip.AddrPort{}, false
}
