package wazuh

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// selfSigned returns a PEM certificate valid until notAfter.
func selfSigned(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wazuh.example"},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestCertExpiry(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name    string
		chain   []byte
		want    string // "" or a part of the reason
		serving bool
	}{
		{"valid for a year", selfSigned(t, now.AddDate(1, 0, 0)), "", true},
		{"valid just over the window", selfSigned(t, now.Add(CertRenewBefore+time.Hour)), "", true},
		{"within the window", selfSigned(t, now.AddDate(0, 0, 12)), `"wazuh.example" expires at 2026-12-12 12:00:00 UTC (in 12 days)`, true},
		{"expired", selfSigned(t, now.Add(-time.Minute)), "expired at 2026-11-30 11:59:00 UTC", false},
		{"not PEM", []byte("hello"), "no PEM certificate", false},
		{"a key, not a certificate", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "no PEM certificate", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reason, serving := CertExpiry(tt.chain, now, CertRenewBefore)
			if tt.want == "" && reason != "" || tt.want != "" && !strings.Contains(reason, tt.want) || serving != tt.serving {
				t.Errorf("CertExpiry = %q, %t; want %q, %t", reason, serving, tt.want, tt.serving)
			}
		})
	}
}

func TestIsCertFile(t *testing.T) {
	for p, want := range map[string]bool{"/etc/rsyslog.d/wazuh/certs/server.pem": true, "/var/ossec/etc/ossec.conf": false, "/etc/filebeat/certs/root-ca.pem": true} {
		if IsCertFile(p) != want {
			t.Errorf("IsCertFile(%q) = %t", p, !want)
		}
	}
}
