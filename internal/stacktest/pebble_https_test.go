package stacktest_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/internal/stacktest"
)

// TestSmokePebbleHTTPS reaches the opencti-https container's Pebble with Pebble's own
// client, the pinned identity certificate and socflow's registered client identity.
func TestSmokePebbleHTTPS(t *testing.T) {
	ph := stacktest.Get(t).PebbleHTTPS
	data, err := os.ReadFile(ph.ServerCert)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s holds no PEM block", ph.ServerCert)
	}
	id, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(ph.ClientCert, ph.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := client.New(&client.Config{BaseURL: ph.URL, TLSServerIDCert: id, TLSClientIDCert: &pair})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Services(&client.ServicesOptions{}); err != nil {
		t.Fatalf("cannot list services over %s: %v", ph.URL, err)
	}
	ids, err := pc.Identities(nil)
	if err != nil {
		t.Fatalf("cannot list identities over %s: %v", ph.URL, err)
	}
	if got := ids[ph.Identity]; got == nil || got.Access != client.AdminAccess || got.Cert == nil {
		t.Errorf("identity %s = %+v, want an admin cert identity", ph.Identity, got)
	}
}

// TestParseRequiresPebbleHTTPSSettings keeps Parse strict: an env from a stack script
// without the HTTPS Pebble is refused, naming what is missing.
func TestParseRequiresPebbleHTTPSSettings(t *testing.T) {
	_, err := stacktest.Parse([]byte("SOCFLOW_STACK_DIR=/x\n"))
	if err == nil {
		t.Fatal("Parse accepted an env without the HTTPS Pebble settings")
	}
	for _, k := range []string{"SOCFLOW_PEBBLE_HTTPS_URL", "SOCFLOW_PEBBLE_HTTPS_SERVER_CERT", "SOCFLOW_PEBBLE_HTTPS_CLIENT_CERT",
		"SOCFLOW_PEBBLE_HTTPS_CLIENT_KEY", "SOCFLOW_PEBBLE_HTTPS_IDENTITY", "SOCFLOW_PEBBLE_OPENCTI_HTTPS"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not name %s", err, k)
		}
	}
}
