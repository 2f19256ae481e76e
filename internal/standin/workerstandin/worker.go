// Package workerstandin is a test stand-in for the OpenCTI worker (worker.py), not
// product: it reads the worker's environment, never exits when the platform is
// unreachable or refuses its token (it retries every poll interval, 60 s like the
// real one), and, once the platform answers, reads the RabbitMQ host and
// credentials the platform advertises (connectorsForWorker) and consumes every
// push queue directly — so those must resolve from the worker, as with OpenCTI.
//
// Like the real worker it is built for one OpenCTI version (Config.Version) and
// asks connectorsForWorker with its pycti's selection: 6.x reads the connector
// user's api_token, 7.x its api_tokens. Against a platform of another major the
// query fails validation at every poll — a 6.9.28 worker against 7.x logs
// 'Cannot query field "api_token" on type "User".' (GRAPHQL_VALIDATION_FAILED),
// stays alive and consumes nothing (docs/opencti.md §8).
package workerstandin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/socflow/socflow/internal/standin/standinlog"
)

// Config is the worker's environment plus timing knobs for tests.
type Config struct {
	// URL is OPENCTI_URL, the platform's base URL including its base path.
	URL string
	// Token is OPENCTI_TOKEN.
	Token string
	// LogLevel is WORKER_LOG_LEVEL (default info).
	LogLevel slog.Level
	// PollInterval is the pause between two polls of the platform, and between
	// two attempts while it is unreachable (real worker: 60 s).
	PollInterval time.Duration
	// RequestTimeout bounds one GraphQL call (default 10s).
	RequestTimeout time.Duration
	// Stdout receives the JSON log lines (default os.Stdout).
	Stdout io.Writer
	// Version is the OpenCTI release the worker and its pycti are (default
	// DefaultVersion); its major decides the connectorsForWorker selection.
	Version string
}

// DefaultVersion is the worker's version when none is given: 6.9.28, the same
// default as the platform stand-in's (openctistandin.DefaultVersion), since
// platform, workers and connectors must run the same version (§2).
const DefaultVersion = "6.9.28"

// ErrTokenRejected marks a platform that answered AUTH_REQUIRED to the worker's token.
var ErrTokenRejected = errors.New("cannot authenticate to OpenCTI: token rejected (AUTH_REQUIRED)")

// ConfigFromEnv reads OPENCTI_URL, OPENCTI_TOKEN and WORKER_LOG_LEVEL through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{URL: strings.TrimSpace(getenv("OPENCTI_URL")), Token: strings.TrimSpace(getenv("OPENCTI_TOKEN"))}
	if cfg.URL == "" {
		return Config{}, errors.New("cannot start without OPENCTI_URL")
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return Config{}, fmt.Errorf("cannot use OPENCTI_URL=%q: want http(s)://host[:port][/base]", cfg.URL)
	}
	if cfg.Token == "" {
		return Config{}, errors.New("cannot start without OPENCTI_TOKEN")
	}
	lvl, err := standinlog.ParseLevel(getenv("WORKER_LOG_LEVEL"))
	if err != nil {
		return Config{}, fmt.Errorf("cannot use WORKER_LOG_LEVEL: %w", err)
	}
	cfg.LogLevel = lvl
	return cfg, nil
}

// DefaultPollInterval is the real worker's pause between polls and retries.
const DefaultPollInterval = 60 * time.Second

func (c Config) withDefaults() Config {
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	return c
}

