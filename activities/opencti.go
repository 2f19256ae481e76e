package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/openctiapi"
	"github.com/socflow/socflow/internal/spec"
)

// WaitOpenCTIHealthyInput names the platform to wait for.
type WaitOpenCTIHealthyInput struct {
	// Instance is the defaulted, validated spec.
	Instance opencti.Instance `json:"instance"`
	// HealthAccessKey refers to the key of the /health endpoint.
	HealthAccessKey spec.SecretRef `json:"healthAccessKey"`
	// PlatformDigest is the digest of the platform definition socflow applied
	// (ApplyOpenCTIPlanResult); when set, a platform started from another plan is
	// reported instead of waited on.
	PlatformDigest string `json:"platformDigest,omitempty"`
	// Since is when this workflow started the platform: exits before it are
	// another run's, and are not counted as this run's crash loop.
	Since time.Time `json:"since,omitzero"`
	ProbeWindow
}

// HealthCallTimeout bounds one /health call: the platform answers only after its own
// 15 s timeout when a dependency hangs, and that answer names the dependency.
const HealthCallTimeout = 20 * time.Second

// platformLogLines is how much of the platform's output the wait reads to find its
// start attempts: enough for several failed starts of the real platform.
const platformLogLines = 400

// WaitOpenCTIHealthy polls the platform's /health until it answers 200. Not listening
// yet is either initialising (first boot takes minutes, migrations hours: keep waiting,
// never restart it) or crash-looping: the platform's own output, as Pebble keeps it,
// tells which. A start that fails because a dependency is down or the init lock is
// held is waited on and named; one that no restart can fix (indices left by a killed
// first boot, an invalid token, data too recent) is permanent, with the fix. 503 means
// a dependency is down: keep waiting and say which. 401 means the key is wrong:
// waiting cannot fix that, so it is permanent.
func (a *Activities) WaitOpenCTIHealthy(ctx context.Context, in WaitOpenCTIHealthyInput) (ProbeResult, error) {
	key, err := a.resolve("opencti.healthAccessKey", in.HealthAccessKey)
	if err != nil {
		return ProbeResult{Dependency: "opencti"}, classify(err)
	}
	ep, err := a.pebble(in.Instance.Pebble)
	if err != nil {
		return ProbeResult{Dependency: "opencti"}, classify(err)
	}
	api := &openctiapi.Client{BaseURL: opencti.LocalURL(opencti.Input{Instance: in.Instance}), HTTP: &http.Client{Timeout: HealthCallTimeout}}
	w := &platformWatch{a: a, ep: ep, in: in}
	res, err := a.pollWith(ctx, "opencti", in.Window, HealthCallTimeout, func(ctx context.Context) (string, error) {
		w.signs = nil
		status, body, err := api.Health(ctx, key)
		if err != nil {
			if !isConnRefused(err) {
				return "", fmt.Errorf("health endpoint did not answer: %w", err)
			}
			return "", w.notListening(ctx)
		}
		switch status {
		case openctiapi.HealthOK:
			return "", w.checkPlan(ctx)
		case openctiapi.HealthDependency:
			return "", fmt.Errorf("platform reports a dependency down (HTTP 503): %s", body)
		case openctiapi.HealthKeyRejected:
			return "", &errPermanent{ErrTypeHealthKeyRejected,
				errors.New("platform rejected the health access key (HTTP 401): the platform runs with another APP__HEALTH_ACCESS_KEY than socflow stored")}
		}
		return "", fmt.Errorf("unexpected health answer: %s", body)
	})
	if !res.Ready {
		res.Migration = w.signs
	}
	return res, err
}

// MigrationSigns are the signs of life of a platform that migrates with its port
// closed (docs/opencti.md §8): where its migration lines are, and the init lock's TTL,
// which a working platform keeps refreshing. The workflow compares them across rounds
// to tell a slow migration from a hung one.
type MigrationSigns struct {
	// Progress is where the migration is, from its lines ("migrating: 2 of 5 migrations done (last …)").
	Progress string `json:"progress"`
	// LockTTL is the init lock's remaining lifetime when read; 0 when it is not held
	// (or could not be read).
	LockTTL time.Duration `json:"lockTTL,omitempty"`
	// ReadAt is when LockTTL was read.
	ReadAt time.Time `json:"readAt"`
}

