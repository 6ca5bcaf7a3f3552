package nat

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/swarmtv/swarmtv/nat/core"
)

// ErrPunchFailed: no two-way path was found before the punch timeout;
// the pair needs a relay.
var ErrPunchFailed = errors.New("nat: hole punching failed; a relay is needed")

// PunchSession drives one core.Puncher over a socket it does not own:
// it sends through send and is fed packets through Receive (from the
// same dispatcher that feeds a Client). Run drives the schedule; Receive
// keeps answering the remote's probes after Run returned, so the remote
// can finish too.
type PunchSession struct {
	send func(b []byte, to netip.AddrPort) error
	wake chan struct{} // capacity 1: something changed

	mu sync.Mutex
	p  *core.Puncher // guarded by mu
}

// PunchResult is a successful attempt.
type PunchResult struct {
	Path    netip.AddrPort // the remote address the path was proven to
	Elapsed time.Duration  // from start to the proving ack
}

// NewPunchSession starts an attempt towards the remote's candidates
// (LAN and mapped addresses); the first probes go out when Run starts.
func NewPunchSession(cfg core.PunchConfig, candidates []netip.AddrPort, send func(b []byte, to netip.AddrPort) error) *PunchSession {
	cs := make([]core.Addr, 0, len(candidates))
	for _, c := range candidates {
		cs = append(cs, CoreAddr(c))
	}
	return &PunchSession{send: send, wake: make(chan struct{}, 1), p: core.NewPuncher(cfg, cs, time.Now())}
}

// Receive offers a packet from the socket; it returns false if it is not
// a punch packet of this session.
func (s *PunchSession) Receive(b []byte, from netip.AddrPort) bool {
	s.mu.Lock()
	ok := s.p.Receive(time.Now(), CoreAddr(unmap(from)), b)
	out := s.p.Ready()
	s.mu.Unlock()
	if !ok {
		return false
	}
	s.flush(out)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

func (s *PunchSession) flush(out []core.Packet) {
	for _, pkt := range out {
		to, err := netip.ParseAddrPort(pkt.To.String())
		if err != nil {
			continue
		}
		_ = s.send(pkt.Data, to) // a lost probe is what the schedule is for
	}
}

// Run drives the attempt until it is Direct (nil error), Failed
// (ErrPunchFailed) or ctx ends.
func (s *PunchSession) Run(ctx context.Context) (PunchResult, error) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		s.mu.Lock()
		s.p.Tick(now)
		out := s.p.Ready()
		state, path, deadline := s.p.State(), s.p.Path(), s.p.Deadline()
		elapsed := s.p.Elapsed(now)
		s.mu.Unlock()
		s.flush(out)
		switch state {
		case core.Direct:
			ap, err := netip.ParseAddrPort(path.String())
			if err != nil {
				return PunchResult{}, fmt.Errorf("nat: punched path %v: %w", path, err)
			}
			return PunchResult{Path: ap, Elapsed: elapsed}, nil
		case core.Failed:
			return PunchResult{Elapsed: elapsed}, ErrPunchFailed
		}
		timer.Reset(time.Until(deadline))
		select {
		case <-ctx.Done():
			return PunchResult{}, ctx.Err()
		case <-timer.C:
		case <-s.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}
