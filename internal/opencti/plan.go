package opencti

import (
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
)

// Names shared with the activities that push the layer and start services.
const (
	// LayerLabel is the Pebble layer label; ReadyCheck's layer uses it too so
	// that re-adding with combine merges instead of stacking layers.
	LayerLabel = "opencti"
	// PlatformService is the Pebble service running the OpenCTI platform.
	PlatformService = "platform"
	// HealthCheck is the ready-level check added once the platform is healthy.
	HealthCheck = "platform-health"
)

// Stop timing: Pebble sends SIGTERM to the service's process group, waits the
// kill-delay, then sends SIGKILL. A clean stop of the real platform takes about 9 s
// (docs/opencti.md §8) and Pebble's default 5 s cuts it short; some stops hang on
// SIGTERM for more than ten minutes, so the wait is bounded, not open-ended.
const (
	// PlatformKillDelay is how long the platform gets to stop cleanly.
	PlatformKillDelay = 30 * time.Second
	// WorkerKillDelay is how long a worker gets: it only has to finish a message.
	WorkerKillDelay = 10 * time.Second
)

// InstanceEnv is set on every service socflow plans: it names the instance that owns
// the container, so a plan of another instance is recognised before it replaces this one.
const InstanceEnv = "SOCFLOW_INSTANCE"

// Ready-check timing, copied from the charm because it is known to cope with
// slow but healthy platforms.
const (
	healthPeriod    = time.Minute
	healthTimeout   = 20 * time.Second // above the platform's own 15 s dependency timeout
	healthThreshold = 5
)

// Plan is everything to push into the workload container.
type Plan struct {
	// Layer holds the platform and worker services.
	Layer layer.Layer
	// Files must be pushed before the platform starts, in order.
	Files []layer.File
	// Dirs must exist, writable, before the platform starts (it writes its log
	// files under <platformDir>/logs and exits 1 when it cannot).
	Dirs []layer.Dir
	// PlatformDigest identifies the platform service's definition (before the
	// reaper is put in front of its command); socflow-reap logs it at every start,
	// so socflow can tell whether the running platform was started from this plan.
	PlatformDigest string
}

// Secrets are the resolved secret values of an instance; activities resolve
// them so that the plan stays pure. String and LogValue hide them.
type Secrets struct {
	// AdminPassword is opencti.adminPassword's value.
	AdminPassword string `json:"adminPassword,omitempty"`
	// AdminToken is opencti.adminToken's value, or the UUIDv4 socflow generated.
	AdminToken string `json:"adminToken,omitempty"`
	// HealthAccessKey is opencti.healthAccessKey's value, or the generated key.
	HealthAccessKey string `json:"healthAccessKey,omitempty"`
	// EncryptionKey is opencti.encryptionKey's value, or the generated key.
	EncryptionKey string `json:"encryptionKey,omitempty"`
	// OpenSearchPassword is set exactly when integrations.opensearch.password is.
	OpenSearchPassword string `json:"openSearchPassword,omitempty"`
	// OpenSearchCA is the PEM text, set exactly when integrations.opensearch.ca is.
	OpenSearchCA string `json:"openSearchCA,omitempty"`
	// RabbitMQPassword is integrations.rabbitmq.password's value.
	RabbitMQPassword string `json:"rabbitMQPassword,omitempty"`
	// RedisPassword is set exactly when integrations.redis.password is.
	RedisPassword string `json:"redisPassword,omitempty"`
	// S3AccessKey is integrations.s3.accessKey's value.
	S3AccessKey string `json:"s3AccessKey,omitempty"`
	// S3SecretKey is integrations.s3.secretKey's value.
	S3SecretKey string `json:"s3SecretKey,omitempty"`
}

// Input is what a plan is computed from.
type Input struct {
	// Instance must already be defaulted and valid (Load's result).
	Instance Instance
	// Secrets are the values of Instance's secret refs, generated ones included.
	Secrets Secrets
}

// NewPlan computes the layer and files for the platform and its workers, or
// explains why the input cannot be expressed as a plan.
func NewPlan(in Input) (Plan, error) {
	if err := check(in); err != nil {
		return Plan{}, err
	}
	return build(in)
}

// PreviewPlan is the plan of a valid spec with every secret replaced by a stand-in
// naming its reference (generated ones by gen's): a workflow computes it without
// I/O to preview a change, and two previews differ in a secret exactly when its
// reference changed. Its secret values are never pushed anywhere.
func PreviewPlan(inst Instance, gen InstanceSecrets) (Plan, error) {
	if err := inst.Validate(); err != nil {
		return Plan{}, fmt.Errorf("cannot plan opencti: invalid instance spec:\n%w", err)
	}
	s, err := SecretTable.Resolve(&inst, &gen, func(_ string, ref spec.SecretRef) (string, error) {
		return "<" + string(ref) + ">", nil
	})
	if err != nil {
		return Plan{}, err
	}
	return build(Input{Instance: inst, Secrets: s})
}