// Run polls the platform until ctx ends and returns nil then: an unreachable
// platform, a refused token or a query the platform rejects (another major
// version) is logged and retried after PollInterval, never fatal; only a
// Version that does not parse is an error at once. Each successful poll makes
// sure every advertised push queue has a consumer on a RabbitMQ connection
// opened with the advertised settings.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	log := standinlog.New(cfg.Stdout, cfg.LogLevel)
	major, err := majorVersion(cfg.Version)
	if err != nil {
		log.Error("Invalid configuration", "error", err.Error())
		return err
	}
	c := &client{url: strings.TrimRight(cfg.URL, "/") + "/graphql", token: cfg.Token, http: &http.Client{Timeout: cfg.RequestTimeout},
		connectorsQuery: connectorsQuery(major)}
	w := &worker{log: log, consumers: map[string]bool{}}
	defer w.close()

	log.Info("Starting worker", "url", cfg.URL, "version", cfg.Version)
	connected := false
	for {
		if err := w.poll(ctx, c, &connected); err != nil && ctx.Err() == nil {
			var qe *QueryError
			switch {
			case errors.Is(err, ErrTokenRejected):
				connected = false
				log.Error("OpenCTI API token is invalid or the user is not allowed", "error", err.Error())
			case errors.As(err, &qe):
				// pycti logs the platform's error by its message and name, then
				// raises; the worker's loop sleeps and polls again.
				log.Error(qe.Message, "name", qe.Name)
			default:
				connected = false
				log.Error("OpenCTI API is not reachable. Waiting for OpenCTI API to start or check your configuration...", "error", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			log.Info("Worker stopped")
			return nil
		case <-time.After(cfg.PollInterval):
		}
	}
}

// worker holds the RabbitMQ connection and the queues it consumes.
type worker struct {
	log       *slog.Logger
	conn      *amqp.Connection
	connKey   string
	consumers map[string]bool
}

// poll is one round: health check, connectors, consumers.
func (w *worker) poll(ctx context.Context, c *client, connected *bool) error {
	if _, err := c.about(ctx); err != nil {
		return err
	}
	if !*connected {
		w.log.Info("Worker connected to OpenCTI")
		*connected = true
	}
	connectors, err := c.connectorsForWorker(ctx)
	if err != nil {
		return err
	}
	for _, cn := range connectors {
		if err := w.consume(cn); err != nil {
			w.log.Error("Cannot consume the connector queue", "connector", cn.ID, "queue", cn.Config.Push, "error", err.Error())
		}
	}
	w.log.Debug("Polled OpenCTI", "connectors", len(connectors))
	return nil
}

// consume starts a consumer on the connector's push queue if none runs yet,
// (re)connecting to RabbitMQ with what the platform advertises.
func (w *worker) consume(cn connector) error {
	conf := cn.Config.Connection
	key := fmt.Sprintf("%s:%d/%s@%s/%t", conf.Host, conf.Port, conf.Vhost, conf.User, conf.UseSSL)
	if w.conn == nil || w.conn.IsClosed() || w.connKey != key {
		w.close()
		scheme := "amqp"
		if conf.UseSSL {
			scheme = "amqps"
		}
		uri := amqp.URI{Scheme: scheme, Host: conf.Host, Port: conf.Port, Username: conf.User, Password: conf.Pass, Vhost: conf.Vhost}.String()
		acfg := amqp.Config{Vhost: conf.Vhost, Dial: amqp.DefaultDial(10 * time.Second), Properties: amqp.Table{"connection_name": "opencti-worker-standin"}}
		if conf.UseSSL {
			acfg.TLSClientConfig = &tls.Config{ServerName: conf.Host}
		}
		conn, err := amqp.DialConfig(uri, acfg)
		if err != nil {
			return fmt.Errorf("cannot connect to rabbitmq %s:%d advertised by the platform: %w", conf.Host, conf.Port, err)
		}
		w.conn, w.connKey, w.consumers = conn, key, map[string]bool{}
	}
	if w.consumers[cn.Config.Push] {
		return nil
	}
	ch, err := w.conn.Channel()
	if err != nil {
		return fmt.Errorf("cannot open amqp channel: %w", err)
	}
	msgs, err := ch.Consume(cn.Config.Push, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("cannot consume %s: %w", cn.Config.Push, err)
	}
	w.consumers[cn.Config.Push] = true
	w.log.Info("Worker consuming queue", "connector", cn.ID, "queue", cn.Config.Push)
	go func() {
		for m := range msgs {
			// The stand-in does not import bundles; it acknowledges them, as a
			// worker that processed them would.
			_ = m.Ack(false)
		}
	}()
	return nil
}

func (w *worker) close() {
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}

// client is a minimal GraphQL client: the worker needs two queries, not a library.
type client struct {
	url, token string
	http       *http.Client
	// connectorsQuery is connectorsForWorker as the worker's pycti asks it.
	connectorsQuery string
}

// majorVersion is the first component of a version such as 6.9.28 or 7.260318.0.
func majorVersion(version string) (int, error) {
	head, _, _ := strings.Cut(strings.TrimSpace(version), ".")
	n, err := strconv.Atoi(head)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cannot use worker version %q: want a release such as 6.9.28", version)
	}
	return n, nil
}

