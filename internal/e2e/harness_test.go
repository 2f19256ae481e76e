package e2e

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/workerapp"
	"github.com/socflow/socflow/workflows"
)

// bin holds the binaries TestMain builds: the stand-ins Pebble runs, and socflow's own
// worker and starter for the tests that kill or drive them as processes.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "socflow-e2e-bin-")
	if err != nil {
		panic(err)
	}
	for name, pkg := range map[string]string{
		"opencti-standin":        "./internal/standin/opencti",
		"worker-standin":         "./internal/standin/worker",
		"socflow-worker":         "./worker",
		"socflow-starter":        "./starter",
		"socflow-reap":           "./internal/reaper/cmd/socflow-reap",
		"filebeat-standin":       "./internal/standin/filebeat",
		"wazuh-exporter-standin": "./internal/standin/wazuhexporter/cmd/wazuh-exporter",
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "cannot build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instanceOpts varies the test instance.
type instanceOpts struct {
	initDelay time.Duration // the stand-in's first-boot delay
	stopDelay time.Duration // the stand-in's clean stop (0: standinStopTime)
	stopHang  bool          // every stop of the running platform hangs until SIGKILL
	// userAddAnswer holds back userAdd's answers (the stand-in's -user-add-answer-delay).
	userAddAnswer time.Duration
	version       string // "": 6.9.3
	workers       int    // 0: 3
	real          bool   // the stand-ins with their default, real timings (first boot 102 s)
	redisPort     int    // 0: the stack's Redis
	rabbitPwd     string // "": the stack's password (by env reference)
}

// standinStopTime is how long the stand-in takes to stop cleanly in tests (the real
// platform takes about 9 s, the stand-in's default).
const standinStopTime = 100 * time.Millisecond

// newInstance returns a valid spec for a fresh instance on a private Pebble, with the
// stand-in platform and workers, wired to the stack's real dependencies.
func newInstance(t testing.TB, o instanceOpts) opencti.Instance {
	t.Helper()
	st := stacktest.Get(t)
	name := fmt.Sprintf("t%d", time.Now().UnixNano()%1e12)
	workers := cmp.Or(o.workers, 3)
	version := cmp.Or(o.version, "6.9.3")
	inst := opencti.Instance{
		Name: name,
		OpenCTI: opencti.Settings{
			Version: version,
			PlatformCommand: fmt.Sprintf("%s/opencti-standin -version "+version+" -init-delay %s -start-delay 0 -fork-delay 0 -ready-delay 0 -migration-delay 0 -lock-retry 3s -lock-ttl 3s -lock-linger 2s -stop-delay %s -stop-hang %d", bin, o.initDelay, cmp.Or(o.stopDelay, standinStopTime), map[bool]int{false: 0, true: 1}[o.stopHang]) +
				fmt.Sprintf(" -user-add-answer-delay %s", o.userAddAnswer),
			PlatformDir:   t.TempDir(),
			WorkerCommand: bin + "/worker-standin -poll-interval 1s",
			WorkerDir:     t.TempDir(),
			Workers:       &workers,
			Port:          freePort(t),
			MetricsPort:   freePort(t),
			AdminPassword: "local-admin-password",
			// The stack runs RabbitMQ 3.10 and Redis 7.0, below OpenCTI's documented minimums.
			AllowOldDependencies: true,
			Reaper:               bin + "/socflow-reap",
		},
		Pebble:       spec.Pebble{Socket: stacktest.Pebble(t)},
		Integrations: stackIntegrations(st, name+"-files"),
	}
	if o.real {
		inst.OpenCTI.PlatformCommand = bin + "/opencti-standin -version " + version
		inst.OpenCTI.WorkerCommand = bin + "/worker-standin"
	}
	if o.redisPort != 0 {
		inst.Integrations.Redis.Port = o.redisPort
	}
	if o.rabbitPwd != "" {
		inst.Integrations.RabbitMQ.Password = spec.SecretRef(o.rabbitPwd)
	}
	inst = inst.WithDefaults()
	if err := inst.Validate(); err != nil {
		t.Fatalf("test spec invalid: %v", err)
	}
	t.Cleanup(func() { cleanupData(st, name) })
	return inst
}

// stackIntegrations wires an instance to the stack's real dependencies, its files in
// the given bucket.
func stackIntegrations(st stacktest.Stack, bucket string) opencti.Integrations {
	return opencti.Integrations{
		// The index-management plugin cannot be had here (README, "The local stack").
		OpenSearch: &spec.OpenSearch{URLs: []string{st.OpenSearchURL}, AllowMissingModules: []string{"index-management"},
			SnapshotRepository: st.Raw["SOCFLOW_SNAPSHOT_REPOSITORY"]},
		RabbitMQ: &spec.RabbitMQ{Host: st.RabbitMQHost, Port: st.RabbitMQPort, ManagementPort: st.RabbitMQMgmtPort,
			Username: st.RabbitMQUser, Password: "env:SOCFLOW_RABBITMQ_PASSWORD"},
		Redis: &spec.Redis{Host: st.RedisHost, Port: st.RedisPort, Password: "env:SOCFLOW_REDIS_PASSWORD"},
		S3: &spec.S3{Endpoint: st.S3Endpoint, Region: st.S3Region, Bucket: bucket,
			AccessKey: "env:SOCFLOW_S3_ACCESS_KEY", SecretKey: "env:SOCFLOW_S3_SECRET_KEY"},
	}
}

// cleanupData removes what the stand-in created for the instance in the shared stack.
func cleanupData(st stacktest.Stack, name string) { st.RemoveInstanceData(name) }

// quietLogger keeps the SDK's per-activity debug lines out of test output.
func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func freePort(t testing.TB) int { return stacktest.FreePort(t) }

// temporalClient dials the stack's Temporal with the production converters.
func temporalClient(t testing.TB) tclient.Client {
	t.Helper()
	return stacktest.TemporalClient(t, stacktest.Get(t).TemporalAddress, quietLogger())
}

// inProcessWorker runs socflow's worker wiring in the test process on its own queue.
func inProcessWorker(t testing.TB, c tclient.Client, secretDir string) string {
	t.Helper()
	queue := "e2e-" + t.Name()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// The production probe interval, so the benchmark measures what operators get.
		done <- workerapp.Run(ctx, workerapp.Config{TaskQueue: queue, SecretDir: secretDir, InflightDir: secretDir + "-inflight",
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}, c)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	return queue
}

// startDeploy starts DeployOpenCTI the way the starter does.
func startDeploy(t testing.TB, c tclient.Client, queue string, inst opencti.Instance) tclient.WorkflowRun {
	t.Helper()
	run, err := c.ExecuteWorkflow(context.Background(), tclient.StartWorkflowOptions{
		ID: workflows.DeployWorkflowID(inst.Name), TaskQueue: queue,
	}, workflows.DeployOpenCTIWorkflow, workflows.DeployInput{Instance: inst})
	if err != nil {
		t.Fatalf("cannot start deploy: %v", err)
	}
	recordHistory(t, c, run)
	return run
}

// recorded counts the histories a test recorded, to name the files of its runs.
var recorded = map[string]int{}

// recordHistory writes the run's history to $SOCFLOW_RECORD_HISTORIES/<Test>[-N].json
// when the test ends (`make record-histories`): the replay suite's histories come from
// these real runs on the local stack. Runs still open at the end are not recorded.
func recordHistory(t testing.TB, c tclient.Client, run tclient.WorkflowRun) {
	dir := os.Getenv("SOCFLOW_RECORD_HISTORIES")
	if dir == "" {
		return
	}
	name := strings.ReplaceAll(t.Name(), "/", "_")
	recorded[name]++
	if n := recorded[name]; n > 1 {
		name = fmt.Sprintf("%s-%d", name, n)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Logf("not recording %s: still open or gone (%v)", run.GetID(), err)
			return
		}
		var events []*historypb.HistoryEvent
		it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Errorf("cannot record the history of %s: %v", run.GetID(), err)
				return
			}
			events = append(events, e)
		}
		data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
		if err != nil {
			t.Errorf("cannot encode history: %v", err)
			return
		}
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Errorf("cannot write %s: %v", path, err)
		}
		t.Logf("recorded %d events to %s", len(events), path)
	})
}

