package proxy

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// udpPair is an RTP/RTCP socket pair (an even port and the next one),
// bound before gortsplib starts so that several servers on one host never
// race for the same ports. gortsplib takes the sockets through its
// ListenPacket hook and closes them.
type udpPair struct {
	rtpAddr, rtcpAddr string

	mu        sync.Mutex
	rtp, rtcp net.PacketConn // nil once taken
}

// listenUDPPair binds a pair on host: the first even port above rtspPort
// if free, else any free pair.
func listenUDPPair(host string, rtspPort int) (*udpPair, error) {
	if rtspPort > 0 {
		p := rtspPort + 1
		if p%2 != 0 {
			p++
		}
		if p+1 <= 65535 {
			if pair, err := bindPair(host, p); err == nil {
				return pair, nil
			}
		}
	}
	var lastErr error
	for range 64 {
		c, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if p%2 != 0 {
			p--
		}
		if p < 1024 || p+1 > 65535 {
			continue
		}
		pair, err := bindPair(host, p)
		if err == nil {
			return pair, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free even/odd UDP port pair on %q: %w", host, lastErr)
}

func bindPair(host string, p int) (*udpPair, error) {
	a, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p)))
	if err != nil {
		return nil, err
	}
	b, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p+1)))
	if err != nil {
		a.Close()
		return nil, err
	}
	return &udpPair{rtpAddr: a.LocalAddr().String(), rtcpAddr: b.LocalAddr().String(), rtp: a, rtcp: b}, nil
}

// listenPacket hands gortsplib the pre-bound sockets.
func (u *udpPair) listenPacket(network, address string) (net.PacketConn, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var c *net.PacketConn
	switch address {
	case u.rtpAddr:
		c = &u.rtp
	case u.rtcpAddr:
		c = &u.rtcp
	default:
		return net.ListenPacket(network, address)
	}
	if *c == nil {
		return nil, errors.New("proxy: UDP socket already taken")
	}
	out := *c
	*c = nil
	return out, nil
}

// closeUntaken closes the sockets gortsplib did not take.
func (u *udpPair) closeUntaken() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range []*net.PacketConn{&u.rtp, &u.rtcp} {
		if *c != nil {
			(*c).Close()
			*c = nil
		}
	}
}
