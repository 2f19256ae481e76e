// Package workerapp wires socflow's worker: the Temporal client from the environment,
// metrics, logging, and the registration of every workflow and activity. worker/main.go
// only calls it, and tests reuse it to run a worker in-process.
package workerapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/uber-go/tally/v4"
	"github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	sdktally "go.temporal.io/sdk/contrib/tally"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/codec"
	"github.com/socflow/socflow/internal/inflight"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/workflows"
)

// Config configures a worker; the zero value is usable.
type Config struct {
	// SecretDir is the local secret store (default
	// ${XDG_STATE_HOME:-~/.local/state}/socflow/secrets; FromEnv reads SOCFLOW_SECRET_DIR).
	SecretDir string
	// TaskQueue defaults to workflows.TaskQueue; tests use their own.
	TaskQueue string
	// Logger defaults to JSON on stderr.
	Logger *slog.Logger
	// HTTP is the activities' HTTP client (default: per-call timeouts of the activities).
	HTTP *http.Client
	// ProbeInterval is the pause between readiness probe attempts (default
	// activities.DefaultProbeInterval).
	ProbeInterval time.Duration
	// Health, when set, is marked ready once the worker polls and not ready once it
	// stops (default nil: no probes, as on the local stack).
	Health *Health
	// DeploymentName and BuildID, both set, opt the worker into Worker Versioning as
	// version DeploymentName:BuildID, so a new build takes no task until an operator makes
	// it current (README, "Scaling workers and rolling out a new build"); both empty:
	// unversioned, as on the local stack.
	DeploymentName, BuildID string
	// InflightDir holds the journals of the activity attempts each worker process runs,
	// so a restarted worker retries its dead predecessor's at once (package inflight;
	// default ${XDG_STATE_HOME:-~/.local/state}/socflow/inflight/TASK_QUEUE; FromEnv
	// reads SOCFLOW_INFLIGHT_DIR). In a pod: an emptyDir, which outlives a container.
	InflightDir string
}

// FromEnv reads Config from SOCFLOW_SECRET_DIR, SOCFLOW_TASK_QUEUE,
// SOCFLOW_DEPLOYMENT_NAME, SOCFLOW_BUILD_ID and SOCFLOW_INFLIGHT_DIR.
func FromEnv() Config {
	return Config{SecretDir: os.Getenv("SOCFLOW_SECRET_DIR"), TaskQueue: TaskQueueFromEnv(),
		DeploymentName: os.Getenv("SOCFLOW_DEPLOYMENT_NAME"), BuildID: os.Getenv("SOCFLOW_BUILD_ID"),
		InflightDir: os.Getenv("SOCFLOW_INFLIGHT_DIR")}
}

// workerOptions are the worker's options for cfg, refusing half a versioning setting:
// a build id without a deployment name (or the reverse) would run an unversioned worker
// the operator believes is versioned, and a rollout would then route past it.
func workerOptions(cfg Config) (worker.Options, error) {
	// Workflow task pollers scale with the load (a fixed two by default): a fleet's
	// health checks are workflow tasks and queries, a thousand and more a minute, and
	// two pollers left queries waiting past their bound. Never fewer than two: a lone
	// poller alternates between the sticky queue and the normal one, and a query sent
	// to the sticky queue while it polls the other waited out the sticky timeout (5 s;
	// the starter's progress missed every phase of a deploy that way).
	opts := worker.Options{WorkerStopTimeout: StopTimeout,
		WorkflowTaskPollerBehavior: worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{MinimumNumberOfPollers: 2})}
	switch {
	case cfg.DeploymentName == "" && cfg.BuildID == "":
		return opts, nil
	case cfg.DeploymentName == "":
		return opts, fmt.Errorf("SOCFLOW_BUILD_ID=%s is set but SOCFLOW_DEPLOYMENT_NAME is not: set both for Worker Versioning (e.g. SOCFLOW_DEPLOYMENT_NAME=socflow), or neither", cfg.BuildID)
	case cfg.BuildID == "":
		return opts, fmt.Errorf("SOCFLOW_DEPLOYMENT_NAME=%s is set but SOCFLOW_BUILD_ID is not: set both for Worker Versioning (the build id names this build, e.g. its image tag), or neither", cfg.DeploymentName)
	}
	opts.DeploymentOptions = worker.DeploymentOptions{
		UseVersioning: true,
		Version:       worker.WorkerDeploymentVersion{DeploymentName: cfg.DeploymentName, BuildID: cfg.BuildID},
		// AutoUpgrade, not Pinned: socflow's workflows live for months (an instance
		// workflow never ends; it continues as new), so a pinned one would hold its old
		// build forever. Each moves to the current build at its next workflow task, which
		// is safe because every change of workflow code is guarded by GetVersion and
		// replay-tested against recorded histories (README, "Changing a workflow safely").
		DefaultVersioningBehavior: workflow.VersioningBehaviorAutoUpgrade,
	}
	return opts, nil
}

