package transport

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func TestIdentityFingerprint(t *testing.T) {
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(string(id.ID())) {
		t.Fatalf("ID %q is not 32 lowercase hex characters", id.ID())
	}
	// Round trip through DER: the ID is a function of the certificate's key.
	cert, err := x509.ParseCertificate(id.Certificate().Raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := IDFromCert(cert); got != id.ID() {
		t.Fatalf("IDFromCert = %s, want %s", got, id.ID())
	}
	other, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if other.ID() == id.ID() {
		t.Fatal("two fresh identities share an ID")
	}
}

func TestLoadOrCreateIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	a, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != b.ID() {
		t.Fatalf("reloaded identity has ID %s, want %s", b.ID(), a.ID())
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateIdentity(path); err == nil {
		t.Fatal("garbage key file accepted")
	}
}
