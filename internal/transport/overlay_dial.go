package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
)

// DialAny connects to the node at addr whatever its key, for a bootstrap
// address given without a node ID (swarmtv peer --bootstrap HOST:PORT).
// The connection is still mutually authenticated: Remote is the key
// fingerprint the node presented, and everything it says afterwards is
// checked against it.
func (e *Endpoint) DialAny(ctx context.Context, addr string) (*Conn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial address %q: %w", addr, err)
	}
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{e.id.tls},
		NextProtos:         []string{ALPN},
		ServerName:         "swarmtv",
		InsecureSkipVerify: true, // self-signed: the fingerprint is the identity
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := peerID(raw)
			return err
		},
	}
	qc, err := e.tr.Dial(ctx, ua, conf, e.qconf)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	certs := qc.ConnectionState().TLS.PeerCertificates
	if len(certs) == 0 { // cannot happen: the handshake verified one
		qc.CloseWithError(CodeProtocol, "no certificate")
		return nil, fmt.Errorf("transport: dial %s: no certificate", addr)
	}
	id := IDFromCert(certs[0])
	if err := e.track(qc); err != nil {
		return nil, err
	}
	return &Conn{Conn: qc, remote: id}, nil
}
