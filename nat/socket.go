package nat

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// PacketEndpoint is what a transport.Endpoint offers for non-QUIC
// traffic on its shared socket.
type PacketEndpoint interface {
	HandleNonQUIC(func(b []byte, from net.Addr))
	WriteTo(b []byte, addr net.Addr) (int, error)
}

// Attach returns a Client that sends from ep's socket and receives the
// STUN answers ep hands to its non-QUIC handler. It installs the handler;
// packets that are not answers for the client are passed to next (may be
// nil).
func Attach(ep PacketEndpoint, next func(b []byte, from net.Addr)) *Client {
	c := NewClient(func(b []byte, to netip.AddrPort) error {
		_, err := ep.WriteTo(b, net.UDPAddrFromAddrPort(to))
		return err
	})
	ep.HandleNonQUIC(func(b []byte, from net.Addr) {
		ua, ok := from.(*net.UDPAddr)
		if ok && c.Receive(b, ua.AddrPort()) {
			return
		}
		if next != nil {
			next(b, from)
		}
	})
	return c
}

// ConnClient is a Client running over a plain UDP socket it reads itself
// (tests, the lab, tools). Close stops the reader; it does not close the
// socket.
type ConnClient struct {
	*Client
	conn *net.UDPConn
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// NewConnClient starts reading conn. Packets that are not STUN answers
// for the client go to other (may be nil).
func NewConnClient(conn *net.UDPConn, other func(b []byte, from netip.AddrPort)) *ConnClient {
	cc := &ConnClient{conn: conn, done: make(chan struct{})}
	cc.Client = NewClient(func(b []byte, to netip.AddrPort) error {
		_, err := conn.WriteToUDPAddrPort(b, to)
		return err
	})
	cc.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				select {
				case <-cc.done:
					return
				default:
				}
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if !cc.Receive(buf[:n], from) && other != nil {
				other(append([]byte(nil), buf[:n]...), unmap(from))
			}
		}
	})
	return cc
}

// Close stops the reader: it unblocks it with a read deadline in the
// past and waits for it.
func (cc *ConnClient) Close() error {
	cc.once.Do(func() {
		close(cc.done)
		cc.conn.SetReadDeadline(aLongTimeAgo)
	})
	cc.wg.Wait()
	return nil
}

var aLongTimeAgo = time.Unix(1, 0)
