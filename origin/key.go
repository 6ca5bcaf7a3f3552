package origin

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrBadKey: the channel key file exists but does not hold an Ed25519
// private key.
var ErrBadKey = errors.New("origin: channel key file does not hold an Ed25519 private key")

// LoadOrCreateKey reads the channel's Ed25519 signing key from path, or
// creates it (and its folder) with mode 0600 if the file does not exist.
// The key is the channel's identity: peers trust chunks signed by it, so
// an origin restarted with the same key keeps its viewers.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("origin: creating the channel key's folder: %w", err)
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.WriteFile(path, out, 0o600); err != nil {
			return nil, fmt.Errorf("origin: saving the channel key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("origin: reading the channel key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s (no PEM PRIVATE KEY block)", ErrBadKey, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s holds a %T", ErrBadKey, path, k)
	}
	return key, nil
}

// DefaultKeyPath is where a channel's key lives unless --key says
// otherwise: the user's config folder, swarmtv/<channel>.key.
func DefaultKeyPath(channel string) string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "swarmtv", channel+".key")
}