// StopTimeout bounds a graceful stop: in-flight activities get this long to finish
// before their contexts are cancelled (they are idempotent, and another worker retries
// them after their heartbeat or start-to-close timeout); a pod's
// terminationGracePeriodSeconds must exceed it.
const StopTimeout = 10 * time.Second

// TaskQueueFromEnv is SOCFLOW_TASK_QUEUE, else workflows.TaskQueue; the worker and the
// starter both use it, so a test or a second environment can have queues of its own.
func TaskQueueFromEnv() string {
	if q := os.Getenv("SOCFLOW_TASK_QUEUE"); q != "" {
		return q
	}
	return workflows.TaskQueue
}

func (c Config) withDefaults() Config {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".local", "state")
	}
	if c.SecretDir == "" {
		c.SecretDir = filepath.Join(base, "socflow", "secrets")
	}
	if c.TaskQueue == "" {
		c.TaskQueue = workflows.TaskQueue
	}
	if c.InflightDir == "" {
		// Per task queue: a worker recovers only what workers of its own queue left.
		c.InflightDir = filepath.Join(base, "socflow", "inflight", c.TaskQueue)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return c
}

// Register registers every workflow (RegisterWorkflows) and activity on w; the workflow
// type names are the exported constants of package workflows.
func Register(w worker.Registry, acts *activities.Activities) {
	RegisterWorkflows(w)
	w.RegisterActivity(acts)
}

// NewActivities builds the activities with their clients from cfg.
func NewActivities(cfg Config) *activities.Activities {
	cfg = cfg.withDefaults()
	return &activities.Activities{Secrets: &secrets.Store{Dir: cfg.SecretDir}, HTTP: cfg.HTTP, ProbeInterval: cfg.ProbeInterval}
}

// Converters are the data and failure converters of socflow's worker, starter and
// replayer: histories decode only with the converter that wrote them, so all share them.
type Converters struct {
	// Data encrypts every payload with the codec key ring (when one is configured).
	Data converter.DataConverter
	// Failure moves failure messages and stack traces into encoded payloads too.
	Failure converter.FailureConverter
	// Encrypted says whether a key ring is in use.
	Encrypted bool
}

// Apply sets the converters on client options.
func (c Converters) Apply(opts *client.Options) {
	opts.DataConverter = c.Data
	opts.FailureConverter = c.Failure
}

// LoadConverters builds the converters from SOCFLOW_CODEC_KEYS, the codec key file
// ({"active": ID, "keys": {ID: base64 of 32 bytes}}). Without it payloads are stored in
// clear — acceptable only where no literal secret enters a spec.
var LoadConverters = sync.OnceValues(func() (Converters, error) {
	path := os.Getenv("SOCFLOW_CODEC_KEYS")
	if path == "" {
		dc := codec.DataConverter(nil)
		return Converters{Data: dc, Failure: codec.FailureConverter(dc)}, nil
	}
	ring, err := codec.LoadKeyring(path)
	if err != nil {
		return Converters{}, fmt.Errorf("SOCFLOW_CODEC_KEYS=%s: %w", path, err)
	}
	dc := codec.DataConverter(ring)
	return Converters{Data: dc, Failure: codec.FailureConverter(dc), Encrypted: true}, nil
})

// Dial connects to Temporal with the standard environment configuration
// (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*, TEMPORAL_API_KEY, profiles),
// with the SDK's logs bridged to slog and its metrics to the given handler.
func Dial(ctx context.Context, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return nil, fmt.Errorf("cannot load temporal client settings from the environment: %w", err)
	}
	conv, err := LoadConverters()
	if err != nil {
		return nil, err
	}
	conv.Apply(&opts)
	if logger != nil {
		opts.Logger = log.NewStructuredLogger(logger)
	}
	if metrics != nil {
		opts.MetricsHandler = metrics
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		addr := opts.HostPort
		if addr == "" {
			addr = client.DefaultHostPort
		}
		return nil, fmt.Errorf("cannot connect to temporal at %s (set TEMPORAL_ADDRESS): %w", addr, err)
	}
	return c, nil
}

