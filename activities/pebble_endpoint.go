package activities

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/internal/spec"
)

// pebbleEndpoint is a workload container's Pebble, ready to dial: the spec's endpoint
// and, for HTTPS, its pinned server identity and socflow's client identity, resolved
// and parsed once per activity so a bad certificate fails before any call.
type pebbleEndpoint struct {
	spec       spec.Pebble
	serverCert *x509.Certificate // the pinned identity certificate (HTTPS only)
	clientCert *tls.Certificate  // socflow's identity (HTTPS only)
	clientID   string            // the client identity, named in refusals
}

// pebble resolves the endpoint's secret references through the worker's secret store.
// Unreadable or malformed certificates are permanent faults naming the field.
func (a *Activities) pebble(p spec.Pebble) (pebbleEndpoint, error) {
	ep := pebbleEndpoint{spec: p}
	if p.URL == "" {
		return ep, nil
	}
	pems := map[string]string{}
	for _, r := range []struct {
		field string
		ref   spec.SecretRef
	}{{"pebble.serverCert", p.ServerCert}, {"pebble.clientCert", p.ClientCert}, {"pebble.clientKey", p.ClientKey}} {
		if r.ref.IsZero() {
			return ep, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("%s: is required with pebble.url %s", r.field, p.URL)}
		}
		v, err := a.resolve(r.field, r.ref)
		if err != nil {
			return ep, err
		}
		pems[r.field] = v
	}
	server, err := parseCertPEM("pebble.serverCert", pems["pebble.serverCert"])
	if err != nil {
		return ep, err
	}
	if !server.IsCA {
		return ep, &errPermanent{ErrTypeInvalidInput, errors.New("pebble.serverCert: is not a CA certificate: " +
			"pin the server's identity certificate ($PEBBLE/tls/identity.pem), not its short-lived TLS certificate")}
	}
	cc, err := parseCertPEM("pebble.clientCert", pems["pebble.clientCert"])
	if err != nil {
		return ep, err
	}
	if !usableForClientAuth(cc) {
		return ep, &errPermanent{ErrTypeInvalidInput, errors.New("pebble.clientCert: its extended key usage does not include " +
			"clientAuth, so Pebble would refuse it as an identity: issue it with extendedKeyUsage=clientAuth")}
	}
	if now := time.Now(); now.After(cc.NotAfter) || now.Before(cc.NotBefore) {
		return ep, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("pebble.clientCert: is valid only from %s to %s: issue a new one and register it with pebble update-identities",
			cc.NotBefore.UTC().Format(time.RFC3339), cc.NotAfter.UTC().Format(time.RFC3339))}
	}
	pair, err := tls.X509KeyPair([]byte(pems["pebble.clientCert"]), []byte(pems["pebble.clientKey"]))
	if err != nil {
		return ep, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("pebble.clientKey: is not the PEM private key of pebble.clientCert: %v", err)}
	}
	ep.serverCert, ep.clientCert, ep.clientID = server, &pair, identityName(cc)
	return ep, nil
}

// parseCertPEM parses the first PEM CERTIFICATE block of v.
func parseCertPEM(field, v string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(v))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, &errPermanent{ErrTypeInvalidInput, errors.New(field + ": is not a PEM CERTIFICATE block")}
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("%s: cannot parse the certificate: %v", field, err)}
	}
	return c, nil
}

// usableForClientAuth mirrors the check Pebble makes of a cert identity.
func usableForClientAuth(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// identityName names a client certificate for operators: its subject and the start of
// its SHA-256 fingerprint (what `openssl x509 -fingerprint -sha256` prints).
func identityName(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return fmt.Sprintf("%q (SHA-256 %s…)", c.Subject.String(), strings.ToUpper(hex.EncodeToString(sum[:8])))
}

// client opens a client for the container's Pebble: the one place socflow builds one.
// Over HTTPS the server must present a TLS certificate signed by the pinned identity
// certificate (Pebble's TLSServerIDCert; the fingerprint option is meant for pairing
// only), and socflow presents its client identity.
func (ep pebbleEndpoint) client() (*client.Client, error) {
	// No keep-alive: the client is this call's alone, so a connection left to its pool
	// is never reused, and Pebble's server has no idle timeout — it would stay open on
	// both sides for ever, one a call.
	cfg := &client.Config{Socket: ep.spec.Socket, UserAgent: "socflow", DisableKeepAlive: true}
	if ep.spec.URL != "" {
		cfg = &client.Config{BaseURL: ep.spec.URL, UserAgent: "socflow", DisableKeepAlive: true,
			TLSServerIDCert: ep.serverCert, TLSClientIDCert: ep.clientCert}
	}
	pc, err := client.New(cfg)
	if err != nil {
		return nil, &errPermanent{ErrTypeInvalidInput, fmt.Errorf("cannot create a pebble client for %s%s: %w", ep.spec.Socket, ep.spec.URL, err)}
	}
	return pc, nil
}

// call runs one Pebble call on a client of its own, bounded by PebbleCallTimeout and
// ctx. Pebble's client methods take no context, so a call runs aside and is abandoned
// on timeout; and its client is not safe for concurrent use (each request writes
// unguarded fields), so no two calls — an abandoned one included — share one.
func (ep pebbleEndpoint) call(ctx context.Context, call func(pc *client.Client) error) error {
	pc, err := ep.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, PebbleCallTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(pc) }()
	select {
	case err := <-done:
		return ep.refusal(err)
	case <-ctx.Done():
		return fmt.Errorf("pebble API did not answer: %w", ctx.Err())
	}
}

// refusal makes the HTTPS refusals permanent, naming the setting to fix: a server that
// does not present the pinned identity, and a client identity the server does not know.
// Anything else (refused connections, timeouts) is returned as it is, retryable.
func (ep pebbleEndpoint) refusal(err error) error {
	if err == nil || ep.spec.URL == "" {
		return err
	}
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &unknownCA) || errors.As(err, &invalid) {
		return &errPermanent{ErrTypeBadConfig, fmt.Errorf("pebble.serverCert: the server at %s does not present the pinned identity "+
			"(%v): pin that Pebble's $PEBBLE/tls/identity.pem, or check pebble.url points at the right Pebble", ep.spec.URL, err)}
	}
	var ce *client.Error
	if errors.As(err, &ce) && (ce.StatusCode == 401 || ce.StatusCode == 403) {
		return &errPermanent{ErrTypeBadConfig, fmt.Errorf("pebble.clientCert: the Pebble at %s refuses client identity %s (HTTP %d: %v): "+
			"register it there with `pebble add-identities` as type cert with access admin", ep.spec.URL, ep.clientID, ce.StatusCode, err)}
	}
	return err
}