// platformWatch reads the platform service's state and output for one wait.
type platformWatch struct {
	a  *Activities
	ep pebbleEndpoint
	in WaitOpenCTIHealthyInput
	// signs are the last poll's signs of a migration, nil when it was not migrating.
	signs *MigrationSigns
}

// notListening explains a closed port: initialising, crash-looping (and why), or
// a failure no restart fixes.
func (w *platformWatch) notListening(ctx context.Context) error {
	infos, err := w.ep.services(ctx, []string{opencti.PlatformService})
	if err != nil {
		return fmt.Errorf("platform not listening yet, and %w", err)
	}
	info := infos[opencti.PlatformService]
	entries, err := w.ep.logs(ctx, []string{opencti.PlatformService}, platformLogLines)
	if err != nil {
		return fmt.Errorf("platform not listening yet, and %w", err)
	}
	attempts := w.attempts(entries)
	if err := w.foreign(attempts); err != nil {
		return err
	}
	return w.verdict(ctx, info, attempts)
}

// attempts are the platform's start attempts since the workflow started it.
func (w *platformWatch) attempts(entries []client.LogEntry) []openctiapi.Attempt {
	all := openctiapi.Attempts(w.entryLines(entries))
	// A second of slack: Pebble stamps lines when it reads them, the workflow its
	// own clock when it asked for the start.
	since := w.in.Since.Add(-time.Second)
	return slices.DeleteFunc(all, func(a openctiapi.Attempt) bool { return !w.in.Since.IsZero() && a.Start.Before(since) })
}

// verdict turns the service state and the attempts into a reason to keep waiting
// or a permanent error. It never calls a process that keeps exiting "initialising".
func (w *platformWatch) verdict(ctx context.Context, info *client.ServiceInfo, attempts []openctiapi.Attempt) error {
	exits := 0
	var lastExit *openctiapi.Attempt
	for i := range attempts {
		if attempts[i].Exited {
			exits++
			lastExit = &attempts[i]
		}
	}
	running := info != nil && info.Current == client.StatusActive
	var cur *openctiapi.Attempt
	if n := len(attempts); n > 0 && !attempts[n-1].Exited {
		cur = &attempts[n-1]
	}
	if !running && lastExit == nil && cur != nil {
		// Pebble saw the exit before the reaper's line reached the log (or there is no
		// reaper): the last attempt ended.
		lastExit, cur = cur, nil
		exits++
	}
	if lastExit != nil && lastExit.Kind.Permanent() {
		return &errPermanent{ErrTypePlatformFailed, errors.New(w.permanentReason(ctx, *lastExit, exits))}
	}
	if running && (exits == 0 || cur != nil && cur.Kind == openctiapi.FailureNone) {
		if cur != nil && cur.Progress() != "" {
			w.signs = &MigrationSigns{Progress: cur.Progress(), ReadAt: time.Now()}
			if ttl, err := w.a.initLockTTL(ctx, *w.in.Instance.Integrations.Redis); err == nil && ttl > 0 {
				w.signs.LockTTL = ttl
			}
			return errors.New("platform is " + cur.Progress() + " (running, port not open yet; never restarted while it migrates)")
		}
		if exits == 0 {
			return errors.New("platform is initialising (running, port not open yet)")
		}
		return fmt.Errorf("platform is starting again after %s (running since %s, port not open yet); last exit: %s",
			plural(exits, "exit"), info.CurrentSince.UTC().Format(time.TimeOnly), lastExit.Summary())
	}
	if lastExit == nil {
		if ok, why := activeOrNot(info); !ok {
			return fmt.Errorf("platform service is %s; last output: %s", why, w.ep.lastLogLines(ctx, []string{opencti.PlatformService}, 3))
		}
		return errors.New("platform is initialising (running, port not open yet)")
	}
	state := "restarting"
	if info != nil {
		state = string(info.Current)
	}
	reason := fmt.Sprintf("platform is crash-looping (%s, service %s): %s", plural(exits, "exit"), state, lastExit.Summary())
	switch lastExit.Kind {
	case openctiapi.FailureDependency:
		reason += "; it starts once " + orDefault(lastExit.Dependency, "the dependency") + " answers"
	case openctiapi.FailureLock:
		reason += "; " + w.lockHolder(ctx)
	}
	return errors.New(reason)
}

