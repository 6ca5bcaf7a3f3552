package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// ALPN is the application protocol every swarmtv QUIC connection
// negotiates.
const ALPN = "swarmtv/1"

// Errors.
var (
	// ErrFingerprint: the dialed node presented a key other than the one
	// expected. Either the address now belongs to another node or someone
	// is in the path; ask the tracker for the node's current address.
	ErrFingerprint = errors.New("transport: remote key fingerprint does not match the expected node ID")
	// ErrClosed is returned by an Endpoint or Driver after Close.
	ErrClosed = errors.New("transport: closed")
)

// Application error codes a connection is closed with. They match the
// wire.ByeCode values so a Bye and a close mean the same.
const (
	CodeNormal       quic.ApplicationErrorCode = 0
	CodeBadChunk     quic.ApplicationErrorCode = 1
	CodeProtocol     quic.ApplicationErrorCode = 2
	CodeFull         quic.ApplicationErrorCode = 3
	CodeWrongChannel quic.ApplicationErrorCode = 4
	CodeSlow         quic.ApplicationErrorCode = 5
)

// Timeouts and flow-control windows of every connection.
const (
	KeepAlivePeriod      = time.Second
	MaxIdleTimeout       = 5 * time.Second
	HandshakeIdleTimeout = 3 * time.Second
)

func quicConfig() *quic.Config {
	return &quic.Config{
		KeepAlivePeriod:      KeepAlivePeriod,
		MaxIdleTimeout:       MaxIdleTimeout,
		HandshakeIdleTimeout: HandshakeIdleTimeout,
		// A child catching up receives up to a few MB of backlog at once.
		InitialStreamReceiveWindow:     2 << 20,
		MaxStreamReceiveWindow:         8 << 20,
		InitialConnectionReceiveWindow: 4 << 20,
		MaxConnectionReceiveWindow:     16 << 20,
		MaxIncomingStreams:             64,
		MaxIncomingUniStreams:          -1,
	}
}

// Conn is an established, mutually authenticated QUIC connection to
// another node.
type Conn struct {
	*quic.Conn
	remote swarm.NodeID
}

// Remote returns the ID of the node at the other end (its verified key
// fingerprint).
func (c *Conn) Remote() swarm.NodeID { return c.remote }

// Endpoint is a node's one UDP socket. It carries QUIC (incoming and
// outgoing connections) and hands every non-QUIC packet (STUN) to an
// optional handler. All methods are safe for concurrent use.
type Endpoint struct {
	id    *Identity
	log   *slog.Logger
	udp   *net.UDPConn
	tr    *quic.Transport
	ln    *quic.Listener
	qconf *quic.Config

	nonQUIC atomic.Pointer[func([]byte, net.Addr)]
	stop    context.CancelFunc // stops the non-QUIC reader
	readers sync.WaitGroup

	dialHook atomic.Pointer[DialHook] // see SetDialHook

	mu     sync.Mutex
	conns  map[*quic.Conn]struct{} // live connections, closed on Close
	closed bool
}

// Listen opens the UDP socket at addr (e.g. "127.0.0.1:0" or ":4433"),
// starts QUIC on it and accepts connections from any node presenting a
// client certificate.
func Listen(addr string, id *Identity, log *slog.Logger) (*Endpoint, error) {
	if id == nil {
		return nil, errors.New("transport: Listen needs an identity")
	}
	if log == nil {
		return nil, errors.New("transport: Listen needs a logger")
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen address %q: %w", addr, err)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("transport: listen: %w", err)
	}
	e := &Endpoint{
		id:    id,
		log:   log.With("node", id.ID(), "addr", udp.LocalAddr().String()),
		udp:   udp,
		tr:    &quic.Transport{Conn: udp},
		qconf: quicConfig(),
		conns: make(map[*quic.Conn]struct{}),
	}
	// quic-go drops non-QUIC packets until ReadNonQUICPacket is first
	// called: register the reader before anything can arrive, then keep
	// reading in the background.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	buf := make([]byte, 1500)
	if n, from, err := e.tr.ReadNonQUICPacket(done, buf); err == nil {
		e.handleNonQUIC(buf[:n], from)
	}
	ctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	e.readers.Go(func() { e.readNonQUIC(ctx) })

	srv := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.tls},
		NextProtos:   []string{ALPN},
		ClientAuth:   tls.RequireAnyClientCert,
		// Certificates are self-signed: the node ID is the key
		// fingerprint and is read after the handshake.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error { _, err := peerID(raw); return err },
	}
	ln, err := e.tr.Listen(srv, e.qconf)
	if err != nil {
		e.shutdown()
		return nil, fmt.Errorf("transport: quic listen: %w", err)
	}
	e.ln = ln
	return e, nil
}

// peerID parses the first certificate of a handshake and returns its ID.
func peerID(raw [][]byte) (swarm.NodeID, error) {
	if len(raw) == 0 {
		return "", errors.New("transport: peer presented no certificate")
	}
	cert, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return "", fmt.Errorf("transport: peer certificate: %w", err)
	}
	return IDFromCert(cert), nil
}

