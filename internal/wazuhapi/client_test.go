package wazuhapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// selfSigned makes a certificate like the API's default one: self-signed, for a
// name socflow never dials.
func selfSigned(t *testing.T, cn string) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Wazuh"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{cn},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// loginServer answers the login call the way the API does: a token for wazuh/wazuh,
// 401 with the API's problem body otherwise. getOnly answers 405 to POST, like an
// API that knows only the deprecated GET login.
func loginServer(t *testing.T, cert tls.Certificate, getOnly bool) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/security/user/authenticate" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"title": "Not Found", "detail": "404: Not Found"}`))
			return
		}
		if getOnly && r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(`{"title": "Method Not Allowed", "detail": "Specified method is invalid for this resource"}`))
			return
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "wazuh" || p != "wazuh" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"title": "Unauthorized", "detail": "Invalid credentials"}`))
			return
		}
		_, _ = w.Write([]byte(`{"data": {"token": "eyJhbGciOiJFUzUxMiJ9.e30.sig"}, "error": 0}`))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, url string, pem []byte) *Client {
	t.Helper()
	c, err := New(Options{BaseURL: url, CertPEM: pem, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestPinnedCertificate(t *testing.T) {
	cert, certPEM := selfSigned(t, "wazuh.example")
	srv := loginServer(t, cert, false)
	ctx := context.Background()

	token, err := newClient(t, srv.URL, certPEM).Authenticate(ctx, "wazuh", "wazuh")
	if err != nil || token == "" {
		t.Fatalf("pinned certificate: token %q, err %v", token, err)
	}

	_, err = newClient(t, srv.URL, certPEM).Authenticate(ctx, "wazuh", "wrong")
	if !errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrNotReady) {
		t.Fatalf("wrong password: %v", err)
	}

	_, otherPEM := selfSigned(t, "wazuh.example")
	_, err = newClient(t, srv.URL, otherPEM).Authenticate(ctx, "wazuh", "wazuh")
	var mismatch *CertificateMismatchError
	if !errors.As(err, &mismatch) || !errors.Is(err, ErrCertificateMismatch) {
		t.Fatalf("another pinned certificate: %v, want *CertificateMismatchError", err)
	}
	if mismatch.Presented != fingerprint(cert.Certificate[0]) || !strings.Contains(err.Error(), "not the pinned one") {
		t.Errorf("mismatch names the wrong certificate: %v", err)
	}

	// Two pinned certificates (a rotation): either one is accepted.
	both := append(append([]byte{}, otherPEM...), certPEM...)
	if _, err := newClient(t, srv.URL, both).Authenticate(ctx, "wazuh", "wazuh"); err != nil {
		t.Errorf("rotation pin: %v", err)
	}
}

func TestDeprecatedGetLogin(t *testing.T) {
	cert, certPEM := selfSigned(t, "wazuh.example")
	srv := loginServer(t, cert, true)
	if _, err := newClient(t, srv.URL, certPEM).Authenticate(context.Background(), "wazuh", "wazuh"); err != nil {
		t.Fatalf("GET-only login: %v", err)
	}
}

func TestNotReady(t *testing.T) {
	_, certPEM := selfSigned(t, "wazuh.example")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = newClient(t, "https://"+addr, certPEM).Authenticate(context.Background(), "wazuh", "wazuh")
	var nr *NotReadyError
	if !errors.Is(err, ErrNotReady) || !errors.As(err, &nr) || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("closed port: %v, want ErrNotReady", err)
	}
	if !strings.HasPrefix(err.Error(), "wazuh API not ready at https://"+addr) {
		t.Errorf("Error() = %s", err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	_, certPEM := selfSigned(t, "wazuh.example")
	for name, opts := range map[string]Options{
		"http URL":     {BaseURL: "http://127.0.0.1:55000", CertPEM: certPEM},
		"no host":      {BaseURL: "https://", CertPEM: certPEM},
		"no cert":      {BaseURL: "https://127.0.0.1:55000"},
		"key not cert": {BaseURL: "https://127.0.0.1:55000", CertPEM: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")},
		"garbage cert": {BaseURL: "https://127.0.0.1:55000", CertPEM: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
	} {
		if _, err := New(opts); err == nil || !strings.HasPrefix(err.Error(), "cannot ") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
