package wazuhstandin

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// loadOrCreateCert loads a certificate and key, first writing a self-signed
// RSA 2048 pair valid 365 days (what the API's generate_self_signed_certificate
// makes) when either file is missing; existing files are kept across restarts.
func loadOrCreateCert(certPath, keyPath, commonName string) (tls.Certificate, error) {
	_, errCert := os.Stat(certPath)
	_, errKey := os.Stat(keyPath)
	if errCert != nil || errKey != nil {
		if err := writeSelfSigned(certPath, keyPath, commonName); err != nil {
			return tls.Certificate{}, err
		}
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

// certMissing reports whether loadOrCreateCert would generate the pair.
func certMissing(certPath, keyPath string) bool {
	_, errCert := os.Stat(certPath)
	_, errKey := os.Stat(keyPath)
	return errCert != nil || errKey != nil
}

func writeSelfSigned(certPath, keyPath, commonName string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	name := pkix.Name{Country: []string{"US"}, Province: []string{"California"}, Locality: []string{"San Francisco"},
		Organization: []string{"Wazuh"}, CommonName: commonName}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: name, Issuer: name,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().AddDate(0, 0, 365),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{commonName, "localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o750); err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyPath, keyPEM, 0o400); err != nil {
		return err
	}
	return os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o400)
}
