package netlab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Delay and jitter: this kernel has no netem, so a router's forwarded
// packets are queued to user space with iptables' NFQUEUE target (the nft
// queue statement is not available; the xt target is) and released
// after the delay by a netlink socket this process holds in the router's
// namespace. Packets in both directions are held, so a round trip through
// one delayed router grows by about twice the delay. With jitter each
// packet's delay is drawn uniformly from [delay-jitter, delay+jitter], so
// packets may be reordered, as on a real path.

// netfilter netlink constants (linux/netfilter/nfnetlink.h,
// nfnetlink_queue.h).
const (
	nfnlSubsysQueue     = 3
	nfqnlMsgPacket      = 0
	nfqnlMsgVerdict     = 1
	nfqnlMsgConfig      = 2
	nfqaCfgCmd          = 1
	nfqaCfgParams       = 2
	nfqaPacketHdr       = 1
	nfqaVerdictHdr      = 2
	nfqnlCfgCmdBind     = 1
	nfqnlCopyMeta       = 1
	nfAccept            = 1
	nfnetlinkV0         = 0
	nlmsgHdrLen         = 16
	nfgenHdrLen         = 4
	delayQueueNum       = 7
	delayRecvTimeout    = 200 * time.Millisecond
	maxDelayWithJitter  = 10 * time.Second
	delayReceiveBufSize = 1 << 20
)

// delayer holds one router's queue.
type delayer struct {
	fd   int
	rnd  *rand.Rand
	d, j time.Duration
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	timers  map[*time.Timer]struct{} // guarded by mu: verdicts not yet sent
	stopped bool                     // guarded by mu
}

// SetDelay makes site's router hold every packet it forwards for delay
// ± jitter before passing it on. A zero delay removes the hold. The
// queue is served by this process until Lab.Close (or SetDelay 0).
func (l *Lab) SetDelay(ctx context.Context, s *Site, delay, jitter time.Duration) error {
	if delay < 0 || jitter < 0 || jitter > delay || delay+jitter > maxDelayWithJitter {
		return fmt.Errorf("netlab: delay %v ± %v: want 0 ≤ jitter ≤ delay, delay+jitter ≤ %v", delay, jitter, maxDelayWithJitter)
	}
	l.mu.Lock()
	old := l.delays[s]
	delete(l.delays, s)
	l.mu.Unlock()
	if old != nil {
		old.close()
	}
	// Drop the rule first: with --queue-bypass, packets pass while no
	// socket is bound, so nothing is lost between the two steps.
	_ = s.Router.run(ctx, "", "iptables", "-t", "mangle", "-D", "FORWARD", "-j", "NFQUEUE", "--queue-num", fmt.Sprint(delayQueueNum), "--queue-bypass")
	if delay == 0 {
		return nil
	}
	dl := &delayer{d: delay, j: jitter, stop: make(chan struct{}), timers: map[*time.Timer]struct{}{},
		rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(delay)))}
	if err := s.Router.Do(dl.open); err != nil {
		return err
	}
	if err := s.Router.run(ctx, "", "iptables", "-t", "mangle", "-A", "FORWARD", "-j", "NFQUEUE", "--queue-num", fmt.Sprint(delayQueueNum), "--queue-bypass"); err != nil {
		dl.close()
		return fmt.Errorf("netlab: delay needs iptables with the NFQUEUE target (apt-get install iptables): %w", err)
	}
	dl.wg.Go(dl.serve)
	l.mu.Lock()
	if l.delays == nil {
		l.delays = map[*Site]*delayer{}
	}
	l.delays[s] = dl
	l.mu.Unlock()
	return nil
}

// open makes the netlink socket (in the calling thread's namespace) and
// binds it to the queue.
func (dl *delayer) open() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("netlab: netfilter netlink socket: %w", err)
	}
	dl.fd = fd
	tv := unix.NsecToTimeval(delayRecvTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, delayReceiveBufSize)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("netlab: bind netlink: %w", err)
	}
	bind := []byte{nfqnlCfgCmdBind, 0, 0, 0}
	binary.BigEndian.PutUint16(bind[2:], unix.AF_INET)
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params, 0)
	params[4] = nfqnlCopyMeta
	for _, attr := range [][]byte{nlAttr(nfqaCfgCmd, bind), nlAttr(nfqaCfgParams, params)} {
		if err := dl.request(nfqnlMsgConfig, attr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("netlab: configuring NFQUEUE %d: %w", delayQueueNum, err)
		}
	}
	return nil
}

