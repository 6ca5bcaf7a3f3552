package nat

import (
	"context"
	"net/netip"
	"time"

	"github.com/swarmtv/swarmtv/nat/core"
)

// MappingChange is reported when the NAT hands the socket a new public
// address (it rebooted, its WAN link bounced, or the mapping expired).
type MappingChange struct {
	Prev, Now netip.AddrPort
}

// Watch asks the STUN server for the socket's mapped address every
// interval (which also keeps the mapping alive) and calls onChange when
// it differs from the previous answer. Unanswered requests are skipped.
// It returns when ctx ends. onChange runs on Watch's goroutine.
func (c *Client) Watch(ctx context.Context, server netip.AddrPort, every time.Duration, onChange func(MappingChange)) error {
	var w core.MappingWatch
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		b, err := c.Bind(ctx, server, 0, every)
		if err == nil {
			if changed, prev := w.Observe(CoreAddr(b.Mapped)); changed {
				p, _ := netip.ParseAddrPort(prev.String())
				onChange(MappingChange{Prev: p, Now: b.Mapped})
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
