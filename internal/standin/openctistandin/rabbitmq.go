package openctistandin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitBackend is the broker: AMQP for the platform, the management API only
// for about.dependencies.
type rabbitBackend struct {
	cfg  RabbitMQConfig
	http *http.Client
}

// Exchanges OpenCTI declares; connector registration binds listen_<id> and
// push_<id> queues to them. RABBITMQ__QUEUE_PREFIX prefixes both.
const (
	connectorExchange = "amqp.connector.exchange"
	workerExchange    = "amqp.worker.exchange"
)

// backgroundTaskQueues is OpenCTI's default app:task_scheduler:max_queues_breakdown.
const backgroundTaskQueues = 4

// amqpDialTimeout bounds TCP connect plus AMQP handshake; amqp091 takes no context.
const amqpDialTimeout = 5 * time.Second

// managementTimeout bounds the management call behind about.dependencies.
const managementTimeout = 5 * time.Second

func newRabbitBackend(cfg RabbitMQConfig) *rabbitBackend {
	return &rabbitBackend{cfg: cfg, http: &http.Client{Timeout: managementTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}}
}

func (r *rabbitBackend) label() string { return "RabbitMQ" }

// report is OpenCTI's rabbitMQIsAlive error.
func (r *rabbitBackend) report(err error) error {
	return newError(DatabaseErrorName, "RabbitMQ seems down", err, nil, nil)
}

// prefixed applies RABBITMQ__QUEUE_PREFIX as OpenCTI's RABBIT_QUEUE_PREFIX ("<p>_").
func (r *rabbitBackend) prefixed(name string) string {
	if r.cfg.QueuePrefix == "" {
		return name
	}
	return r.cfg.QueuePrefix + "_" + name
}

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

// check is OpenCTI's rabbitMQIsAlive: AMQP only, asserting the connector
// exchange. The management API is not needed to start.
func (r *rabbitBackend) check(ctx context.Context) (string, error) {
	return "", r.withChannel(ctx, func(ch *amqp.Channel) error { return r.declareExchanges(ch, connectorExchange) })
}

// version is getRabbitMQVersion: the management API's version, or
// "Disconnected" when it does not answer (wrong port, plugin off).
func (r *rabbitBackend) version(ctx context.Context) string {
	v, err := r.overviewVersion(ctx)
	if err != nil || v == "" {
		return "Disconnected"
	}
	return v
}