func (e *Endpoint) readNonQUIC(ctx context.Context) {
	buf := make([]byte, 1500)
	for {
		n, from, err := e.tr.ReadNonQUICPacket(ctx, buf)
		if err != nil {
			return // ctx cancelled or transport closed
		}
		e.handleNonQUIC(buf[:n], from)
	}
}

func (e *Endpoint) handleNonQUIC(b []byte, from net.Addr) {
	if h := e.nonQUIC.Load(); h != nil {
		(*h)(append([]byte(nil), b...), from)
		return
	}
	e.log.Debug("dropped non-QUIC packet", "from", from.String(), "len", len(b))
}

// HandleNonQUIC sets the function that receives every non-QUIC packet
// (STUN) arriving on the socket; nil drops them. h is called from the
// endpoint's reader goroutine, owns the slice, and must not block long.
func (e *Endpoint) HandleNonQUIC(h func(b []byte, from net.Addr)) {
	if h == nil {
		e.nonQUIC.Store(nil)
		return
	}
	e.nonQUIC.Store(&h)
}

// WriteTo sends a non-QUIC packet (STUN) from the endpoint's socket.
func (e *Endpoint) WriteTo(b []byte, addr net.Addr) (int, error) {
	return e.tr.WriteTo(b, addr)
}

// Addr returns the socket's local address.
func (e *Endpoint) Addr() *net.UDPAddr { return e.udp.LocalAddr().(*net.UDPAddr) }

// ID returns the endpoint's node ID.
func (e *Endpoint) ID() swarm.NodeID { return e.id.ID() }

// dial is Dial without the dial hook.
func (e *Endpoint) dial(ctx context.Context, addr string, expect swarm.NodeID) (*Conn, error) {
	if expect == "" {
		return nil, errors.New("transport: Dial needs the expected node ID")
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial address %q: %w", addr, err)
	}
	var got atomic.Pointer[swarm.NodeID]
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{e.id.tls},
		NextProtos:         []string{ALPN},
		ServerName:         "swarmtv",
		InsecureSkipVerify: true, // self-signed: checked by fingerprint below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := peerID(raw)
			if err != nil {
				return err
			}
			got.Store(&id)
			if id != expect {
				return fmt.Errorf("%w: %s presented %s, want %s", ErrFingerprint, addr, id, expect)
			}
			return nil
		},
	}
	qc, err := e.tr.Dial(ctx, ua, conf, e.qconf)
	if err != nil {
		if id := got.Load(); id != nil && *id != expect {
			return nil, fmt.Errorf("%w: %s presented %s, want %s", ErrFingerprint, addr, *id, expect)
		}
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	if err := e.track(qc); err != nil {
		return nil, err
	}
	return &Conn{Conn: qc, remote: expect}, nil
}

// Accept waits for the next incoming connection.
func (e *Endpoint) Accept(ctx context.Context) (*Conn, error) {
	for {
		qc, err := e.ln.Accept(ctx)
		if err != nil {
			if errors.Is(err, quic.ErrServerClosed) {
				return nil, ErrClosed
			}
			return nil, err
		}
		certs := qc.ConnectionState().TLS.PeerCertificates
		if len(certs) == 0 { // cannot happen with RequireAnyClientCert
			qc.CloseWithError(CodeProtocol, "no client certificate")
			continue
		}
		id := IDFromCert(certs[0])
		if err := e.track(qc); err != nil {
			return nil, err
		}
		return &Conn{Conn: qc, remote: id}, nil
	}
}

// track remembers qc until it closes, so Close can close it.
func (e *Endpoint) track(qc *quic.Conn) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		qc.CloseWithError(CodeNormal, "shutting down")
		return ErrClosed
	}
	e.conns[qc] = struct{}{}
	e.mu.Unlock()
	context.AfterFunc(qc.Context(), func() {
		e.mu.Lock()
		delete(e.conns, qc)
		e.mu.Unlock()
	})
	return nil
}

// Close closes every connection (telling the peers), the listener and the
// socket, and stops the non-QUIC reader.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	conns := make([]*quic.Conn, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	e.mu.Unlock()
	for _, c := range conns {
		c.CloseWithError(CodeNormal, "shutting down")
	}
	if e.ln != nil {
		e.ln.Close()
	}
	return e.shutdown()
}

func (e *Endpoint) shutdown() error {
	e.stop()
	err := e.tr.Close()
	if cerr := e.udp.Close(); err == nil {
		err = cerr
	}
	e.readers.Wait()
	return err
}

// Advertised returns the address other nodes should dial: advertise when
// set, else the bound address with 127.0.0.1 for an unspecified IP.
func (e *Endpoint) Advertised(advertise string) string {
	if advertise != "" {
		return advertise
	}
	a := e.Addr()
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}
