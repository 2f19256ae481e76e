package openctistandin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitBackend is the broker; OpenCTI needs AMQP and the management HTTP API.
type rabbitBackend struct {
	cfg  RabbitMQConfig
	http *http.Client
}

// Exchanges OpenCTI declares on first boot; connector registration later binds
// listen_<id> and push_<id> queues to them.
const (
	connectorExchange = "amqp.connector.exchange"
	workerExchange    = "amqp.worker.exchange"
)

// amqpDialTimeout bounds TCP connect plus AMQP handshake; amqp091 takes no context.
const amqpDialTimeout = 5 * time.Second

func newRabbitBackend(cfg RabbitMQConfig) *rabbitBackend {
	return &rabbitBackend{cfg: cfg, http: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
}

func (r *rabbitBackend) label() string   { return "RabbitMq" }
func (r *rabbitBackend) product() string { return "RabbitMQ" }

// minimum is RabbitMQ 3.11 as OpenCTI documents.
func (r *rabbitBackend) minimum(string) string { return "3.11" }

// amqpURI is amqp(s)://user:pass@host:port/vhost with the vhost escaped ("/" -> %2F).
func (r *rabbitBackend) amqpURI() string {
	scheme := "amqp"
	if r.cfg.UseSSL {
		scheme = "amqps"
	}
	return amqp.URI{Scheme: scheme, Host: r.cfg.Hostname, Port: r.cfg.Port,
		Username: r.cfg.Username, Password: r.cfg.Password, Vhost: r.cfg.VHost}.String()
}

// dial opens an AMQP connection; the vhost is set explicitly so "/" is never
// mangled by URI round-trips.
func (r *rabbitBackend) dial(ctx context.Context) (*amqp.Connection, error) {
	timeout := amqpDialTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	cfg := amqp.Config{Vhost: r.cfg.VHost, Dial: amqp.DefaultDial(timeout), Properties: amqp.Table{"connection_name": "opencti-standin"}}
	if r.cfg.UseSSL {
		cfg.TLSClientConfig = &tls.Config{ServerName: r.cfg.Hostname}
	}
	conn, err := amqp.DialConfig(r.amqpURI(), cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to amqp://%s/%s as %s: %w",
			net.JoinHostPort(r.cfg.Hostname, strconv.Itoa(r.cfg.Port)), r.cfg.VHost, r.cfg.Username, err)
	}
	return conn, nil
}

// check dials AMQP (proving credentials and vhost) and reads the management
// overview (proving the plugin is on and the user may use it), returning the version.
func (r *rabbitBackend) check(ctx context.Context) (string, error) {
	conn, err := r.dial(ctx)
	if err != nil {
		return "", err
	}
	_ = conn.Close()
	return r.overviewVersion(ctx)
}

// overviewVersion calls GET /api/overview with basic auth.
func (r *rabbitBackend) overviewVersion(ctx context.Context) (string, error) {
	scheme := "http"
	if r.cfg.ManagementSSL {
		scheme = "https"
	}
	url := fmt.Sprintf("%s://%s/api/overview", scheme, net.JoinHostPort(r.cfg.Hostname, strconv.Itoa(r.cfg.PortManagement)))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("cannot build management API request: %w", err)
	}
	req.SetBasicAuth(r.cfg.Username, r.cfg.Password)
	resp, err := r.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach rabbitmq management API: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("cannot use rabbitmq management API %s: %s: %s", url, resp.Status, truncate(string(body), 200))
	}
	var overview struct {
		RabbitMQVersion string `json:"rabbitmq_version"`
	}
	if err := json.Unmarshal(body, &overview); err != nil {
		return "", fmt.Errorf("cannot decode rabbitmq management overview: %w", err)
	}
	return overview.RabbitMQVersion, nil
}

// declareExchanges declares OpenCTI's two direct, durable exchanges; declaring
// is idempotent in AMQP, so a re-run is harmless.
func (r *rabbitBackend) declareExchanges(ctx context.Context) error {
	conn, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("cannot open amqp channel: %w", err)
	}
	defer ch.Close()
	for _, name := range []string{connectorExchange, workerExchange} {
		if err := ch.ExchangeDeclare(name, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
			return fmt.Errorf("cannot declare exchange %s: %w", name, err)
		}
	}
	return nil
}

// truncate keeps error texts from carrying whole HTML pages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