// nlAttr encodes one netlink attribute, padded to 4 bytes.
func nlAttr(typ uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// message builds a queue subsystem message with the given attributes.
func message(typ uint16, flags uint16, attrs ...[]byte) []byte {
	n := nlmsgHdrLen + nfgenHdrLen
	for _, a := range attrs {
		n += len(a)
	}
	b := make([]byte, nlmsgHdrLen+nfgenHdrLen, n)
	binary.NativeEndian.PutUint32(b, uint32(n))
	binary.NativeEndian.PutUint16(b[4:], nfnlSubsysQueue<<8|typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	b[16] = unix.AF_UNSPEC
	b[17] = nfnetlinkV0
	binary.BigEndian.PutUint16(b[18:], delayQueueNum)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// request sends a config message and waits for its ack.
func (dl *delayer) request(typ uint16, attrs ...[]byte) error {
	if err := unix.Sendto(dl.fd, message(typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK, attrs...), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(dl.fd, buf, 0)
		if err != nil {
			return err
		}
		for b := buf[:n]; len(b) >= nlmsgHdrLen; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < nlmsgHdrLen || l > len(b) {
				return errors.New("malformed netlink answer")
			}
			if binary.NativeEndian.Uint16(b[4:]) == unix.NLMSG_ERROR && l >= nlmsgHdrLen+4 {
				if code := int32(binary.NativeEndian.Uint32(b[nlmsgHdrLen:])); code != 0 {
					return unix.Errno(-code)
				}
				return nil
			}
			b = b[(l+3)&^3:]
		}
	}
}

// serve reads queued packets and schedules their verdicts until close.
func (dl *delayer) serve() {
	buf := make([]byte, 65536)
	for {
		select {
		case <-dl.stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(dl.fd, buf, 0)
		if err != nil {
			continue // timeout (to look at stop) or ENOBUFS (the kernel dropped some)
		}
		for b := buf[:n]; len(b) >= nlmsgHdrLen; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < nlmsgHdrLen || l > len(b) {
				break
			}
			if binary.NativeEndian.Uint16(b[4:]) == nfnlSubsysQueue<<8|nfqnlMsgPacket {
				if id, ok := packetID(b[nlmsgHdrLen+nfgenHdrLen : l]); ok {
					dl.hold(id)
				}
			}
			b = b[min((l+3)&^3, len(b)):]
		}
	}
}

// packetID finds NFQA_PACKET_HDR's packet id among the attributes.
func packetID(attrs []byte) (uint32, bool) {
	for len(attrs) >= 4 {
		l := int(binary.NativeEndian.Uint16(attrs))
		typ := binary.NativeEndian.Uint16(attrs[2:]) & 0x3fff
		if l < 4 || l > len(attrs) {
			return 0, false
		}
		if typ == nfqaPacketHdr && l >= 8 {
			return binary.BigEndian.Uint32(attrs[4:]), true
		}
		attrs = attrs[min((l+3)&^3, len(attrs)):]
	}
	return 0, false
}

// hold sends packet id's accept verdict after its delay.
func (dl *delayer) hold(id uint32) {
	d := dl.d
	if dl.j > 0 {
		d += time.Duration(dl.rnd.Int64N(int64(2*dl.j)+1)) - dl.j
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint32(v, nfAccept)
	binary.BigEndian.PutUint32(v[4:], id)
	msg := message(nfqnlMsgVerdict, unix.NLM_F_REQUEST, nlAttr(nfqaVerdictHdr, v))
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.stopped {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		dl.mu.Lock()
		defer dl.mu.Unlock()
		if dl.stopped {
			return
		}
		delete(dl.timers, t)
		unix.Sendto(dl.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	})
	dl.timers[t] = struct{}{}
}

// close stops serving and closes the socket (packets still held are
// dropped by the kernel with it).
func (dl *delayer) close() {
	dl.mu.Lock()
	dl.stopped = true
	for t := range dl.timers {
		t.Stop()
	}
	dl.timers = nil
	dl.mu.Unlock()
	close(dl.stop)
	dl.wg.Wait()
	unix.Close(dl.fd)
}