// PrometheusMetrics serves the SDK's metrics on addr (/metrics) and returns the handler
// to pass to Dial; close the returned closer on shutdown.
func PrometheusMetrics(addr string, logger *slog.Logger) (client.MetricsHandler, func() error, error) {
	reporter, err := prometheus.Configuration{ListenAddress: addr, TimerType: "histogram"}.NewReporter(
		prometheus.ConfigurationOptions{Registry: prom.NewRegistry(), OnError: func(err error) {
			logger.Warn("metrics reporter error", "error", err)
		}})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot serve metrics on %s: %w", addr, err)
	}
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       prometheus.DefaultSeparator,
		SanitizeOptions: &sanitizeOptions,
	}, time.Second)
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), closer.Close, nil
}

// sanitizeOptions are the SDK's Prometheus rules for names and label keys, with label
// values allowed the '-', '.' and ':' Prometheus accepts in them: instance names, deploy
// phases and task queues then read as written (the SDK's own rules turn demo-1 into
// demo_1, and an alert naming the instance would name another).
var sanitizeOptions = func() tally.SanitizeOptions {
	o := sdktally.PrometheusSanitizeOptions
	o.ValueCharacters = tally.ValidCharacters{Ranges: tally.AlphanumericRange, Characters: []rune{'_', '-', '.', ':'}}
	return o
}()

// openJournal opens the worker's in-flight journal. A directory the operator named must
// work; the default one (under the home directory, which an image may keep read-only)
// may fail, and the worker then runs without it: a crashed worker's activities are
// retried at their timeouts, as without socflow's journal, and the log says how to fix it.
func openJournal(cfg Config, explicit bool) (*inflight.Journal, error) {
	j, err := inflight.Open(cfg.InflightDir, cfg.Logger)
	if err != nil && !explicit {
		cfg.Logger.Warn("running without the in-flight journal: after a crash this worker's activities are retried at their timeouts, not at once; set SOCFLOW_INFLIGHT_DIR to a writable directory", "error", err)
		return nil, nil
	}
	return j, err
}

// Run runs a worker on c until ctx is done, then stops it gracefully (in-flight
// activities get the worker's stop timeout to finish).
func Run(ctx context.Context, cfg Config, c client.Client) error {
	explicitInflight := cfg.InflightDir != ""
	cfg = cfg.withDefaults()
	opts, err := workerOptions(cfg)
	if err != nil {
		return err
	}
	journal, err := openJournal(cfg, explicitInflight)
	if err != nil {
		return err
	}
	if journal != nil {
		defer journal.Close()
		opts.Interceptors = append(opts.Interceptors, journal.Interceptor())
	}
	w := worker.New(c, cfg.TaskQueue, opts)
	acts := NewActivities(cfg)
	acts.Temporal = c
	Register(w, acts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("cannot start the worker on task queue %s: %w", cfg.TaskQueue, err)
	}
	if journal != nil {
		// After Start, so this worker already polls for the retries it causes.
		go inflight.Watch(ctx, cfg.InflightDir, c, cfg.Logger, inflight.WatchInterval)
	}
	conv, _ := LoadConverters()
	if !conv.Encrypted {
		cfg.Logger.Warn("payloads are stored in clear: set SOCFLOW_CODEC_KEYS to encrypt workflow histories")
	}
	cfg.Logger.Info("socflow worker started", "taskQueue", cfg.TaskQueue, "secretDir", cfg.SecretDir, "encrypted", conv.Encrypted,
		"inflightDir", cfg.InflightDir, "deploymentName", cfg.DeploymentName, "buildID", cfg.BuildID)
	cfg.Health.started(c)
	<-ctx.Done()
	cfg.Health.started(nil)
	cfg.Logger.Info("socflow worker stopping: polling ends, in-flight activities get the stop timeout to finish", "stopTimeout", StopTimeout.String())
	stopping := time.Now()
	w.Stop()
	cfg.Logger.Info("socflow worker stopped", "took", time.Since(stopping).Round(time.Millisecond).String())
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return ctx.Err()
}
