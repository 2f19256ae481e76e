package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	"go.temporal.io/sdk/temporal"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// A platform that exits at start because RabbitMQ is down is reported as crash-looping
// on "rabbitmq seems down" — never as initialising — and the deploy completes once
// RabbitMQ answers again.
func TestPlatformExitingOnRabbitMQDownIsNamedAndWaitedOut(t *testing.T) {
	st := stacktest.Get(t)
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	amqp := newTCPProxy(t, net.JoinHostPort(st.RabbitMQHost, strconv.Itoa(st.RabbitMQPort)))
	inst := newInstance(t, instanceOpts{initDelay: time.Second})
	inst.Integrations.RabbitMQ.Port = amqp.port

	run := startDeploy(t, c, queue, inst)
	// Take RabbitMQ away once the dependency wait has passed, before the platform's
	// own check (a few seconds after its start).
	waitStatus(t, c, run.GetID(), time.Minute, "past the dependency wait", func(s workflows.DeployStatus) bool {
		return s.Phase == workflows.PhaseEnsuringBucket || s.Phase == workflows.PhasePushingPlan ||
			s.Phase == workflows.PhaseStartingPlatform || s.Phase == workflows.PhaseWaitingPlatform
	})
	amqp.down()
	st2 := waitStatus(t, c, run.GetID(), 2*time.Minute, "crash loop on rabbitmq", func(s workflows.DeployStatus) bool {
		return strings.Contains(s.Platform, "rabbitmq seems down")
	})
	if !strings.Contains(st2.Platform, "crash-looping") || strings.Contains(st2.Platform, "initialising") {
		t.Errorf("platform status %q: want it called crash-looping, not initialising", st2.Platform)
	}
	amqp.up()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("deploy did not complete once rabbitmq was back: %v", err)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n < 2 {
		t.Errorf("platform started %d times: the failed start was not observed", n)
	}
}

// A platform killed mid first boot (after its indices, before the migration status that
// makes a platform "existing") fails at every later start with "index already exists".
// Pebble restarts it; socflow names the crash loop from the platform's own error lines,
// then fails the deploy with the fix and stops the platform instead of waiting hours.
// socflow-reap leaves no process behind at any of these exits.
func TestPlatformKilledMidInitFailsWithTheFix(t *testing.T) {
	st := stacktest.Get(t)
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	inst := newInstance(t, instanceOpts{initDelay: 20 * time.Second})
	run := startDeploy(t, c, queue, inst)
	terminateOnFailure(t, c, run.GetID())

	killBeforeMigrationStatus(t, st, inst.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := run.Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypePlatformFailed {
		t.Fatalf("deploy ended with %v, want a %s failure", err, activities.ErrTypePlatformFailed)
	}
	for _, want := range []string{"index already exists", "CONFIGURATION_ERROR", "remove the instance's indices and templates (",
		inst.Name + "_internal_objects-000001", "socflow stopped the platform"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("failure %q does not say %q", err, want)
		}
	}
	if n := platformStarts(t, inst.Pebble.Socket); n > 4 {
		t.Errorf("platform started %d times: socflow should stop a hopeless crash loop within 2 restarts of the kill (+ lock waits)", n)
	}
	if p := services(t, inst.Pebble.Socket)[opencti.PlatformService]; p.Current == client.StatusActive || p.Current == client.StatusBackoff {
		t.Errorf("platform is %s after the permanent failure, want it stopped", p.Current)
	}
	requireNoProcs(t, inst.Name, 5*time.Second)
}

// killBeforeMigrationStatus waits until the platform has created its first index and
// SIGKILLs it before the MigrationStatus document exists: the window in which a real
// first boot must never be interrupted.
func killBeforeMigrationStatus(t *testing.T, st stacktest.Stack, name string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if indexCount(t, st, name) > 0 {
			kill9(t, platformPID(t, name))
			if migrationStatusExists(t, st, name) {
				t.Fatal("the MigrationStatus document was already written when the platform was killed: the kill came too late to test an interrupted first boot")
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the platform created no index within a minute")
}

// indexCount is how many indices of the instance exist.
func indexCount(t *testing.T, st stacktest.Stack, name string) int {
	t.Helper()
	resp, err := http.Get(st.OpenSearchURL + "/_cat/indices/" + name + "_*?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rows []json.RawMessage
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&rows) != nil {
		return 0
	}
	return len(rows)
}

// migrationStatusExists reports whether the platform recorded its schema as complete.
func migrationStatusExists(t *testing.T, st stacktest.Stack, name string) bool {
	t.Helper()
	body := `{"query":{"term":{"entity_type.keyword":"MigrationStatus"}}}`
	resp, err := http.Post(st.OpenSearchURL+"/"+name+"_internal_objects/_search", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
		} `json:"hits"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.Hits.Total.Value > 0
}
