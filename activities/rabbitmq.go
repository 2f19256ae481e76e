package activities

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/socflow/socflow/internal/spec"
)

// ProbeRabbitMQInput is the broker to probe.
type ProbeRabbitMQInput struct {
	// RabbitMQ is the spec's integrations.rabbitmq section, secrets as references.
	RabbitMQ spec.RabbitMQ `json:"rabbitmq"`
	// AllowOldDependencies turns a version below the app's minimum into a warning.
	AllowOldDependencies bool `json:"allowOldDependencies,omitempty"`
	// Requires is the app's minimum versions (unset: OpenCTI's).
	Requires spec.Requirement `json:"requires,omitzero"`
	ProbeWindow
}

// ProbeRabbitMQ waits until the broker accepts OpenCTI's AMQP login on its vhost
// and its management API answers for a user with the administrator tag, the two
// things OpenCTI's start-up check needs and users most often get wrong.
func (a *Activities) ProbeRabbitMQ(ctx context.Context, in ProbeRabbitMQInput) (ProbeResult, error) {
	r := in.RabbitMQ
	if r.Port == 0 {
		r.Port = spec.DefaultRabbitMQPort
	}
	if r.ManagementPort == 0 {
		r.ManagementPort = spec.DefaultManagementPort
	}
	if r.VHost == "" {
		r.VHost = spec.DefaultVHost
	}
	password, err := a.resolve("integrations.rabbitmq.password", r.Password)
	if err != nil {
		return ProbeResult{Dependency: "rabbitmq"}, classify(err)
	}
	var warning string
	res, err := a.poll(ctx, "rabbitmq", in.Window, func(ctx context.Context) (string, error) {
		if err := dialAMQP(ctx, r, password); err != nil {
			return "", err
		}
		version, err := a.rabbitManagement(ctx, r, password)
		if err != nil {
			return "", err
		}
		warning, err = minimumVersion("rabbitmq", version, in.Requires, in.AllowOldDependencies)
		return version, err
	})
	return withWarning(res, err, warning)
}

// dialAMQP opens and closes one AMQP connection, bounded by ctx: amqp091 takes no
// context, so the dialer applies ctx's deadline to the socket for the handshake.
func dialAMQP(ctx context.Context, r spec.RabbitMQ, password string) error {
	scheme := "amqp"
	if r.UseSSL {
		scheme = "amqps"
	}
	addr := net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
	where := scheme + "://" + addr
	cfg := amqp.Config{
		SASL:       []amqp.Authentication{&amqp.PlainAuth{Username: r.Username, Password: password}},
		Vhost:      r.VHost,
		Properties: amqp.Table{"connection_name": "socflow probe"},
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if dl, ok := ctx.Deadline(); ok {
				_ = conn.SetDeadline(dl)
			}
			return conn, nil
		},
	}
	if r.UseSSL {
		cfg.TLSClientConfig = &tls.Config{ServerName: r.Host, MinVersion: tls.VersionTLS12}
	}
	conn, err := amqp.DialConfig(where+"/", cfg)
	if err != nil {
		return amqpError(where, r, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultCallTimeout)
	}
	_ = conn.CloseDeadline(deadline)
	return nil
}

// amqpError tells refused credentials and a refused vhost (permanent: a human must
// fix the user) from a broker that is not up yet.
func amqpError(where string, r spec.RabbitMQ, err error) error {
	var ae *amqp.Error
	switch {
	case errors.Is(err, amqp.ErrVhost), errors.As(err, &ae) && ae.Code == amqp.NotAllowed:
		return &errPermanent{ErrTypeBadConfig, fmt.Errorf(
			"cannot open rabbitmq vhost %q at %s as %s: %w; create the vhost or grant the user permissions on it (rabbitmqctl set_permissions -p %s %s '.*' '.*' '.*')",
			r.VHost, where, r.Username, err, r.VHost, r.Username)}
	case errors.Is(err, amqp.ErrCredentials), errors.As(err, &ae) && ae.Code == amqp.AccessRefused:
		return &errPermanent{ErrTypeAuthFailed, fmt.Errorf(
			"cannot log in to rabbitmq at %s: it refused user %s (ACCESS_REFUSED); check integrations.rabbitmq.username and integrations.rabbitmq.password",
			where, r.Username)}
	case errors.Is(err, amqp.ErrSASL):
		return &errPermanent{ErrTypeBadConfig, fmt.Errorf(
			"cannot log in to rabbitmq at %s: the broker does not offer PLAIN authentication, which OpenCTI uses", where)}
	}
	return fmt.Errorf("cannot reach rabbitmq at %s: %s", where, netReason(err))
}

// rabbitManagement checks the management HTTP API OpenCTI requires and the user's
// administrator tag, and returns the broker version.
func (a *Activities) rabbitManagement(ctx context.Context, r spec.RabbitMQ, password string) (string, error) {
	scheme := "http"
	if r.ManagementSSL {
		scheme = "https"
	}
	base := scheme + "://" + net.JoinHostPort(r.Host, strconv.Itoa(r.ManagementPort))
	var overview struct {
		RabbitMQVersion string `json:"rabbitmq_version"`
	}
	if err := a.rabbitGet(ctx, base, "/api/overview", r.Username, password, &overview); err != nil {
		return "", err
	}
	// /api/whoami needs no extra rights, unlike /api/users/<name>, which a user
	// lacking the administrator tag could not read.
	var who struct {
		Tags json.RawMessage `json:"tags"`
	}
	if err := a.rabbitGet(ctx, base, "/api/whoami", r.Username, password, &who); err != nil {
		return "", err
	}
	if !slices.Contains(rabbitTags(who.Tags), "administrator") {
		return "", &errPermanent{ErrTypeBadConfig, fmt.Errorf(
			"cannot use rabbitmq user %s: it lacks the administrator tag OpenCTI needs; run rabbitmqctl set_user_tags %s administrator",
			r.Username, r.Username)}
	}
	return overview.RabbitMQVersion, nil
}

// rabbitTags reads the user's tags: a list since RabbitMQ 3.9, a comma-separated
// string before.
func rabbitTags(raw json.RawMessage) []string {
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return strings.Split(s, ",")
}

// rabbitGet does one authenticated GET on the management API and decodes the answer.
func (a *Activities) rabbitGet(ctx context.Context, base, path, username, password string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return &errPermanent{ErrTypeInvalidInput, fmt.Errorf("cannot build a rabbitmq management request for %s: %w", base, err)}
	}
	req.SetBasicAuth(username, password)
	resp, err := a.httpClient().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach the rabbitmq management API at %s (OpenCTI requires it): %s", base, netReason(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("cannot read the rabbitmq management API answer to GET %s: %s", path, netReason(err))
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && strings.Contains(strings.ToLower(string(body)), "not management user"):
		// AMQP accepted the password, so the management API refuses the user's tags.
		return &errPermanent{ErrTypeBadConfig, fmt.Errorf(
			"cannot use the rabbitmq management API at %s as %s: the user has no management tag; OpenCTI needs the administrator tag (rabbitmqctl set_user_tags %s administrator)",
			base, username, username)}
	case resp.StatusCode == http.StatusUnauthorized:
		return &errPermanent{ErrTypeAuthFailed, fmt.Errorf(
			"cannot log in to the rabbitmq management API at %s as %s (HTTP 401); check integrations.rabbitmq.username and integrations.rabbitmq.password",
			base, username)}
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("cannot use the rabbitmq management API at %s: GET %s answered HTTP %d", base, path, resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("cannot decode the rabbitmq management API answer to GET %s: %w", path, err)
	}
	return nil
}
