package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	"go.temporal.io/sdk/temporal"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/workflows"
)

func TestDeployHappyPath(t *testing.T) {
	c := temporalClient(t)
	secretDir := t.TempDir()
	queue := inProcessWorker(t, c, secretDir)
	inst := newInstance(t, instanceOpts{initDelay: time.Second})

	run := startDeploy(t, c, queue, inst)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res workflows.DeployResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("deploy failed: %v", err)
	}
	if res.Version != "6.9.3" {
		t.Errorf("verified version %q, want 6.9.3", res.Version)
	}
	if len(res.GeneratedSecrets) != 3 {
		t.Errorf("generated secrets %v, want admin token, health key and encryption key", res.GeneratedSecrets)
	}

	svcs := services(t, inst.Pebble.Socket)
	for _, name := range append([]string{"platform"}, opencti.WorkerServices(3)...) {
		if svcs[name] == nil || svcs[name].Current != client.StatusActive {
			t.Errorf("service %s not active: %+v", name, svcs[name])
		}
	}
	store := &secrets.Store{Dir: secretDir}
	key, err := store.Resolve(res.Secrets.HealthAccessKey)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(opencti.HealthURL(opencti.Input{Instance: inst, Secrets: opencti.Secrets{HealthAccessKey: key}}))
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health answered %d, want 200", resp.StatusCode)
	}
	pc, _ := client.New(&client.Config{Socket: inst.Pebble.Socket})
	checks, err := pc.Checks(&client.ChecksOptions{Names: []string{opencti.HealthCheck}})
	if err != nil || len(checks) != 1 || checks[0].Level != client.ReadyLevel {
		t.Errorf("ready-level health check not in place: %+v %v", checks, err)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("platform started %d times, want exactly 1", n)
	}

	var st workflows.DeployStatus
	v, err := c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.StatusQuery)
	if err != nil || v.Get(&st) != nil {
		t.Fatalf("status query: %v", err)
	}
	if st.Phase != workflows.PhaseDone || len(st.Dependencies) != 4 {
		t.Errorf("final status %+v", st)
	}
	for _, d := range st.Dependencies {
		if d.State != workflows.DepReady || (d.Version == "" && d.Name != "s3") { // S3 reports no version
			t.Errorf("dependency %s: %+v", d.Name, d)
		}
	}

	// A second deploy of the same instance resumes rather than redoes: nothing is
	// regenerated and the running platform is not restarted.
	run2 := startDeploy(t, c, queue, inst)
	var res2 workflows.DeployResult
	if err := run2.Get(ctx, &res2); err != nil {
		t.Fatalf("redeploy failed: %v", err)
	}
	if len(res2.GeneratedSecrets) != 0 {
		t.Errorf("redeploy regenerated %v", res2.GeneratedSecrets)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("after redeploy the platform started %d times, want 1", n)
	}
}

func TestDeployWrongRabbitMQPasswordFailsFast(t *testing.T) {
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	inst := newInstance(t, instanceOpts{rabbitPwd: "definitely-wrong"})

	start := time.Now()
	run := startDeploy(t, c, queue, inst)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run.Get(ctx, nil)
	if err == nil {
		t.Fatal("deploy with a wrong RabbitMQ password succeeded")
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("error %v is not an application error", err)
	}
	msg := strings.ToLower(err.Error())
	if !strings.Contains(msg, "rabbitmq") || !(strings.Contains(msg, "access_refused") || strings.Contains(msg, "auth")) {
		t.Errorf("error does not name RabbitMQ auth: %v", err)
	}
	// Fail fast: far less than the dependency wait limit (the probe must not retry auth).
	t.Logf("failed after %s: %v", time.Since(start), err)
	if svcs := services(t, inst.Pebble.Socket); len(svcs) != 0 {
		t.Errorf("a failed dependency check still pushed services: %v", svcs)
	}
	st := waitStatus(t, c, run.GetID(), 10*time.Second, "failed", func(s workflows.DeployStatus) bool { return s.Phase == workflows.PhaseFailed })
	if !strings.Contains(st.LastReason, "rabbitmq") {
		t.Errorf("last reason %q does not name rabbitmq", st.LastReason)
	}
}

// privateRedis runs a redis-server on a free port, with the stack's password, so a test
// can have a dependency that is down at the start and comes up later.
func privateRedis(t *testing.T, port int) func() {
	t.Helper()
	var cmd *exec.Cmd
	stop := func() {
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	return func() {
		cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", fmt.Sprint(port),
			"--requirepass", os.Getenv("SOCFLOW_REDIS_PASSWORD"), "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Fatalf("cannot start redis-server: %v", err)
		}
	}
}

func TestDeployWaitsForDependencyThatComesUpLater(t *testing.T) {
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	port := freePort(t)
	startRedis := privateRedis(t, port)
	inst := newInstance(t, instanceOpts{redisPort: port})

	run := startDeploy(t, c, queue, inst)
	st := waitStatus(t, c, run.GetID(), time.Minute, "redis waiting with a reason", func(s workflows.DeployStatus) bool {
		return len(s.Dependencies) == 4 && s.Dependencies[2].State == workflows.DepWaiting && s.Dependencies[2].Reason != ""
	})
	if !strings.Contains(st.Dependencies[2].Reason, "refused") {
		t.Errorf("redis reason %q does not say connection refused", st.Dependencies[2].Reason)
	}
	if st.Phase != workflows.PhaseWaitingDeps {
		t.Errorf("phase %s while redis is down, want %s", st.Phase, workflows.PhaseWaitingDeps)
	}
	if svcs := services(t, inst.Pebble.Socket); len(svcs) != 0 {
		t.Errorf("services pushed before dependencies were ready: %v", svcs)
	}
	startRedis()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res workflows.DeployResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("deploy failed after redis came up: %v", err)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("platform started %d times, want 1", n)
	}
}

// TestDeployWithRealTimings deploys through the stand-ins at their default timings, the
// figures measured on the real 6.9.28 platform (first boot ≈ 102 s, /health up to 15 s,
// workers polling every 60 s): every other test shortens them, so this one proves the
// waits and timeouts fit the real platform.
func TestDeployWithRealTimings(t *testing.T) {
	if testing.Short() {
		t.Skip("a real first boot takes about two minutes")
	}
	c := temporalClient(t)
	secretDir := t.TempDir()
	queue := inProcessWorker(t, c, secretDir)
	inst := newInstance(t, instanceOpts{real: true})
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var res workflows.DeployResult
	if err := startDeploy(t, c, queue, inst).Get(ctx, &res); err != nil {
		t.Fatalf("deploy with real timings failed: %v", err)
	}
	took := time.Since(began)
	t.Logf("deploy with real timings took %s", took.Round(time.Second))
	if took < 100*time.Second {
		t.Errorf("deploy took %s, shorter than the real first boot: the stand-in did not run at its real timings", took)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("platform started %d times, want exactly 1", n)
	}
}
