package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/internal/inflight"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// TestDeploySurvivesWorkerKill9 kills the worker process twice mid-deploy: once while a
// dependency is still down, once while the platform is initialising. Each new worker
// resumes from history: no secret is regenerated and the platform is never restarted.
func TestDeploySurvivesWorkerKill9(t *testing.T) {
	c := temporalClient(t)
	secretDir := t.TempDir()
	queue := fmt.Sprintf("e2e-kill9-%d", time.Now().UnixNano())
	port := freePort(t)
	startRedis := privateRedis(t, port)
	inst := newInstance(t, instanceOpts{initDelay: 8 * time.Second, redisPort: port})
	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(100 * time.Millisecond) }

	w1 := startWorkerProcess(t, "worker-1", queue, secretDir)
	run := startDeploy(t, c, queue, inst)
	terminateOnFailure(t, c, run.GetID())

	waitStatus(t, c, run.GetID(), time.Minute, "waiting-dependencies with redis waiting", func(s workflows.DeployStatus) bool {
		return s.Phase == workflows.PhaseWaitingDeps && len(s.Dependencies) == 4 && s.Dependencies[2].Name == "redis" &&
			s.Dependencies[2].State == workflows.DepWaiting && s.Dependencies[2].Reason != ""
	})
	// EnsureInstanceSecrets ran before the dependency wait: this is what it wrote.
	before := readSecretFiles(t, secretDir, inst.Name)

	w1.kill9(t)
	t.Logf("%s: worker-1 killed while redis was down", since())
	startRedis()
	w2 := startWorkerProcess(t, "worker-2", queue, secretDir)

	waitStatus(t, c, run.GetID(), 2*time.Minute, "waiting-platform with the platform service active", func(s workflows.DeployStatus) bool {
		if s.Phase != workflows.PhaseWaitingPlatform {
			return false
		}
		p := services(t, inst.Pebble.Socket)[opencti.PlatformService]
		return p != nil && p.Current == client.StatusActive
	})
	requireInitialising(t, inst)
	w2.kill9(t)
	t.Logf("%s: worker-2 killed while the platform was initialising", since())
	startWorkerProcess(t, "worker-3", queue, secretDir)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var res workflows.DeployResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("deploy failed after two worker kills: %v", err)
	}
	t.Logf("%s: deploy done", since())
	if res.Version != "6.9.3" {
		t.Errorf("verified version %q, want 6.9.3", res.Version)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("platform started %d times, want exactly 1 (never restarted mid-init)", n)
	}
	// A new worker failed the probe its killed predecessor left started instead of
	// waiting for its heartbeat timeout. Not necessarily at both kills: a kill between
	// two probe rounds, or after the server handed the next round to the worker but
	// before it ran it (more likely on the cluster), leaves no journaled attempt.
	if got := crashRetried(t, c, run); len(got) == 0 {
		t.Errorf("no activity retried on a restarted worker's journal after two kills mid-probe")
	}
	if len(res.GeneratedSecrets) != 3 {
		t.Errorf("generated secrets %v, want the 3 of the first run", res.GeneratedSecrets)
	}
	after := readSecretFiles(t, secretDir, inst.Name)
	if ents, err := os.ReadDir(filepath.Join(secretDir, inst.Name)); err != nil || len(ents) != len(before) {
		t.Errorf("secret store holds %d entries (%v), want only the %d secrets", len(ents), err, len(before))
	}
	for name, b := range before {
		a := after[name]
		if !bytes.Equal(a.content, b.content) || !a.mtime.Equal(b.mtime) {
			t.Errorf("secret %s changed after the kills: mtime %s -> %s, same content: %v",
				name, b.mtime, a.mtime, bytes.Equal(a.content, b.content))
		}
	}
	stopAllAndRequireNoProcs(t, inst, secretDir)
}

