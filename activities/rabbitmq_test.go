package activities_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

func stackRabbitMQ(t *testing.T) spec.RabbitMQ {
	st := stacktest.Get(t)
	return spec.RabbitMQ{
		Host: st.RabbitMQHost, Port: st.RabbitMQPort, ManagementPort: st.RabbitMQMgmtPort,
		VHost: st.RabbitMQVHost, Username: st.RabbitMQUser, Password: spec.SecretRef(st.RabbitMQPassword),
	}
}

func TestProbeRabbitMQReadyWithOldVersionAllowed(t *testing.T) {
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeRabbitMQ,
		activities.ProbeRabbitMQInput{RabbitMQ: stackRabbitMQ(t), AllowOldDependencies: true})
	requireReady(t, res, err, "below OpenCTI's documented minimum 3.11")
	t.Logf("rabbitmq %s: %s", res.Version, res.Warning)
}

func TestProbeRabbitMQOldVersionRefused(t *testing.T) {
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeRabbitMQ, activities.ProbeRabbitMQInput{RabbitMQ: stackRabbitMQ(t)})
	requirePermanent(t, err, activities.ErrTypeVersionTooOld, "rabbitmq", "3.11", "allowOldDependencies")
}

func TestProbeRabbitMQWrongPassword(t *testing.T) {
	r := stackRabbitMQ(t)
	r.Password = "wrong-password"
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeRabbitMQ, activities.ProbeRabbitMQInput{RabbitMQ: r})
	requirePermanent(t, err, activities.ErrTypeAuthFailed, "rabbitmq", r.Username, "ACCESS_REFUSED", "integrations.rabbitmq.password")
}

func TestProbeRabbitMQUnknownVHost(t *testing.T) {
	r := stackRabbitMQ(t)
	r.VHost = "socflow-no-such-vhost"
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeRabbitMQ, activities.ProbeRabbitMQInput{RabbitMQ: r})
	requirePermanent(t, err, activities.ErrTypeBadConfig, "rabbitmq", "socflow-no-such-vhost")
}

func TestProbeRabbitMQUnreachable(t *testing.T) {
	r := stackRabbitMQ(t)
	r.Port = 1
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeRabbitMQ,
		activities.ProbeRabbitMQInput{RabbitMQ: r, ProbeWindow: activities.ProbeWindow{Window: shortWindow}})
	requireNotReady(t, res, err, "rabbitmq", "amqp://"+unreachable, "connection refused")
}

func TestProbeRabbitMQManagementUnreachable(t *testing.T) {
	r := stackRabbitMQ(t)
	r.ManagementPort = 1
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeRabbitMQ,
		activities.ProbeRabbitMQInput{RabbitMQ: r, ProbeWindow: activities.ProbeWindow{Window: shortWindow}})
	requireNotReady(t, res, err, "management API", "OpenCTI requires it", "connection refused")
}

func TestProbeRabbitMQMissingSecret(t *testing.T) {
	r := stackRabbitMQ(t)
	r.Password = missingEnvRef(t)
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeRabbitMQ, activities.ProbeRabbitMQInput{RabbitMQ: r})
	requirePermanent(t, err, activities.ErrTypeSecretUnavailable, "integrations.rabbitmq.password")
}

// TestProbeRabbitMQNeedsAdministratorTag uses throw-away users that may log in
// over AMQP but lack the administrator tag, with and without the management tag
// (RabbitMQ answers differently).
func TestProbeRabbitMQNeedsAdministratorTag(t *testing.T) {
	for _, tags := range []string{"", "management"} {
		t.Run("tags="+tags, func(t *testing.T) {
			r := stackRabbitMQ(t)
			r.Username = fmt.Sprintf("socflow-test-%d", time.Now().UnixNano())
			r.Password = "test-password"
			addRabbitUser(t, r, tags)
			_, err := runProbe(t, probeEnv(t), nilActs.ProbeRabbitMQ,
				activities.ProbeRabbitMQInput{RabbitMQ: r, AllowOldDependencies: true})
			requirePermanent(t, err, activities.ErrTypeBadConfig, r.Username, "administrator tag", "set_user_tags")
		})
	}
}

// addRabbitUser creates a user with full rights on the stack's vhost through the
// management API, as the stack's administrator, and deletes it when the test ends.
func addRabbitUser(t *testing.T, r spec.RabbitMQ, tags string) {
	t.Helper()
	st := stacktest.Get(t)
	base := fmt.Sprintf("http://%s:%d/api", st.RabbitMQHost, st.RabbitMQMgmtPort)
	call := func(method, path, body string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(st.RabbitMQUser, st.RabbitMQPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: HTTP %d", method, path, resp.StatusCode)
		}
	}
	user := "/users/" + url.PathEscape(r.Username)
	call(http.MethodPut, user, fmt.Sprintf(`{"password":%q,"tags":%q}`, string(r.Password), tags))
	t.Cleanup(func() { call(http.MethodDelete, user, "") })
	call(http.MethodPut, "/permissions/"+url.PathEscape(r.VHost)+"/"+url.PathEscape(r.Username),
		`{"configure":".*","write":".*","read":".*"}`)
}
