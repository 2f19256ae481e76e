package activities_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// stackPebbleHTTPS is the stack's HTTPS Pebble with socflow's registered identity.
func stackPebbleHTTPS(t *testing.T) spec.Pebble {
	ph := stacktest.Get(t).PebbleHTTPS
	return spec.Pebble{URL: ph.URL, ServerCert: spec.SecretRef("file:" + ph.ServerCert),
		ClientCert: spec.SecretRef("file:" + ph.ClientCert), ClientKey: spec.SecretRef("file:" + ph.ClientKey)}
}

// fileRef writes content to a temporary file and returns a file: reference to it.
func fileRef(t *testing.T, content string) spec.SecretRef {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pem")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return spec.SecretRef("file:" + p)
}

// startNoService starts a service no container has: reaching Pebble is the point,
// and "no such service" proves the call got through without changing anything.
func startNoService(t *testing.T, p spec.Pebble) error {
	t.Helper()
	_, err := probeEnv(t).ExecuteActivity(nilActs.StartPebbleServices,
		activities.StartPebbleServicesInput{Pebble: p, Services: []string{"socflow-no-such-service"}})
	return err
}

func TestPebbleHTTPSReachesTheStackPebble(t *testing.T) {
	err := startNoService(t, stackPebbleHTTPS(t))
	requirePermanent(t, err, activities.ErrTypeInvalidInput, "socflow-no-such-service", "no such service")
}

func TestPebbleHTTPSUnreachableIsRetryable(t *testing.T) {
	p := stackPebbleHTTPS(t)
	p.URL = "https://" + unreachable
	requireRetryable(t, startNoService(t, p), "connection refused")
}

func TestPebbleHTTPSIdentityMaterial(t *testing.T) {
	client := stacktest.NewTestCert(t, "socflow-test-client", nil)
	other := stacktest.NewTestCert(t, "socflow-test-other", nil)
	serverOnly := stacktest.NewTestCert(t, "socflow-test-server-only", &x509.Certificate{
		Subject: pkix.Name{CommonName: "server-only"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	expired := stacktest.NewTestCert(t, "socflow-test-expired", &x509.Certificate{
		Subject: pkix.Name{CommonName: "expired"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
	})
	ref := func(path string) spec.SecretRef { return spec.SecretRef("file:" + path) }
	tests := []struct {
		name    string
		mutate  func(*spec.Pebble)
		errType string
		want    []string
	}{
		{"server cert not pem", func(p *spec.Pebble) { p.ServerCert = fileRef(t, "hello") },
			activities.ErrTypeInvalidInput, []string{"pebble.serverCert", "PEM CERTIFICATE"}},
		{"server cert is a leaf", func(p *spec.Pebble) { p.ServerCert = ref(client.Cert) },
			activities.ErrTypeInvalidInput, []string{"pebble.serverCert", "not a CA certificate", "identity.pem"}},
		{"client cert not pem", func(p *spec.Pebble) { p.ClientCert = fileRef(t, "hello") },
			activities.ErrTypeInvalidInput, []string{"pebble.clientCert", "PEM CERTIFICATE"}},
		{"client key of another cert", func(p *spec.Pebble) { p.ClientCert, p.ClientKey = ref(client.Cert), ref(other.Key) },
			activities.ErrTypeInvalidInput, []string{"pebble.clientKey", "private key of pebble.clientCert"}},
		{"client key not pem", func(p *spec.Pebble) { p.ClientCert, p.ClientKey = ref(client.Cert), fileRef(t, "key") },
			activities.ErrTypeInvalidInput, []string{"pebble.clientKey"}},
		{"client cert for servers only", func(p *spec.Pebble) { p.ClientCert, p.ClientKey = ref(serverOnly.Cert), ref(serverOnly.Key) },
			activities.ErrTypeInvalidInput, []string{"pebble.clientCert", "clientAuth"}},
		{"client cert expired", func(p *spec.Pebble) { p.ClientCert, p.ClientKey = ref(expired.Cert), ref(expired.Key) },
			activities.ErrTypeInvalidInput, []string{"pebble.clientCert", "is valid only from"}},
		{"client key file missing", func(p *spec.Pebble) { p.ClientKey = "file:/nonexistent/socflow/client.key" },
			activities.ErrTypeSecretUnavailable, []string{"pebble.clientKey", "no such file"}},
		{"server cert not in the store", func(p *spec.Pebble) { p.ServerCert = "store:pebble/server-cert" },
			activities.ErrTypeSecretUnavailable, []string{"pebble.serverCert", "not in the secret store"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := stackPebbleHTTPS(t)
			tt.mutate(&p)
			requirePermanent(t, startNoService(t, p), tt.errType, tt.want...)
		})
	}
}