// build computes the plan of a checked input.
func build(in Input) (Plan, error) {
	o := in.Instance.OpenCTI
	env, err := platformEnv(in)
	if err != nil {
		return Plan{}, err
	}
	platform := layer.Service{
		Summary:     "OpenCTI platform",
		Override:    layer.OverrideReplace,
		Startup:     layer.StartupDisabled,
		Command:     o.PlatformCommand,
		WorkingDir:  o.PlatformDir,
		Environment: env,
		KillDelay:   layer.Duration(PlatformKillDelay),
	}
	digest := platform.Digest()
	if o.Reaper != NoReaper {
		// The reaper kills whatever the platform leaves behind when it exits (the
		// lock child that keeps the init lock for minutes), and logs instance and
		// digest at each start; Pebble signals its whole process group on stop.
		platform.Command = o.Reaper + " --instance " + in.Instance.Name + " --plan " + digest + " -- " + o.PlatformCommand
	}
	services := map[string]layer.Service{PlatformService: platform}
	for i, name := range WorkerServices(*o.Workers) {
		services[name] = layer.Service{
			Summary:  "OpenCTI worker " + strconv.Itoa(i),
			Override: layer.OverrideReplace,
			Startup:  layer.StartupDisabled,
			Command:  o.WorkerCommand,
			// A worker started before the platform crash-loops, hence the ordering.
			After:      []string{PlatformService},
			Requires:   []string{PlatformService},
			WorkingDir: o.WorkerDir,
			KillDelay:  layer.Duration(WorkerKillDelay),
			// socflow's health check restarts a worker that died, rate-limited and
			// recorded, and stops at a worker that dies at every start; Pebble's own
			// restarts would hide the death and never give up.
			OnFailure: layer.ActionIgnore,
			Environment: map[string]string{
				"OPENCTI_URL":      LocalURL(in),
				"OPENCTI_TOKEN":    in.Secrets.AdminToken,
				"WORKER_LOG_LEVEL": string(o.LogLevel),
				InstanceEnv:        in.Instance.Name,
			},
		}
	}
	p := Plan{
		Layer: layer.Layer{
			Summary: "OpenCTI " + o.Version + " for socflow instance " + in.Instance.Name,
			Description: "Managed by socflow: services are started explicitly, the platform first " +
				"and the workers only once it is healthy.",
			Services: services,
		},
		Dirs:           []layer.Dir{{Path: LogsDir(in), Perm: 0o755}},
		PlatformDigest: digest,
	}
	p.Layer = p.Layer.WithLoki(in.Instance.Logs.LokiURL(), spec.LogLabels("opencti", in.Instance.Name))
	if in.Secrets.OpenSearchCA != "" {
		p.Files = append(p.Files, layer.File{Path: openSearchCAPath(in), Content: []byte(in.Secrets.OpenSearchCA), Perm: 0o644})
	}
	return p, nil
}

// ReadyCheck is the layer socflow adds once the platform first answers its
// health URL; added earlier, the check would fail through a long first boot.
func ReadyCheck(in Input) layer.Layer {
	return layer.Layer{
		Summary: "OpenCTI platform readiness",
		Checks: map[string]layer.Check{
			HealthCheck: {
				Override:  layer.OverrideReplace,
				Level:     layer.LevelReady,
				Period:    layer.Duration(healthPeriod),
				Timeout:   layer.Duration(healthTimeout),
				Threshold: healthThreshold,
				HTTP:      &layer.HTTPCheck{URL: HealthURL(in)},
			},
		},
	}
}

// Services names every service a valid spec plans: the platform first, then its
// workers.
func Services(inst Instance) []string {
	return append([]string{PlatformService}, WorkerServices(*inst.OpenCTI.Workers)...)
}

// WorkerService names the i-th worker service (worker-0, worker-1, ...).
func WorkerService(i int) string { return "worker-" + strconv.Itoa(i) }

// WorkerServices names n workers in start order (numeric, not lexical).
func WorkerServices(n int) []string {
	names := make([]string, 0, max(n, 0))
	for i := range n {
		names = append(names, WorkerService(i))
	}
	return names
}

// LocalURL is the platform's URL from inside the container, which workers
// use so that they never depend on the public URL's DNS or proxy.
func LocalURL(in Input) string {
	o := in.Instance.OpenCTI
	return "http://127.0.0.1:" + strconv.Itoa(o.Port) + o.BasePath
}

// HealthURL is the platform's health endpoint with the access key escaped,
// so that a key with reserved characters still reaches OpenCTI intact.
func HealthURL(in Input) string {
	return LocalURL(in) + "/health?health_access_key=" + url.QueryEscape(in.Secrets.HealthAccessKey)
}

// LogsDir is where the platform writes its log files.
func LogsDir(in Input) string { return path.Join(in.Instance.OpenCTI.PlatformDir, "logs") }

// openSearchCAPath is where the platform reads the OpenSearch CA, under its
// own config directory as the charm does.
func openSearchCAPath(in Input) string {
	return path.Join(in.Instance.OpenCTI.PlatformDir, "config", "opensearch.pem")
}

// String hides every value, so a logged Input or Secrets leaks nothing.
func (s Secrets) String() string { return "opencti.Secrets{<redacted>}" }

// GoString hides every value from %#v too.
func (s Secrets) GoString() string { return s.String() }

// WorkersFollow reports whether a change of the platform's definition also needs the
// workers restarted once the platform is healthy again, although their own
// definition did not change: it moved a setting derived from an integration. Workers
// take the RabbitMQ connection the platform advertises when they start and keep it,
// so after the platform comes back with new dependency settings they start over.
func WorkersFollow(platform layer.Change) bool {
	for _, e := range platform.Env {
		if strings.HasPrefix(ReservedEnv[e.Key], "integrations.") {
			return true
		}
	}
	return false
}
