package opencti

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/spec"
)

// httpsPebble is a valid HTTPS spec.Pebble endpoint at url, with file references.
func httpsPebble(url string) spec.Pebble {
	return spec.Pebble{URL: url, ServerCert: "file:/etc/socflow/pebble-identity.pem",
		ClientCert: "file:/etc/socflow/pebble-client.pem", ClientKey: "file:/etc/socflow/pebble-client.key"}
}

// testCertPEM makes a self-signed client certificate and its key, PEM-encoded.
func testCertPEM(t testing.TB) (cert, key string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "socflow"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}))
}

// TestPebbleKeyNeverLogged checks that a literal client key is redacted and that a
// problem with it never quotes it.
func TestPebbleKeyNeverLogged(t *testing.T) {
	_, key := testCertPEM(t)
	in := mustLoad(t, "minimal.yaml")
	in.Pebble = httpsPebble("https://10.0.0.5:8443")
	in.Pebble.ClientKey = spec.SecretRef(key)
	if r := in.Redacted(); r.Pebble.ClientKey != "<literal>" || r.Pebble.ServerCert != in.Pebble.ServerCert {
		t.Errorf("Redacted() pebble = %+v, want the literal key masked and references kept", r.Pebble)
	}
	bad := strings.Replace(key, "PRIVATE KEY", "PRIVATE KEX", 2)
	in.Pebble.ClientKey = spec.SecretRef(bad)
	err := in.Validate()
	if err == nil || strings.Contains(err.Error(), bad[40:60]) {
		t.Errorf("Validate() = %v, want a problem that does not quote the key", err)
	}
}
