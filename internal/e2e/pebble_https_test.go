package e2e

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// TestDeployThroughPebbleHTTPS deploys into the stack's opencti-https container through
// its Pebble's HTTPS API only (pinned server identity, registered client identity),
// the way a worker outside the workload pod would; and checks that a wrong pin and an
// unknown client identity fail at once, naming the setting to fix. It is the only test
// that deploys into that shared container, whose services it stops at the end.
func TestDeployThroughPebbleHTTPS(t *testing.T) {
	ph := stacktest.Get(t).PebbleHTTPS
	remote := spec.Pebble{URL: ph.URL, ServerCert: spec.SecretRef("file:" + ph.ServerCert),
		ClientCert: spec.SecretRef("file:" + ph.ClientCert), ClientKey: spec.SecretRef("file:" + ph.ClientKey)}

	t.Run("wrong server pin", func(t *testing.T) {
		other := stacktest.NewTestCert(t, "another-pebble-identity", &x509.Certificate{
			Subject: pkix.Name{CommonName: "another-pebble"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		})
		p := remote
		p.ServerCert = spec.SecretRef("file:" + other.Cert)
		err := startNoService(t, p)
		requirePermanentError(t, err, activities.ErrTypeBadConfig, "pebble.serverCert", ph.URL, "does not present the pinned identity")
	})

	t.Run("unregistered client identity", func(t *testing.T) {
		stranger := stacktest.NewTestCert(t, "socflow-unregistered", nil)
		p := remote
		p.ClientCert, p.ClientKey = spec.SecretRef("file:"+stranger.Cert), spec.SecretRef("file:"+stranger.Key)
		err := startNoService(t, p)
		requirePermanentError(t, err, activities.ErrTypeBadConfig, "pebble.clientCert", "CN=socflow-unregistered",
			"HTTP 401", "pebble add-identities")
	})

	t.Run("deploy", func(t *testing.T) {
		// The stack's opencti-https container outlives test runs, and socflow refuses a
		// container another instance owns (a run that died, or a test of another
		// checkout): a restarted Pebble forgets every layer added through its API and
		// keeps its identities, so each run starts from an empty container.
		stacktest.Service(t, "restart", "pebble-opencti-https")
		t.Cleanup(func() { stopAllServices(t, ph.Socket) })
		c := temporalClient(t)
		secretDir := t.TempDir()
		queue := inProcessWorker(t, c, secretDir)
		inst := newInstance(t, instanceOpts{initDelay: time.Second})
		inst.Pebble = remote
		if err := inst.Validate(); err != nil {
			t.Fatalf("test spec invalid: %v", err)
		}

		run := startDeploy(t, c, queue, inst)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var res workflows.DeployResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("deploy through %s failed: %v", ph.URL, err)
		}
		if res.Version != "6.9.3" {
			t.Errorf("verified version %q, want 6.9.3", res.Version)
		}
		// Read back through the container's socket: the deploy itself had only HTTPS.
		svcs := services(t, ph.Socket)
		for _, name := range opencti.Services(inst) {
			if svcs[name] == nil || svcs[name].Current != client.StatusActive {
				t.Errorf("service %s not active: %+v", name, svcs[name])
			}
		}
		pc, err := client.New(&client.Config{Socket: ph.Socket})
		if err != nil {
			t.Fatal(err)
		}
		checks, err := pc.Checks(&client.ChecksOptions{Names: []string{opencti.HealthCheck}})
		if err != nil || len(checks) != 1 || checks[0].Level != client.ReadyLevel {
			t.Errorf("ready-level health check not in place: %+v %v", checks, err)
		}
	})
}

// startNoService runs StartPebbleServices for a service no container has, through a
// test activity environment: reaching Pebble is what is tested, and "no such service"
// would prove the call got through without changing anything.
func startNoService(t *testing.T, p spec.Pebble) error {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Activities{Secrets: &secrets.Store{Dir: t.TempDir()}})
	var acts *activities.Activities
	_, err := env.ExecuteActivity(acts.StartPebbleServices,
		activities.StartPebbleServicesInput{Pebble: p, Services: []string{"socflow-no-such-service"}})
	return err
}

// requirePermanentError asserts a non-retryable ApplicationError of errType whose
// message contains every one of want.
func requirePermanentError(t *testing.T, err error, errType string, want ...string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != errType || !appErr.NonRetryable() {
		t.Fatalf("got %v, want a non-retryable %s", err, errType)
	}
	t.Logf("%s: %s", errType, appErr.Error())
	for _, w := range want {
		if !strings.Contains(appErr.Error(), w) {
			t.Errorf("error %q does not mention %q", appErr.Error(), w)
		}
	}
}

// stopAllServices stops every active service of the container's Pebble and waits.
func stopAllServices(t testing.TB, socket string) {
	t.Helper()
	pc, err := client.New(&client.Config{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	infos, err := pc.Services(&client.ServicesOptions{})
	if err != nil {
		t.Fatalf("cannot list the services of %s: %v", socket, err)
	}
	var active []string
	for _, i := range infos {
		if i.Current == client.StatusActive || i.Current == client.StatusBackoff {
			active = append(active, i.Name)
		}
	}
	if len(active) == 0 {
		return
	}
	id, err := pc.Stop(&client.ServiceOptions{Names: active})
	if err != nil {
		t.Fatalf("cannot stop %v in %s: %v", active, socket, err)
	}
	if _, err := pc.WaitChange(id, &client.WaitChangeOptions{Timeout: time.Minute}); err != nil {
		t.Errorf("stopping %v in %s: %v", active, socket, err)
	}
}