// permanentReason says what failed, that restarting cannot fix it, and the fix.
func (w *platformWatch) permanentReason(ctx context.Context, at openctiapi.Attempt, exits int) string {
	inst := w.in.Instance
	head := fmt.Sprintf("platform fails at every start (%s): %s", plural(exits, "exit"), at.Summary())
	switch at.Kind {
	case openctiapi.FailureIndexExists:
		indices, err := w.a.instanceObjects(ctx, *inst.Integrations.OpenSearch, inst.Name)
		list := strings.Join(indices, ", ")
		if err != nil {
			list = fmt.Sprintf("%s_* (cannot list them: %v)", inst.Name, err)
		}
		return head + fmt.Sprintf("; a first boot was interrupted and left its indices: remove the instance's indices and templates (%s) and redeploy", list)
	case openctiapi.FailureInvalidToken:
		return head + "; the admin token is not a UUID the platform accepts: set opencti.adminToken to a UUIDv4 (or leave it empty) and redeploy"
	case openctiapi.FailureDataTooRecent:
		return head + "; the data were written by a newer OpenCTI: set opencti.version (and the image) back to that version; never start an older one on them"
	case openctiapi.FailureSearchEngine:
		return head + "; the search engine lacks a module or plugin OpenCTI needs: install it (see integrations.opensearch.allowMissingModules) and redeploy"
	case openctiapi.FailureEncryptionKey:
		return head + "; set opencti.encryptionKey to base64 of at least 32 bytes (or leave it empty to have socflow generate one)"
	case openctiapi.FailureMigration:
		return head + "; a data migration failed and fails again at every start: restore the snapshot taken before the upgrade and start the previous version"
	}
	return head
}

// lockHolder says who holds the init lock and for how long it stays, from Redis.
func (w *platformWatch) lockHolder(ctx context.Context) string {
	ttl, err := w.a.initLockTTL(ctx, *w.in.Instance.Integrations.Redis)
	switch {
	case err != nil:
		return "another node holds the init lock (cannot read it: " + err.Error() + ")"
	case ttl <= 0:
		return "the init lock is free now; the next start takes it"
	}
	return fmt.Sprintf("another node (or a crashed platform's lock child) holds the init lock; it expires in %s unless renewed", ttl.Round(time.Second))
}

// checkPlan refuses a healthy platform that was started from another plan than
// the one this workflow applied: it runs someone else's configuration.
func (w *platformWatch) checkPlan(ctx context.Context) error {
	if w.in.PlatformDigest == "" || w.in.Instance.OpenCTI.Reaper == opencti.NoReaper {
		return nil
	}
	entries, err := w.ep.logs(ctx, []string{opencti.PlatformService}, platformLogLines)
	if err != nil {
		return err
	}
	return w.foreign(openctiapi.Attempts(w.entryLines(entries)))
}

// foreign reports a running platform started by another instance, or from another
// plan of this one, going by what socflow-reap logged at its start.
func (w *platformWatch) foreign(attempts []openctiapi.Attempt) error {
	if w.in.PlatformDigest == "" || len(attempts) == 0 {
		return nil
	}
	cur := attempts[len(attempts)-1]
	switch {
	case cur.Exited || cur.Plan == "":
		return nil
	case cur.Instance != "" && cur.Instance != w.in.Instance.Name:
		return &errPermanent{ErrTypeForeignPlatform, fmt.Errorf("the platform running in %s was started for instance %s, not %s: give %s its own container",
			w.ep.address(), cur.Instance, w.in.Instance.Name, w.in.Instance.Name)}
	case cur.Plan != w.in.PlatformDigest:
		return &errPermanent{ErrTypeForeignPlatform, fmt.Errorf("the running platform was started from plan %s, not the plan just applied (%s): a deploy never restarts a running platform; stop it (pebble stop platform) once it is safe, and deploy again",
			cur.Plan, w.in.PlatformDigest)}
	}
	return nil
}

