package nat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v4"

	"github.com/swarmtv/swarmtv/nat/core"
)

// Errors.
var (
	// ErrNoAnswer: the STUN server did not answer in time. Either it is
	// down, UDP to it is blocked, or (for the RFC 5780 filtering tests)
	// the NAT dropped the answer, which is an answer in itself.
	ErrNoAnswer = errors.New("nat: no answer from the STUN server")
	// ErrRejected: the server answered with a STUN error response, e.g.
	// 420 to a CHANGE-REQUEST it cannot honour (it has one address).
	ErrRejected = errors.New("nat: STUN server rejected the request")
)

// CHANGE-REQUEST flags (RFC 5780 section 7.2).
const (
	ChangeIP   uint32 = 0x04
	ChangePort uint32 = 0x02
)

// Binding is a STUN server's answer to one binding request.
type Binding struct {
	Mapped netip.AddrPort // XOR-MAPPED-ADDRESS
	Other  netip.AddrPort // OTHER-ADDRESS; invalid if absent
	Origin netip.AddrPort // RESPONSE-ORIGIN; invalid if absent
	From   netip.AddrPort // where the answer came from
	RTT    time.Duration  // from the last (re)transmission to the answer
}

type answer struct {
	msg  *stun.Message
	from netip.AddrPort
	at   time.Time
}

// Client sends STUN binding requests through Send and matches the
// answers fed to Receive.
type Client struct {
	send func(b []byte, to netip.AddrPort) error

	// RTO is the first retransmission timeout; it doubles up to 4×RTO.
	// Default 100 ms (a LAN/lab value; RFC 5389's 500 ms suits the
	// internet better). Set before use.
	RTO time.Duration

	mu      sync.Mutex
	pending map[[stun.TransactionIDSize]byte]chan answer // guarded by mu
}

// NewClient returns a client that writes with send. send must be safe
// for concurrent use.
func NewClient(send func(b []byte, to netip.AddrPort) error) *Client {
	return &Client{send: send, RTO: 100 * time.Millisecond, pending: map[[stun.TransactionIDSize]byte]chan answer{}}
}

// Receive offers a packet that arrived on the socket. It returns true if
// it was the answer to one of the client's outstanding requests (the
// caller need not look at it further). It does not keep b.
func (c *Client) Receive(b []byte, from netip.AddrPort) bool {
	if !stun.IsMessage(b) {
		return false
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		return false
	}
	c.mu.Lock()
	ch, ok := c.pending[m.TransactionID]
	c.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case ch <- answer{msg: m, from: unmap(from), at: time.Now()}:
	default: // an answer to a retransmission; the first one won
	}
	return true
}

// Bind sends a binding request to server, with a CHANGE-REQUEST
// attribute if change is not 0, retransmitting until an answer arrives,
// wait has passed or ctx ends. It returns ErrNoAnswer on timeout.
func (c *Client) Bind(ctx context.Context, server netip.AddrPort, change uint32, wait time.Duration) (Binding, error) {
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest}
	if change != 0 {
		var v [4]byte
		binary.BigEndian.PutUint32(v[:], change)
		setters = append(setters, rawAttr{stun.AttrChangeRequest, v[:]})
	}
	setters = append(setters, stun.Fingerprint)
	req, err := stun.Build(setters...)
	if err != nil {
		return Binding{}, fmt.Errorf("nat: build binding request: %w", err)
	}
	ch := make(chan answer, 1)
	c.mu.Lock()
	c.pending[req.TransactionID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, req.TransactionID)
		c.mu.Unlock()
	}()

	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	rto := c.RTO
	if rto <= 0 {
		rto = 100 * time.Millisecond
	}
	retry := time.NewTimer(0)
	defer retry.Stop()
	var sent time.Time
	for {
		select {
		case <-ctx.Done():
			return Binding{}, ctx.Err()
		case <-deadline.C:
			return Binding{}, fmt.Errorf("%w: %v after %v", ErrNoAnswer, server, wait)
		case <-retry.C:
			sent = time.Now()
			if err := c.send(req.Raw, server); err != nil {
				return Binding{}, fmt.Errorf("nat: send binding request to %v: %w", server, err)
			}
			retry.Reset(rto)
			rto = min(2*rto, 4*c.RTO)
		case a := <-ch:
			return parseAnswer(a, sent)
		}
	}
}

func parseAnswer(a answer, sent time.Time) (Binding, error) {
	b := Binding{From: a.from, RTT: a.at.Sub(sent)}
	if a.msg.Type.Class == stun.ClassErrorResponse {
		var code stun.ErrorCodeAttribute
		_ = code.GetFrom(a.msg)
		return b, fmt.Errorf("%w: %d %s", ErrRejected, code.Code, code.Reason)
	}
	if a.msg.Type != stun.BindingSuccess {
		return b, fmt.Errorf("nat: unexpected STUN answer %v", a.msg.Type)
	}
	var x stun.XORMappedAddress
	if err := x.GetFrom(a.msg); err != nil {
		return b, fmt.Errorf("nat: answer without XOR-MAPPED-ADDRESS: %w", err)
	}
	b.Mapped = toAddrPort(x.IP, x.Port)
	var o stun.OtherAddress
	if o.GetFrom(a.msg) == nil {
		b.Other = toAddrPort(o.IP, o.Port)
	}
	var r stun.ResponseOrigin
	if r.GetFrom(a.msg) == nil {
		b.Origin = toAddrPort(r.IP, r.Port)
	}
	return b, nil
}

type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (r rawAttr) AddTo(m *stun.Message) error { m.Add(r.t, r.v); return nil }

func toAddrPort(ip net.IP, port int) netip.AddrPort {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port))
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// CoreAddr converts an address for nat/core.
func CoreAddr(a netip.AddrPort) core.Addr {
	if !a.IsValid() {
		return core.Addr{}
	}
	return core.Addr{IP: a.Addr().Unmap().String(), Port: a.Port()}
}
