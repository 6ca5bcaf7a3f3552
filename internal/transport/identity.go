package transport

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// Identity is a node's TLS key and the self-signed certificate it presents
// on every QUIC connection. Its ID (the certificate's public key
// fingerprint) is the node's swarm.NodeID.
type Identity struct {
	key  crypto.Signer
	cert *x509.Certificate
	tls  tls.Certificate
	id   swarm.NodeID
}

// IDLen is the length of a NodeID: 16 bytes of SHA-256 in lowercase hex.
const IDLen = 32

// NewIdentity makes a fresh Ed25519 key and a self-signed certificate.
func NewIdentity() (*Identity, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("transport: generate key: %w", err)
	}
	return identityFromKey(key)
}

// LoadOrCreateIdentity reads the PEM (PKCS #8) private key at path, or
// creates a new key and writes it there with mode 0600 when the file does
// not exist. The certificate is made afresh on each load; the ID depends
// only on the key, so it is stable across restarts.
func LoadOrCreateIdentity(path string) (*Identity, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("transport: %s holds no PEM \"PRIVATE KEY\" block; delete it to make a new identity", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("transport: parse key in %s: %w", path, err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("transport: key in %s (%T) cannot sign", path, k)
		}
		return identityFromKey(signer)
	case errors.Is(err, os.ErrNotExist):
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("transport: generate key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("transport: encode key: %w", err)
		}
		if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
			return nil, err
		}
		return identityFromKey(key)
	default:
		return nil, fmt.Errorf("transport: read identity: %w", err)
	}
}

// writeFileAtomic writes b to path (mode 0600) through a temporary file in
// the same directory, so a crash never leaves a half-written key.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".identity-*")
	if err != nil {
		return fmt.Errorf("transport: write identity: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("transport: write identity: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("transport: write identity: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("transport: write identity: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("transport: write identity: %w", err)
	}
	return nil
}

func identityFromKey(key crypto.Signer) (*Identity, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, fmt.Errorf("transport: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "swarmtv node"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("transport: self-sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("transport: parse own certificate: %w", err)
	}
	return &Identity{
		key:  key,
		cert: cert,
		tls:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert},
		id:   IDFromCert(cert),
	}, nil
}

// ID returns the node's ID: the fingerprint of its certificate's public key.
func (id *Identity) ID() swarm.NodeID { return id.id }

// Certificate returns the identity's self-signed certificate.
func (id *Identity) Certificate() *x509.Certificate { return id.cert }

// IDFromCert returns the NodeID of the node presenting cert: the lowercase
// hex of the first 16 bytes of SHA-256 over its SubjectPublicKeyInfo DER.
func IDFromCert(cert *x509.Certificate) swarm.NodeID {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return swarm.NodeID(hex.EncodeToString(sum[:IDLen/2]))
}