func (w *platformWatch) entryLines(entries []client.LogEntry) []openctiapi.LogLine {
	lines := make([]openctiapi.LogLine, len(entries))
	for i, e := range entries {
		lines[i] = openctiapi.LogLine{Time: e.Time, Message: e.Message}
	}
	return lines
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// VerifyOpenCTIInput names the platform and the token to verify with.
type VerifyOpenCTIInput struct {
	// Instance is the defaulted, validated spec (its version is the one expected).
	Instance opencti.Instance `json:"instance"`
	// AdminToken refers to the admin API token.
	AdminToken spec.SecretRef `json:"adminToken"`
}

// VerifyOpenCTIResult is what the platform says about itself.
type VerifyOpenCTIResult struct {
	// Version is about.version.
	Version string `json:"version"`
	// AdminEmail is me.user_email for the admin token.
	AdminEmail string `json:"adminEmail"`
}

// VerifyOpenCTI checks through GraphQL that the platform runs the requested version and
// that the admin token works; both mismatches are permanent: a human must look.
func (a *Activities) VerifyOpenCTI(ctx context.Context, in VerifyOpenCTIInput) (VerifyOpenCTIResult, error) {
	api, callCtx, cancel, err := a.adminAPI(ctx, in.Instance, in.AdminToken)
	if err != nil {
		return VerifyOpenCTIResult{}, err
	}
	defer cancel()
	me, err := api.Me(callCtx)
	if errors.Is(err, openctiapi.ErrAuthRequired) {
		return VerifyOpenCTIResult{}, permanent(ErrTypeAuthFailed, errors.New("cannot verify opencti: the platform rejected the admin token socflow stored"))
	}
	if err != nil {
		return VerifyOpenCTIResult{}, fmt.Errorf("cannot query me: %w", err)
	}
	about, err := api.About(callCtx)
	if err != nil {
		return VerifyOpenCTIResult{}, fmt.Errorf("cannot query about: %w", err)
	}
	res := VerifyOpenCTIResult{Version: about.Version, AdminEmail: me.UserEmail}
	if about.Version != in.Instance.OpenCTI.Version {
		return res, permanent(ErrTypeVersionMismatch, fmt.Errorf("cannot verify opencti: the platform runs version %s, the spec asks for %s (fix opencti.version or the image)",
			about.Version, in.Instance.OpenCTI.Version))
	}
	return res, nil
}

// isConnRefused tells "nothing listens there yet" from other transport failures.
func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

// CheckOpenCTIHealthInput names the platform whose health to read once.
type CheckOpenCTIHealthInput struct {
	// Instance is the defaulted, validated spec.
	Instance opencti.Instance `json:"instance"`
	// HealthAccessKey refers to the key of the /health endpoint.
	HealthAccessKey spec.SecretRef `json:"healthAccessKey"`
}

// CheckOpenCTIHealthResult is one /health answer.
type CheckOpenCTIHealthResult struct {
	// Healthy is true when /health answered 200.
	Healthy bool `json:"healthy"`
	// Reason says why it is not (the answer, or why there was none).
	Reason string `json:"reason,omitempty"`
}

// CheckOpenCTIHealth asks /health once: a pre-flight wants the state now, not a wait.
func (a *Activities) CheckOpenCTIHealth(ctx context.Context, in CheckOpenCTIHealthInput) (CheckOpenCTIHealthResult, error) {
	key, err := a.resolve("opencti.healthAccessKey", in.HealthAccessKey)
	if err != nil {
		return CheckOpenCTIHealthResult{}, classify(err)
	}
	api := &openctiapi.Client{BaseURL: opencti.LocalURL(opencti.Input{Instance: in.Instance}), HTTP: &http.Client{Timeout: HealthCallTimeout}}
	callCtx, cancel := context.WithTimeout(ctx, HealthCallTimeout)
	defer cancel()
	status, body, err := api.Health(callCtx, key)
	switch {
	case err != nil:
		return CheckOpenCTIHealthResult{Reason: "no answer: " + netReason(err)}, nil
	case status == openctiapi.HealthOK:
		return CheckOpenCTIHealthResult{Healthy: true}, nil
	}
	what := map[openctiapi.HealthStatus]string{openctiapi.HealthDependency: "HTTP 503 (a dependency is down): ",
		openctiapi.HealthKeyRejected: "HTTP 401 (the health key is rejected): "}[status]
	return CheckOpenCTIHealthResult{Reason: what + body}, nil
}

// CheckOpenCTIWorkersInput names the workers to watch after they started.
type CheckOpenCTIWorkersInput struct {
	// Pebble is the workload container's Pebble.
	Pebble spec.Pebble `json:"pebble"`
	// Services are the worker services.
	Services []string `json:"services"`
	// Since is when they were started: earlier output is another run's.
	Since time.Time `json:"since"`
	// Window is how long to watch them (their first polls of the platform).
	Window time.Duration `json:"window"`
	// Patience bounds, from Since, the wait on workers that are down or cannot reach
	// the platform (default WorkerWatchPatience).
	Patience time.Duration `json:"patience,omitempty"`
}

// WorkerWatchPatience is how long CheckOpenCTIWorkers waits, from the workers' start,
// on workers that are down (killed; Pebble restarts them) or cannot reach the platform
// (the platform restarting, which the real one does in minutes) before it reports them:
// neither says the workers are of the wrong version, and an upgrade rolled back for a
// transient fault restores a snapshot for nothing.
const WorkerWatchPatience = 5 * time.Minute

// CheckOpenCTIWorkersResult names the workers that do not work.
type CheckOpenCTIWorkersResult struct {
	// Failing maps a worker to the last error it logged since its start.
	Failing map[string]string `json:"failing,omitempty"`
}

// workerWaitsForPlatform says whether a worker's error line is pycti's for a platform
// it cannot reach, as opposed to one the platform answered with.
func workerWaitsForPlatform(msg string) bool { return strings.Contains(msg, "API is not reachable") }

// CheckOpenCTIWorkers watches workers for a window after their start: a worker of
// another version than the platform stays alive and fails every call (opencti.md
// §8: GRAPHQL_VALIDATION_FAILED at each poll), so a running worker is not a working
// one; one that logs such an error is reported with it at once. A worker that is not
// active (started again) or that logs only that it cannot reach the platform is
// watched again for another window from now, until it has been quiet and active for a
// whole window or the patience since its start is spent; then it is reported with its
// last reason.
func (a *Activities) CheckOpenCTIWorkers(ctx context.Context, in CheckOpenCTIWorkersInput) (CheckOpenCTIWorkersResult, error) {
	var res CheckOpenCTIWorkersResult
	ep, err := a.pebble(in.Pebble)
	if err != nil {
		return res, classify(err)
	}
	patience := cmp.Or(in.Patience, WorkerWatchPatience)
	from, deadline := in.Since, time.Now().Add(in.Window)
	startErrs := map[string]string{}
	for {
		failing, pending := map[string]string{}, map[string]string{}
		entries, err := ep.logs(ctx, in.Services, 200)
		if err != nil {
			return res, classify(err)
		}
		for _, e := range entries {
			var line struct {
				Level   string `json:"level"`
				Message string `json:"message"`
				Name    string `json:"name"`
			}
			if e.Time.Before(from) || json.Unmarshal([]byte(strings.TrimSpace(e.Message)), &line) != nil || line.Level != "error" {
				continue
			}
			msg := line.Message
			if line.Name != "" {
				msg += " (" + line.Name + ")"
			}
			if workerWaitsForPlatform(line.Message) {
				pending[e.Service] = msg
			} else {
				failing[e.Service] = msg
			}
		}
		infos, err := ep.services(ctx, in.Services)
		if err != nil {
			return res, classify(err)
		}
		for _, s := range in.Services {
			if ok, why := activeOrNot(infos[s]); !ok {
				pending[s] = "service " + why
			}
		}
		recordHeartbeat(ctx, len(failing)+len(pending))
		switch {
		case len(failing) > 0:
			res.Failing = failing
			return res, nil
		case time.Now().Before(deadline):
		case len(pending) == 0:
			return res, nil
		case time.Since(in.Since) >= patience:
			for s, err := range startErrs {
				if _, ok := pending[s]; ok {
					pending[s] += "; started again: " + err
				}
			}
			res.Failing = pending
			return res, nil
		default:
			// Down or cut off from the platform: not the workers' fault yet. A worker
			// that is down is started again (worker services do not restart on
			// failure, and the instance heals only after the upgrade); then watch
			// again, only what they log from now on.
			for _, s := range in.Services {
				if info := infos[s]; info != nil && !running(info) {
					if err := ep.startAndWait(ctx, s); err != nil {
						startErrs[s] = err.Error()
					} else {
						delete(startErrs, s)
					}
				}
			}
			from, deadline = time.Now(), time.Now().Add(in.Window)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