// TestDeploySurvivesTemporalServerRestart stops the Temporal server while the platform
// is initialising and starts it again on the same port and database: the in-process
// worker's client reconnects by itself and the deploy completes without restarting the
// platform.
func TestDeploySurvivesTemporalServerRestart(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	db := filepath.Join(t.TempDir(), "temporal.db")
	srv := &restartableServer{addr: addr, db: db}
	t.Cleanup(func() { srv.stop(t) })
	srv.start(t)

	// The SDK's warnings (polls failing while the server is down) go to a file, which
	// also proves the worker saw the outage.
	sdkLog := failureLog(t, "sdk.log")
	logger := slog.New(slog.NewTextHandler(sdkLog, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := stacktest.TemporalClient(t, addr, log.NewStructuredLogger(logger))
	secretDir := t.TempDir()
	queue := inProcessWorker(t, c, secretDir)
	inst := newInstance(t, instanceOpts{initDelay: 8 * time.Second})
	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(100 * time.Millisecond) }

	run := startDeploy(t, c, queue, inst)
	waitStatus(t, c, run.GetID(), 2*time.Minute, "waiting-platform", func(s workflows.DeployStatus) bool {
		return s.Phase == workflows.PhaseWaitingPlatform
	})
	requireInitialising(t, inst)
	srv.stop(t)
	t.Logf("%s: temporal server stopped while the platform was initialising", since())
	time.Sleep(2 * time.Second)
	srv.start(t)
	t.Logf("%s: temporal server started again on %s with the same database", since(), addr)

	// No other worker polls this queue on this server: the deploy can only finish if the
	// worker's client reconnected by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var res workflows.DeployResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("deploy failed after the server restart: %v", err)
	}
	b, _ := os.ReadFile(sdkLog.Name())
	failedPolls := bytes.Count(b, []byte("Failed to poll"))
	t.Logf("%s: deploy done; the worker logged %d failed polls during the outage", since(), failedPolls)
	if failedPolls == 0 {
		t.Errorf("the worker's client never saw the server go away; was the server really restarted?")
	}
	if res.Version != "6.9.3" {
		t.Errorf("verified version %q, want 6.9.3", res.Version)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("platform started %d times, want exactly 1", n)
	}
	st := waitStatus(t, c, run.GetID(), 10*time.Second, "done", func(s workflows.DeployStatus) bool { return s.Phase == workflows.PhaseDone })
	for _, d := range st.Dependencies {
		if d.State != workflows.DepReady {
			t.Errorf("dependency %s after restart: %+v", d.Name, d)
		}
	}
	stopAllAndRequireNoProcs(t, inst, secretDir)
}

// crashRetried lists the activities of run whose last attempt followed one a restarted
// worker failed from its dead predecessor's journal (package inflight).
func crashRetried(t testing.TB, c tclient.Client, run tclient.WorkflowRun) []string {
	t.Helper()
	var ids []string
	for _, e := range historyEvents(t, c, run.GetID(), run.GetRunID()) {
		if a := e.GetActivityTaskStartedEventAttributes(); a.GetLastFailure().GetApplicationFailureInfo().GetType() == inflight.ErrorType {
			ids = append(ids, fmt.Sprintf("event %d (attempt %d)", a.GetScheduledEventId(), a.GetAttempt()))
		}
	}
	return ids
}

// requireInitialising fails the test unless the platform service runs but its port is
// still closed: the stand-in opens it only once its first boot is done, so this is the
// moment a crash must not lead to a restart. Failing means the init delay is too short
// for the test to prove anything.
func requireInitialising(t *testing.T, inst opencti.Instance) {
	t.Helper()
	if p := services(t, inst.Pebble.Socket)[opencti.PlatformService]; p == nil || p.Current != client.StatusActive {
		t.Fatalf("platform service not active: %+v", p)
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(inst.OpenCTI.Port)), time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("the platform is already listening, not initialising; the init delay is too short for this test")
	}
}

// workerProcess is bin/socflow-worker running as a process of its own.
type workerProcess struct {
	name string
	cmd  *exec.Cmd
	log  string        // the file its stdout and stderr go to
	done chan struct{} // closed once the process is reaped
}

// startWorkerProcess runs socflow's worker binary against the stack's Temporal on queue,
// with metrics off and its stderr in a file the test log shows on failure; it is stopped
// when the test ends.
func startWorkerProcess(t testing.TB, name, queue, secretDir string) *workerProcess {
	t.Helper()
	return startWorkerProcessAt(t, stacktest.Get(t).TemporalAddress, name, queue, secretDir)
}