// overviewVersion calls GET /api/overview.
func (r *rabbitBackend) overviewVersion(ctx context.Context) (string, error) {
	url := r.managementURL("/api/overview")
	resp, err := r.managementGet(ctx, url)
	if err != nil {
		return "", err
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

// managementURL is the management API's address of path, over https when
// RABBITMQ__MANAGEMENT_SSL says so.
func (r *rabbitBackend) managementURL(path string) string {
	scheme := "http"
	if r.cfg.ManagementSSL {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(r.cfg.Hostname, strconv.Itoa(r.cfg.PortManagement)) + path
}

// managementGet sends GET u with the broker's credentials (basic auth, as
// OpenCTI's management calls); the caller closes the body.
func (r *rabbitBackend) managementGet(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot build management API request: %w", err)
	}
	req.SetBasicAuth(r.cfg.Username, r.cfg.Password)
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach rabbitmq management API: %w", err)
	}
	return resp, nil
}

// internalQueue is one of the queues OpenCTI creates at every boot for its own
// consumers (initializeInternalQueues); workers consume their push queues.
type internalQueue struct {
	id, name, scope string
	listen          bool
}

// internalQueues are background-task-0..3 (listen and push), sync and playbook (push).
func internalQueues() []internalQueue {
	var qs []internalQueue
	for i := range backgroundTaskQueues {
		qs = append(qs, internalQueue{id: fmt.Sprintf("background-task-%d", i), name: "Internal background task", scope: "background-task", listen: true})
	}
	return append(qs,
		internalQueue{id: "sync", name: "Internal sync manager", scope: "sync"},
		internalQueue{id: "playbook", name: "Internal playbook manager", scope: "playbook"})
}

// queue names of an internal or registered connector, as connectorConfig builds them.
func (r *rabbitBackend) pushQueue(id string) string     { return r.prefixed("push_" + id) }
func (r *rabbitBackend) listenQueue(id string) string   { return r.prefixed("listen_" + id) }
func (r *rabbitBackend) pushRouting(id string) string   { return r.prefixed("push_routing_" + id) }
func (r *rabbitBackend) listenRouting(id string) string { return r.prefixed("listen_routing_" + id) }

// initializeQueues declares OpenCTI's two durable direct exchanges and its fixed
// internal queues with their bindings; declaring is idempotent, so every boot
// does it. Without RABBITMQ__QUEUE_PREFIX two platforms on one broker share them.
func (r *rabbitBackend) initializeQueues(ctx context.Context) error {
	return r.withChannel(ctx, func(ch *amqp.Channel) error {
		if err := r.declareExchanges(ch, connectorExchange, workerExchange); err != nil {
			return err
		}
		for _, q := range internalQueues() {
			args := amqp.Table{"name": q.name, "config": amqp.Table{"id": q.id, "type": "internal", "scope": q.scope}, "x-queue-type": r.cfg.QueueType}
			if err := r.declareQueues(ch, q.id, q.listen, args); err != nil {
				return err
			}
		}
		return nil
	})
}

// declareExchanges declares the named exchanges, durable and direct, under
// RABBITMQ__QUEUE_PREFIX.
func (r *rabbitBackend) declareExchanges(ch *amqp.Channel, names ...string) error {
	for _, name := range names {
		if err := ch.ExchangeDeclare(r.prefixed(name), amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
			return fmt.Errorf("cannot declare exchange %s: %w", r.prefixed(name), err)
		}
	}
	return nil
}

// declareQueues declares listen_<id> (when listen) bound to the connector
// exchange with listen_routing_<id>, then push_<id> bound to the worker exchange
// with push_routing_<id>: durable, not exclusive, not auto-deleted, carrying args
// as queue arguments. A registered connector and an internal queue get the same
// queues; only their arguments differ.
func (r *rabbitBackend) declareQueues(ch *amqp.Channel, id string, listen bool, args amqp.Table) error {
	type binding struct{ name, routing, exchange string }
	var queues []binding
	if listen {
		queues = append(queues, binding{r.listenQueue(id), r.listenRouting(id), r.prefixed(connectorExchange)})
	}
	queues = append(queues, binding{r.pushQueue(id), r.pushRouting(id), r.prefixed(workerExchange)})
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, args); err != nil {
			return fmt.Errorf("cannot declare queue %s: %w", q.name, err)
		}
		if err := ch.QueueBind(q.name, q.routing, q.exchange, false, nil); err != nil {
			return fmt.Errorf("cannot bind queue %s: %w", q.name, err)
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

// withChannel runs fn on a fresh AMQP channel, as OpenCTI's amqpExecute opens a
// connection per operation.
func (r *rabbitBackend) withChannel(ctx context.Context, fn func(ch *amqp.Channel) error) error {
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
	return fn(ch)
}

// register is OpenCTI's registerConnectorQueues: both direct exchanges, then
// listen_<id> bound to the connector exchange with listen_routing_<id> and
// push_<id> bound to the worker exchange with push_routing_<id> — durable, not
// exclusive, not auto-deleted, carrying the connector's name and config as
// queue arguments — all under RABBITMQ__QUEUE_PREFIX.
func (r *rabbitBackend) register(ctx context.Context, id, name, connectorType string, scope []string) error {
	scopes := make([]any, len(scope))
	for i, s := range scope {
		scopes[i] = s
	}
	args := amqp.Table{"name": name, "config": amqp.Table{"id": id, "type": connectorType, "scope": scopes}, "x-queue-type": r.cfg.QueueType}
	return r.withChannel(ctx, func(ch *amqp.Channel) error {
		if err := r.declareExchanges(ch, connectorExchange, workerExchange); err != nil {
			return err
		}
		return r.declareQueues(ch, id, true, args)
	})
}

// unregister is OpenCTI's unregisterConnector: both queues deleted, messages
// and all (deleting a queue that is not there succeeds).
func (r *rabbitBackend) unregister(ctx context.Context, id string) error {
	return r.withChannel(ctx, func(ch *amqp.Channel) error {
		for _, q := range []string{r.listenQueue(id), r.pushQueue(id)} {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				return fmt.Errorf("cannot delete queue %s: %w", q, err)
			}
		}
		return nil
	})
}

// purge empties both queues, as purgeConnectorQueues does through the
// management API.
func (r *rabbitBackend) purge(ctx context.Context, id string) error {
	return r.withChannel(ctx, func(ch *amqp.Channel) error {
		for _, q := range []string{r.pushQueue(id), r.listenQueue(id)} {
			if _, err := ch.QueuePurge(q, false); err != nil {
				return fmt.Errorf("cannot purge queue %s: %w", q, err)
			}
		}
		return nil
	})
}

// details is getConnectorQueueDetails: the push queue's messages and
// message_bytes from the management API, 0 and 0 when it does not answer.
func (r *rabbitBackend) details(ctx context.Context, id string) (float64, float64) {
	resp, err := r.managementGet(ctx, r.managementURL("/api/queues/"+url.PathEscape(r.cfg.VHost)+"/"+url.PathEscape(r.pushQueue(id))))
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	var q struct {
		Messages     float64 `json:"messages"`
		MessageBytes float64 `json:"message_bytes"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&q) != nil {
		return 0, 0
	}
	return q.Messages, q.MessageBytes
}
