package stacktest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// SendSyslog sends one syslog message over TLS with RFC 5425 octet counting and
// reports what the server did: nil when the connection stays open (accepted), else
// the error that ended it (handshake refused, or closed by the server after it).
//
// A client certificate is presented whatever CAs the server says it accepts: Go's
// default would send none when its issuer is not among them, and the test would then
// only prove again that a client without a certificate is refused.
func SendSyslog(t testing.TB, port int, roots *x509.CertPool, cert *tls.Certificate, line string) error {
	t.Helper()
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port), cfg)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "%d %s", len(line), line); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	// rsyslog never writes to a client: a read ends only when the server closes.
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err == nil {
		err = errors.New("server sent data")
	}
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("closed by server: %w", err)
	}
	return err
}
