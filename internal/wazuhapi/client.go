// Package wazuhapi is a small typed client for the parts of the Wazuh server API (4.x)
// socflow uses: login, API users and roles, manager information, cluster state and
// configuration validation. It talks only to an API that presents the certificate it
// was given (the API's self-signed certificate is pinned, not trusted as a CA), and it
// turns the API's answers into errors that say what was refused and why.
package wazuhapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds one API call when Options.Timeout is zero: the API's own
// request_timeout is 10 s, so a slow call gets the API's answer before ours gives up.
const DefaultTimeout = 15 * time.Second

// maxBody bounds what is read of one answer; the lists socflow reads are small.
const maxBody = 4 << 20

// Options configures New; zero fields take the defaults documented on each.
type Options struct {
	// BaseURL is the API's address, https://host:port (required).
	BaseURL string
	// CertPEM holds the API's certificate(s) in PEM, as found in
	// <home>/api/configuration/ssl/server.crt (required): the client accepts a
	// server only if its leaf certificate is one of them. Two certificates let a
	// rotation pass.
	CertPEM []byte
	// Timeout bounds each call (default DefaultTimeout).
	Timeout time.Duration
}

// Client talks to one Wazuh API. It is safe for concurrent use; Close releases its
// idle connections.
type Client struct {
	base      string
	timeout   time.Duration
	transport *http.Transport
	http      *http.Client
}

// New returns a client for the API at opts.BaseURL that trusts only the pinned
// certificate(s) in opts.CertPEM.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.BaseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("cannot use wazuh API URL %q: want https://host:port", opts.BaseURL)
	}
	pins, err := parsePins(opts.CertPEM)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr := &http.Transport{
		Proxy:               nil, // the API is reached directly; a proxy could not present the pinned certificate anyway
		DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
		TLSClientConfig:     pinnedTLS(pins),
		TLSHandshakeTimeout: timeout,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{
		base:      strings.TrimRight(u.String(), "/"),
		timeout:   timeout,
		transport: tr,
		http:      &http.Client{Transport: tr},
	}, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// BaseURL is the API address the client talks to.
func (c *Client) BaseURL() string { return c.base }

// pin is one accepted certificate: its DER bytes and SHA-256 fingerprint.
type pin struct {
	der         []byte
	fingerprint string
}

// parsePins reads every CERTIFICATE block of certPEM.
func parsePins(certPEM []byte) ([]pin, error) {
	var pins []pin
	rest := certPEM
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("cannot parse the wazuh API certificate to pin: %w", err)
		}
		pins = append(pins, pin{der: block.Bytes, fingerprint: fingerprint(block.Bytes)})
	}
	if len(pins) == 0 {
		return nil, errors.New("cannot pin the wazuh API certificate: no PEM CERTIFICATE block given (want the content of <home>/api/configuration/ssl/server.crt)")
	}
	return pins, nil
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// pinnedTLS accepts exactly the pinned leaf certificates. Chain and host name checks
// are replaced by the pin: the API's default certificate is self-signed and names no
// host socflow dials, and an exact match is stricter than either check.
func pinnedTLS(pins []pin) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection below, which Go still calls
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &CertificateMismatchError{}
			}
			leaf := cs.PeerCertificates[0].Raw
			for _, p := range pins {
				if bytes.Equal(leaf, p.der) {
					return nil
				}
			}
			e := &CertificateMismatchError{Presented: fingerprint(leaf), Subject: cs.PeerCertificates[0].Subject.String()}
			for _, p := range pins {
				e.Pinned = append(e.Pinned, p.fingerprint)
			}
			return e
		},
	}
}

// request is one API call.
type request struct {
	// op says what is asked, for errors: "list users", "update user 100".
	op     string
	method string
	path   string
	query  url.Values
	body   any
	// token is the bearer token; empty with basic (login).
	token string
	basic *[2]string
	// login marks the authentication call, whose 401 means wrong credentials.
	login bool
}

// do sends req and returns the answer's body when the status is 2xx; any other
// answer becomes an *APIError, a transport failure a *NotReadyError (nothing listens
// yet) or a wrapped error (with *CertificateMismatchError inside when the pin fails).
func (c *Client) do(ctx context.Context, req request) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.base + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("cannot encode the request to %s: %w", req.op, err)
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("cannot build the request to %s: %w", req.op, err)
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Accept", "application/json")
	switch {
	case req.basic != nil:
		hr.SetBasicAuth(req.basic[0], req.basic[1])
	case req.token != "":
		hr.Header.Set("Authorization", "Bearer "+req.token)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, c.transportError(req.op, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("cannot read the wazuh API's answer to %s: %w", req.op, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, parseProblem(req.op, resp.StatusCode, raw, req.login)
	}
	return raw, nil
}

// transportError classifies a failure to get any answer.
func (c *Client) transportError(op string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is said once, below
	}
	if isRefused(err) {
		return &NotReadyError{URL: c.base, Err: err}
	}
	return fmt.Errorf("cannot %s: no answer from the wazuh API at %s: %w", op, c.base, err)
}

// isRefused tells "nothing listens there (yet)" from other transport failures.
func isRefused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial" && !op.Timeout())
}

// ErrNotReady matches a *NotReadyError: the API refused the connection, which is
// what it does while the manager starts.
var ErrNotReady = errors.New("wazuh API not ready")

// NotReadyError says the API's port refused the connection.
type NotReadyError struct {
	// URL is the API's address.
	URL string
	// Err is the transport error.
	Err error
}

// Error says where nothing listens yet.
func (e *NotReadyError) Error() string {
	return fmt.Sprintf("wazuh API not ready at %s: %v", e.URL, e.Err)
}

// Unwrap returns the transport error.
func (e *NotReadyError) Unwrap() error { return e.Err }

// Is matches ErrNotReady.
func (e *NotReadyError) Is(target error) bool { return target == ErrNotReady }

// ErrCertificateMismatch matches a *CertificateMismatchError.
var ErrCertificateMismatch = errors.New("wazuh API certificate mismatch")

// CertificateMismatchError says the server presented another certificate than the
// pinned one(s): another manager (or a regenerated certificate) answers at the address.
type CertificateMismatchError struct {
	// Presented is the SHA-256 fingerprint of the server's certificate ("" if none).
	Presented string
	// Subject is the presented certificate's subject.
	Subject string
	// Pinned are the SHA-256 fingerprints the client accepts.
	Pinned []string
}

// Error names both fingerprints so an operator can tell which certificate is where.
func (e *CertificateMismatchError) Error() string {
	if e.Presented == "" {
		return "wazuh API presented no TLS certificate"
	}
	return fmt.Sprintf("wazuh API presented TLS certificate %s (sha256 %s), not the pinned one (sha256 %s)",
		e.Subject, e.Presented, strings.Join(e.Pinned, ", "))
}

// Is matches ErrCertificateMismatch.
func (e *CertificateMismatchError) Is(target error) bool { return target == ErrCertificateMismatch }
