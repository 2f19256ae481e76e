package stacktest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCert is a self-signed certificate and its private key, written as PEM files
// (0600) in the test's temporary directory, for tests of TLS identities.
type TestCert struct {
	Cert string            // path of the PEM certificate
	Key  string            // path of the PEM (PKCS #8) private key
	X509 *x509.Certificate // the parsed certificate
}

// NewTestCert makes a self-signed Ed25519 certificate from tmpl; a nil tmpl means a
// client certificate named cn, for TLS client auth, valid from an hour ago for a day.
// SerialNumber is filled in when unset.
func NewTestCert(t testing.TB, cn string, tmpl *x509.Certificate) TestCert {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.Certificate{
			Subject:     pkix.Name{CommonName: cn},
			NotBefore:   time.Now().Add(-time.Hour),
			NotAfter:    time.Now().Add(24 * time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatalf("cannot create a test certificate: %v", err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tc := TestCert{Cert: filepath.Join(dir, cn+".pem"), Key: filepath.Join(dir, cn+".key"), X509: parsed}
	if err := os.WriteFile(tc.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tc.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tc
}
