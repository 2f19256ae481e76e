package filebeatstandin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// node is one host of the elasticsearch output, with its connection state.
type node struct {
	url       *url.URL
	connected bool
	attempts  int // failed connections since the last success
}

// String is how libbeat names the client in its log lines.
func (n *node) String() string {
	return "backoff(elasticsearch(" + n.url.String() + "))"
}

// publisher ships batches of events with the _bulk API, one batch at a time: it
// connects (GET /) before the first batch, and after a failure waits with equal-jitter
// exponential backoff (backoff.init doubling to backoff.max) and reconnects, for ever.
// Only acknowledged events move the registry. The real output runs a worker per host
// with batches in flight on each; here one batch goes to one host at a time, hosts
// taken in turn.
type publisher struct {
	out    Output
	log    *logger
	reg    *registry
	client *http.Client
	nodes  []*node
	next   int
	flush  time.Duration
}

// newPublisher builds the HTTP client of the output (CAs, client certificate,
// verification mode); a CA file that cannot be read stops filebeat at start.
func newPublisher(o Output, l *logger, reg *registry, flush time.Duration) (*publisher, error) {
	tc := &tls.Config{}
	if len(o.CAs) > 0 {
		pool := x509.NewCertPool()
		for _, f := range o.CAs {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("error initializing publisher: 1 error: %w reading %s accessing 'output.elasticsearch.ssl.certificate_authorities'", err, f)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("error initializing publisher: 1 error: failed reading CA certificate: no certificate found in %s accessing 'output.elasticsearch.ssl.certificate_authorities'", f)
			}
		}
		tc.RootCAs = pool
	}
	if o.Certificate != "" || o.Key != "" {
		pair, err := tls.LoadX509KeyPair(o.Certificate, o.Key)
		if err != nil {
			return nil, fmt.Errorf("error initializing publisher: 1 error: %w accessing 'output.elasticsearch.ssl'", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	switch o.VerificationMode {
	case "none":
		tc.InsecureSkipVerify = true
	case "certificate":
		// Chain checked, host name not, as libbeat's "certificate" mode does.
		tc.InsecureSkipVerify = true
		tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, tc.RootCAs)
		}
	}
	p := &publisher{out: o, log: l, reg: reg, flush: flush,
		client: &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}}
	for _, u := range o.Hosts {
		p.nodes = append(p.nodes, &node{url: u})
	}
	return p, nil
}

func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return err
		}
		certs[i] = c
	}
	if len(certs) == 0 {
		return errors.New("x509: no certificate presented")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}

// run takes batches from events until ctx ends and ships each until it is acknowledged.
func (p *publisher) run(ctx context.Context, events <-chan event) {
	for {
		batch, ok := p.collect(ctx, events)
		if !ok {
			return
		}
		if !p.publish(ctx, batch) {
			return
		}
		last := map[string]fileState{}
		var order []string
		for _, e := range batch {
			if _, seen := last[e.key]; !seen {
				order = append(order, e.key)
			}
			last[e.key] = e.state
		}
		for _, k := range order {
			if err := p.reg.set(k, last[k]); err != nil {
				p.log.error("registrar", "registrar/registrar.go:291", "Writing of registry returned error: %v. Continuing...", err)
			}
		}
	}
}

// collect waits for one event, then gathers more until bulk_max_size or the flush timeout.
func (p *publisher) collect(ctx context.Context, events <-chan event) ([]event, bool) {
	var batch []event
	select {
	case <-ctx.Done():
		return nil, false
	case e := <-events:
		batch = append(batch, e)
	}
	timer := time.NewTimer(p.flush)
	defer timer.Stop()
	for len(batch) < p.out.BulkMaxSize {
		select {
		case <-ctx.Done():
			return nil, false
		case e := <-events:
			batch = append(batch, e)
		case <-timer.C:
			return batch, true
		}
	}
	return batch, true
}

