package wazuh

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path"
	"strings"
	"time"
)

// CertRenewBefore is how long before its expiry a certificate a node serves is reported
// (degraded): a month leaves time to renew it in the store, which the next check then
// finds as drift and the instance pushes.
const CertRenewBefore = 30 * 24 * time.Hour

// SyslogCertPath is where node k's rsyslog server certificate chain is pushed.
func SyslogCertPath(in Instance, k int) string {
	return path.Join(in.Nodes[k].Path(in.Wazuh.RsyslogDir), "certs/server.pem")
}

// IsCertFile reports whether a planned file is a certificate or key socflow pushes (a
// file under a certs directory): their drift is a renewal to push, not a hand edit.
func IsCertFile(p string) bool { return strings.Contains(p, "/certs/") }

// CertExpiry judges the first certificate of a PEM chain at now: "" while it is valid
// for longer than renewBefore, else why not; serving is false once it has expired (or
// cannot be read), when TLS clients refuse it.
func CertExpiry(chain []byte, now time.Time, renewBefore time.Duration) (reason string, serving bool) {
	block, _ := pem.Decode(chain)
	if block == nil || block.Type != "CERTIFICATE" {
		return "no PEM certificate in the file", false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "cannot parse the certificate: " + err.Error(), false
	}
	left := cert.NotAfter.Sub(now)
	when := cert.NotAfter.UTC().Format(time.DateTime + " UTC")
	switch {
	case left <= 0:
		return fmt.Sprintf("certificate %q expired at %s: renew it where the spec refers to it; the next check pushes it", cert.Subject.CommonName, when), false
	case left < renewBefore:
		return fmt.Sprintf("certificate %q expires at %s (in %d days): renew it where the spec refers to it; the next check pushes it", cert.Subject.CommonName, when, int(left.Hours()/24)), true
	}
	return "", true
}