// connectorsQuery is pycti's connector.list() of a major version: 6.x reads the
// connector user's api_token, 7.x (where User has no api_token) its api_tokens.
func connectorsQuery(major int) string {
	user := "connector_user { api_token }"
	if major >= 7 {
		user = "connector_user { api_tokens { id name } }"
	}
	return "query GetConnectors { connectorsForWorker { id name " + user + " config { connection { host vhost use_ssl port user pass } push } } }"
}

// QueryError is an error the platform answered, as pycti raises it: the name
// (errors[0].name, e.g. GRAPHQL_VALIDATION_FAILED) and the message.
type QueryError struct {
	// Name is OpenCTI's error name.
	Name string
	// Message is the platform's text.
	Message string
}

// Error names the platform's error as pycti's ValueError shows it.
func (e *QueryError) Error() string {
	return fmt.Sprintf("cannot query OpenCTI: %s (%s)", e.Message, e.Name)
}

// connector is one entry of connectorsForWorker.
type connector struct {
	ID     string `json:"id"`
	Config struct {
		Connection struct {
			Host   string `json:"host"`
			Vhost  string `json:"vhost"`
			UseSSL bool   `json:"use_ssl"`
			Port   int    `json:"port"`
			User   string `json:"user"`
			Pass   string `json:"pass"`
		} `json:"connection"`
		Push string `json:"push"`
	} `json:"config"`
}

// about is pycti's health check (query healthCheck { about { version } }).
func (c *client) about(ctx context.Context) (string, error) {
	var out struct {
		About *struct{ Version string }
	}
	if err := c.query(ctx, "query healthCheck { about { version } }", &out); err != nil {
		return "", err
	}
	if out.About == nil {
		return "", errors.New("cannot query about: empty answer")
	}
	return out.About.Version, nil
}

// connectorsForWorker lists the queues to consume and how to reach RabbitMQ.
func (c *client) connectorsForWorker(ctx context.Context) ([]connector, error) {
	var out struct {
		ConnectorsForWorker []connector `json:"connectorsForWorker"`
	}
	if err := c.query(ctx, c.connectorsQuery, &out); err != nil {
		return nil, err
	}
	return out.ConnectorsForWorker, nil
}

// query posts one GraphQL query and decodes data into out; errors[0].name
// AUTH_REQUIRED becomes ErrTokenRejected.
func (c *client) query(ctx context.Context, query string, out any) error {
	body, _ := json.Marshal(map[string]string{"query": query})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("cannot build request to %s: %w", c.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach OpenCTI at %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cannot query OpenCTI at %s: %s", c.url, resp.Status)
	}
	var env struct {
		Data   json.RawMessage
		Errors []struct {
			Message string
			Name    string
		}
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("cannot decode OpenCTI answer: %w", err)
	}
	if len(env.Errors) > 0 {
		if env.Errors[0].Name == "AUTH_REQUIRED" {
			return ErrTokenRejected
		}
		return &QueryError{Name: env.Errors[0].Name, Message: env.Errors[0].Message}
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("cannot decode OpenCTI data: %w", err)
	}
	return nil
}