// publish ships batch, reconnecting and retrying until it is acknowledged or ctx ends.
func (p *publisher) publish(ctx context.Context, batch []event) bool {
	wait := p.out.BackoffInit
	backoff := func() bool {
		half := int64(wait / 2)
		d := time.Duration(half + rand.Int64N(half+1))
		if wait *= 2; wait > p.out.BackoffMax {
			wait = p.out.BackoffMax
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for ctx.Err() == nil {
		n := p.nodes[p.next%len(p.nodes)]
		p.next++
		if !n.connected {
			if n.attempts > 0 {
				p.log.info("publisher_pipeline_output", "pipeline/output.go:145", "Attempting to reconnect to %v with %d reconnect attempt(s)", n, n.attempts)
			} else {
				p.log.info("publisher_pipeline_output", "pipeline/output.go:143", "Connecting to %v", n)
			}
			if err := p.connect(ctx, n); err != nil {
				p.log.error("publisher_pipeline_output", "pipeline/output.go:154", "Failed to connect to %v: %v", n, err)
				n.attempts++
				if !backoff() {
					return false
				}
				continue
			}
			p.log.info("publisher_pipeline_output", "pipeline/output.go:151", "Connection to %v established", n)
			n.connected, n.attempts, wait = true, 0, p.out.BackoffInit
		}
		retry, err := p.bulk(ctx, n, batch)
		if err != nil {
			p.log.error("publisher_pipeline_output", "pipeline/output.go:180", "Failed to publish events: %v", err)
			n.connected = false
			if !backoff() {
				return false
			}
			continue
		}
		if len(retry) == 0 {
			return true
		}
		batch = retry
		if !backoff() {
			return false
		}
	}
	return false
}

// connect pings the node (GET /) as libbeat's Connect does and logs its version.
func (p *publisher) connect(ctx context.Context, n *node) error {
	body, err := p.do(ctx, http.MethodGet, n.url.String(), nil)
	if err != nil {
		return err
	}
	var info struct {
		Version struct {
			Number string `json:"number"`
		} `json:"version"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return fmt.Errorf("Elasticsearch returned an invalid response: %w", err)
	}
	p.log.info("esclientleg", "eslegclient/connection.go:314", "Attempting to connect to Elasticsearch version %s", info.Version.Number)
	return nil
}

// bulk sends batch with one _bulk request and returns the events to send again
// (429 and 5xx items); other refused items are dropped with filebeat's warning.
func (p *publisher) bulk(ctx context.Context, n *node, batch []event) ([]event, error) {
	var buf bytes.Buffer
	for _, e := range batch {
		meta, _ := json.Marshal(map[string]any{"index": map[string]any{"_index": e.index}})
		doc, err := json.Marshal(e.doc)
		if err != nil {
			p.log.error("elasticsearch", "elasticsearch/client.go:255", "Failed to encode event: %v", err)
			continue
		}
		buf.Write(meta)
		buf.WriteByte('\n')
		buf.Write(doc)
		buf.WriteByte('\n')
	}
	body, err := p.do(ctx, http.MethodPost, strings.TrimSuffix(n.url.String(), "/")+"/_bulk", &buf)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("failed to parse bulk response: %w", err)
	}
	if !resp.Errors {
		return nil, nil
	}
	var retry []event
	for i, item := range resp.Items {
		if i >= len(batch) {
			break
		}
		for _, r := range item {
			switch {
			case r.Status < 300:
			case r.Status == http.StatusTooManyRequests || r.Status >= 500:
				retry = append(retry, batch[i])
			default:
				doc, _ := json.Marshal(batch[i].doc)
				p.log.warn("elasticsearch", "elasticsearch/client.go:384", "Cannot index event publisher.Event{Content:beat.Event{Fields:%s}} (status=%d): %s", doc, r.Status, r.Error)
			}
		}
	}
	return retry, nil
}

// do makes one request with the output's credentials. Errors read as libbeat 7.10's
// do (built with Go 1.14): `Get "URL": x509: ...` for TLS, and "401 Unauthorized:
// BODY" for a status of 300 or more.
func (p *publisher) do(ctx context.Context, method, u string, body io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Go-http-client/1.1")
	if p.out.Username != "" {
		req.SetBasicAuth(p.out.Username, p.out.Password)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, errors.New(strings.Replace(err.Error(), "tls: failed to verify certificate: ", "", 1))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return b, nil
}