// historyEvents reads a run's whole history (runID "": the latest run), oldest first.
func historyEvents(tb testing.TB, c tclient.Client, id, runID string) []*historypb.HistoryEvent {
	tb.Helper()
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(context.Background(), id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			tb.Fatalf("cannot read the history of %s: %v", id, err)
		}
		events = append(events, e)
	}
	return events
}

// waitStatus polls the deploy's status query until cond holds or the limit passes.
func waitStatus(t testing.TB, c tclient.Client, id string, limit time.Duration, what string, cond func(workflows.DeployStatus) bool) workflows.DeployStatus {
	t.Helper()
	return waitQuery(t, c, id, limit, 200*time.Millisecond, what, cond)
}

// waitQuery polls the workflow's status query every interval until cond holds or
// limit passes; S is the workflow's status type (DeployStatus, InstanceStatus). A
// short interval keeps a step lasting a few seconds, or a latency being measured,
// from being missed.
func waitQuery[S any](t testing.TB, c tclient.Client, id string, limit, every time.Duration, what string, cond func(S) bool) S {
	t.Helper()
	deadline := time.Now().Add(limit)
	var st S
	for time.Now().Before(deadline) {
		v, err := c.QueryWorkflow(context.Background(), id, "", workflows.StatusQuery)
		var got S // fresh each poll: omitted fields must not keep old values
		if err == nil && v.Get(&got) == nil {
			if st = got; cond(st) {
				return st
			}
		}
		time.Sleep(every)
	}
	t.Fatalf("status of %s never reached %q within %s; last: %+v", id, what, limit, st)
	return st
}

// pebbleClient is a client of the container's Pebble at socket.
func pebbleClient(t testing.TB, socket string) *client.Client {
	t.Helper()
	pc, err := client.New(&client.Config{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// services returns the Pebble state of every service in the container.
func services(t testing.TB, socket string) map[string]*client.ServiceInfo {
	t.Helper()
	infos, err := pebbleClient(t, socket).Services(&client.ServicesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*client.ServiceInfo{}
	for _, i := range infos {
		m[i.Name] = i
	}
	return m
}

// platformStarts counts how often the platform process started, from its own log line.
func platformStarts(t testing.TB, socket string) int {
	t.Helper()
	return logCount(t, socket, opencti.PlatformService, "[OPENCTI] Starting platform")
}

// workerStarts counts how often a worker process started, from its own log line.
func workerStarts(t testing.TB, socket, service string) int {
	t.Helper()
	return logCount(t, socket, service, "Starting worker")
}

// logCount counts the service's log messages that contain s.
func logCount(t testing.TB, socket, service, s string) int {
	t.Helper()
	n := 0
	for _, m := range serviceLogs(t, socket, service) {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

// serviceLogs returns the service's log messages that Pebble keeps, oldest first.
func serviceLogs(t testing.TB, socket, service string) []string {
	t.Helper()
	var out []string
	err := pebbleClient(t, socket).Logs(&client.LogsOptions{Services: []string{service}, N: -1, WriteLog: func(e client.LogEntry) error {
		out = append(out, e.Message)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
