package transport

import (
	"context"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// DialHook runs before every dial of an Endpoint: given the node and the
// address it was advertised at, it returns the address to dial instead
// (e.g. a path proven by hole punching, or a relay's address) and an
// optional func the endpoint calls with the dial's result. The NAT
// traversal of a peer installs one (proxy's rendezvous); the
// fingerprint check is unchanged, so a wrong path cannot impersonate a
// node. It may block (it is given the dial's context).
type DialHook func(ctx context.Context, addr string, id swarm.NodeID) (string, func(error))

// SetDialHook installs h (nil removes it).
func (e *Endpoint) SetDialHook(h DialHook) {
	if h == nil {
		e.dialHook.Store(nil)
		return
	}
	e.dialHook.Store(&h)
}

// Dial connects to the node at addr and checks that it presents the key
// whose fingerprint is expect; otherwise it fails with an error wrapping
// ErrFingerprint. A dial hook (SetDialHook) may pick another address.
func (e *Endpoint) Dial(ctx context.Context, addr string, expect swarm.NodeID) (*Conn, error) {
	var done func(error)
	if h := e.dialHook.Load(); h != nil && expect != "" {
		addr, done = (*h)(ctx, addr, expect)
	}
	c, err := e.dial(ctx, addr, expect)
	if done != nil {
		done(err)
	}
	return c, err
}