// startWorkerProcessAt is startWorkerProcess against the Temporal frontend at address,
// with env (KEY=value) added to its environment.
func startWorkerProcessAt(t testing.TB, address, name, queue, secretDir string, env ...string) *workerProcess {
	t.Helper()
	logf := failureLog(t, name+".log")
	cmd := exec.Command(filepath.Join(bin, "socflow-worker"))
	cmd.Env = append(os.Environ(),
		"TEMPORAL_ADDRESS="+address,
		"SOCFLOW_TASK_QUEUE="+queue,
		"SOCFLOW_SECRET_DIR="+secretDir,
		// Beside the secrets, so the workers that share a test's secrets share their
		// journals too, and a restarted one recovers what its predecessor left.
		"SOCFLOW_INFLIGHT_DIR="+secretDir+"-inflight",
		"SOCFLOW_METRICS_ADDR=",
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", name, err)
	}
	w := &workerProcess{name: name, cmd: cmd, log: logf.Name(), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		select {
		case <-w.done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

// kill9 SIGKILLs the worker and fails the test unless it was still running until then.
func (w *workerProcess) kill9(t testing.TB) {
	t.Helper()
	select {
	case <-w.done:
		t.Fatalf("%s exited on its own before the kill: %v", w.name, w.cmd.ProcessState)
	default:
	}
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatalf("cannot kill %s: %v", w.name, err)
	}
	<-w.done
	if ws, ok := w.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s did not die of SIGKILL: %v", w.name, w.cmd.ProcessState)
	}
}

// failureLog creates a file in the test's temporary directory and shows its content in
// the test log if the test fails.
func failureLog(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			t.Logf("%s:\n%s", name, b)
		}
	})
	return f
}

// terminateOnFailure ends a deploy left running on the shared server by a failed test,
// so no orphaned workflow keeps retrying against a test's stopped Pebble.
func terminateOnFailure(t *testing.T, c tclient.Client, id string) {
	t.Cleanup(func() {
		if t.Failed() {
			_ = c.TerminateWorkflow(context.Background(), id, "", "e2e test failed")
		}
	})
}

// secretFile is one stored secret as found on disk.
type secretFile struct {
	content []byte
	mtime   time.Time
}

// readSecretFiles reads the three generated secrets of an instance from the store.
func readSecretFiles(t *testing.T, dir, instance string) map[string]secretFile {
	t.Helper()
	m := map[string]secretFile{}
	for _, key := range []string{"admin-token", "health-access-key", "encryption-key"} {
		path := filepath.Join(dir, instance, key)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("secret %s: %v", key, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		m[key] = secretFile{content: b, mtime: fi.ModTime()}
	}
	return m
}

// restartableServer is a private Temporal dev server that a test stops and starts
// again on the same address and SQLite database (no database: all in memory), with
// args added to its command line (dynamic config, SQLite pragmas).
type restartableServer struct {
	addr, db string
	args     []string
	srv      *testsuite.DevServer
	n        int
}

// start starts the server; its output goes to a file the test log shows on failure.
func (s *restartableServer) start(t testing.TB) {
	t.Helper()
	s.n++
	out := failureLog(t, fmt.Sprintf("temporal-%d.log", s.n))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  stacktest.Get(t).TemporalBin,
		ClientOptions: &tclient.Options{HostPort: s.addr, Logger: quietLogger()},
		DBFilename:    s.db,
		LogLevel:      "error",
		ExtraArgs:     s.args,
		// The deploy upserts these; unregistered, its workflow task would fail forever.
		SearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchAttrInstance.ValueSet(""), workflows.SearchAttrApp.ValueSet(""), workflows.SearchAttrPhase.ValueSet(""),
			workflows.SearchAttrStatus.ValueSet(""), workflows.SearchAttrHealth.ValueSet("")),
		Stdout: out, Stderr: out,
	})
	if err != nil {
		t.Fatalf("cannot start a Temporal dev server on %s: %v", s.addr, err)
	}
	s.srv = srv
}

// stop stops the running server, if any, and waits for it to exit.
func (s *restartableServer) stop(t testing.TB) {
	t.Helper()
	if s.srv == nil {
		return
	}
	s.srv.Client().Close()
	if err := s.srv.Stop(); err != nil {
		t.Logf("temporal dev server stop: %v", err)
	}
	s.srv = nil
}
