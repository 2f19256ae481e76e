package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// chaosBaseline is what the real systems held once the instance was active, before a
// change or an upgrade began (zero before a deploy).
type chaosBaseline struct {
	change         string // the Pebble's last change ID
	platformStarts int    // platform processes started (the stand-in's own log file)
	workerStarts   map[string]int
	bucketCreated  time.Time
}

// chaosExpect is what an operation does to the instance's processes when it completes:
// the platform processes it starts, the worker processes it starts per service, and the
// stops it asks of Pebble per service.
type chaosExpect struct {
	platformStarts int
	workerStarts   map[string]int
	stops          map[string]int
}

var chaosExpected = map[string]chaosExpect{
	opDeploy:   {1, map[string]int{"worker-0": 1, "worker-1": 1}, map[string]int{}},
	opWorkers:  {0, map[string]int{"worker-0": 0, "worker-1": 0, "worker-2": 1}, map[string]int{}},
	opLogLevel: {1, map[string]int{"worker-0": 1, "worker-1": 1}, map[string]int{"platform": 1, "worker-0": 1, "worker-1": 1}},
	// The upgrade stops the workers, then the platform: Pebble's stop of the platform
	// lists its dependents' stops again (already stopped, nothing done), hence 2.
	opUpgrade: {1, map[string]int{"worker-0": 1, "worker-1": 1}, map[string]int{"platform": 1, "worker-0": 2, "worker-1": 2}},
}

// baseline reads the real systems before a change or an upgrade.
func (e *chaosEnv) baseline() chaosBaseline {
	b := chaosBaseline{change: lastChange(e.t, e.inst.Pebble.Socket), platformStarts: len(platformBoots(e.t, e.inst)), workerStarts: map[string]int{}}
	for _, w := range opencti.WorkerServices(3) {
		b.workerStarts[w] = workerStartsIfAny(e.t, e.inst.Pebble.Socket, w)
	}
	b.bucketCreated = bucketCreated(e.t, e.inst.Integrations.S3.Bucket)
	return b
}

// workerStartsIfAny is workerStarts, 0 for a service the plan does not have yet.
func workerStartsIfAny(t *testing.T, socket, service string) int {
	if services(t, socket)[service] == nil {
		return 0
	}
	return workerStarts(t, socket, service)
}

// check reads the invariants from the real systems and returns those that do not hold.
func (e *chaosEnv) check(r *chaosRun, res chaosResult, base chaosBaseline, sec *secretWatch) []string {
	t := e.t
	var fails []string
	fail := func(format string, a ...any) { fails = append(fails, fmt.Sprintf(format, a...)) }
	boots := platformBoots(t, e.inst)

	// 1. The operation completed, or ended as the fault's unrecoverable effect demands.
	completed := false
	switch {
	case res.outcome == "completed":
		completed = true
		fails = append(fails, e.checkResult(r.Operation, res)...)
	case res.blocked != "":
		// A first boot cut short after it created indices (Redis or the disk gone under
		// it) leaves indices a new boot refuses: Blocked, naming them, is the only correct
		// end. Anything else blocked is a failure of socflow.
		if r.Operation == opDeploy && (r.Fault == faultDependency || r.Fault == faultWatermark) &&
			strings.Contains(res.blocked, "index already exists") && slices.ContainsFunc(boots, func(b string) bool { return strings.Contains(b, "index already exists") }) {
			r.Outcome = "blocked (expected): " + firstLine(res.blocked)
			if !strings.Contains(res.blocked, e.inst.Name+"_internal_objects-000001") {
				fail("blocked on the interrupted first boot without naming the indices to remove: %s", res.blocked)
			}
			if p := services(t, e.inst.Pebble.Socket)[opencti.PlatformService]; p != nil && (p.Current == client.StatusActive || p.Current == client.StatusBackoff) {
				fail("blocked, but the platform is %s: socflow should have stopped the hopeless crash loop", p.Current)
			}
		} else {
			fail("blocked with no unrecoverable fault to explain it: %s", res.blocked)
		}
	case strings.HasPrefix(res.outcome, "rolled back: "):
		reason := strings.ToLower(res.outcome)
		if e.rollbackExplained(r.Fault, reason) {
			r.Outcome = "rolled back (expected): " + firstLine(strings.TrimPrefix(res.outcome, "rolled back: "))
			if res.status.Version != chaosFrom {
				fail("rolled back, but the instance runs %q, want %s", res.status.Version, chaosFrom)
			}
			e.requireServing(&fails)
		} else {
			fail("upgrade rolled back with no fault to explain it: %s", res.outcome)
		}
	default:
		fail("operation did not complete: %s", res.outcome)
	}
	r.Outcome = firstLine(r.Outcome)

	// 2. The platform was never restarted during init or migration: in the stand-in's own
	// log, every platform process but the last reached "API ready" (later stops are
	// the operation's) or failed by itself (an error line, Pebble restarting it).
	from := max(base.platformStarts-1, 0)
	failed := 0
	for i := from; i < len(boots)-1; i++ {
		switch {
		case strings.Contains(boots[i], "API ready"):
		case strings.Contains(boots[i], `"level":"error"`):
			failed++
		case e.kills.restarted[i+1]:
			// Pebble's restart of the process the fault killed, stopped by the operation.
		default:
			fail("platform process %d of %d was stopped before it was ready: restarted during init or migration", i+1, len(boots))
		}
	}
	if completed {
		// 3. Each start happened once: the platform and worker processes started as the
		// operation starts them, plus one per process the fault killed (Pebble's restart)
		// or that failed by itself; Pebble was asked to stop each service as often as the
		// operation stops it.
		want := chaosExpected[r.Operation]
		if got := len(boots) - base.platformStarts; got < want.platformStarts+failed || got > want.platformStarts+failed+e.kills.platform {
			fail("platform started %d times, want %d (+%d failed by itself, +%d killed)", got, want.platformStarts, failed, e.kills.platform)
		}
		for _, svc := range slices.Sorted(maps.Keys(want.workerStarts)) {
			got := workerStartsIfAny(t, e.inst.Pebble.Socket, svc) - base.workerStarts[svc]
			if n := want.workerStarts[svc]; got < n || got > n+e.kills.services[svc] {
				fail("%s started %d times, want %d (+%d killed)", svc, got, n, e.kills.services[svc])
			}
		}
		// A service the fault killed may also be stopped once by its heal's restart (the
		// instance's scheduled health check can run before this reads Pebble).
		stops, off := pebbleStops(t, e.inst.Pebble.Socket, base.change), false
		for _, m := range []map[string]int{stops, want.stops} {
			for svc := range m {
				got, n := stops[svc], want.stops[svc]
				off = off || got < n || got > n+e.kills.services[svc]
			}
		}
		if off {
			fail("pebble was asked to stop %v, want %v (+1 per service killed, for its heal)", stops, want.stops)
		}
		e.requireServing(&fails)
	}

	// 4. Each secret was generated once: the watcher saw one version of each, the store
	// holds those three and nothing else.
	fails = append(fails, sec.stop()...)
	for key, f := range readSecretFiles(t, e.secretDir, e.inst.Name) {
		if v := sec.versions[key]; len(v) > 0 && (string(v[0].content) != string(f.content) || !v[0].mtime.Equal(f.mtime)) {
			fail("secret %s in the store is not the one first written", key)
		}
	}
	if ents, err := os.ReadDir(filepath.Join(e.secretDir, e.inst.Name)); err != nil || len(ents) != 3 {
		fail("the secret store holds %d entries (%v), want the 3 secrets", len(ents), err)
	}

	// 5. The bucket was made once, snapshots taken only by an upgrade, once.
	created := bucketCreated(t, e.inst.Integrations.S3.Bucket)
	if created.IsZero() && res.blocked == "" {
		fail("bucket %s does not exist", e.inst.Integrations.S3.Bucket)
	}
	if !base.bucketCreated.IsZero() && !created.Equal(base.bucketCreated) {
		fail("bucket %s was made again: created %s, before the %s %s", e.inst.Integrations.S3.Bucket, created, r.Operation, base.bucketCreated)
	}
	wantSnaps := 0
	if r.Operation == opUpgrade && res.blocked == "" {
		wantSnaps = 1
	}
	if n := len(upgradeSnapshots(t, e.inst.Name)); n != wantSnaps {
		fail("%d upgrade snapshots of %s, want %d", n, e.inst.Name, wantSnaps)
	}

	// 6. No user made twice: the platform's users, through its GraphQL API.
	if completed {
		users, err := adminClient(t, e.inst, e.secretDir).Users(context.Background())
		seen := map[string]bool{}
		for _, u := range users {
			if seen[u.Email] {
				fail("user %s exists twice", u.Email)
			}
			seen[u.Email] = true
		}
		if err != nil || len(users) == 0 {
			fail("cannot list the platform's users: %d, %v", len(users), err)
		}
	}

	// 7. No secret value in any history of the run, raw or decoded through the codec.
	fails = append(fails, e.historySecrets()...)
	return fails
}

// rollbackExplained reports whether an upgrade's rollback reason (lower case) is the
// fault's own effect: a migration that failed on a read-only index (the platform says
// "Fail to index document", socflow's reason does not carry OpenSearch's cause) or
// without Redis. A killed worker or platform is not: the workers' post-upgrade check
// starts a killed worker again and waits out a platform restart.
func (e *chaosEnv) rollbackExplained(fault, reason string) bool {
	switch fault {
	case faultWatermark:
		// The platform's own words for a write the block refused mid-migration.
		return strings.Contains(reason, "read-only") || strings.Contains(reason, "read_only") || strings.Contains(reason, "cluster_block") ||
			strings.Contains(reason, "fail to index document (database_error)")
	case faultDependency:
		return strings.Contains(reason, "redis")
	}
	// A platform or a worker killed once is not a reason to roll back: Pebble starts it
	// again, and the workers' check waits for that (activities.WorkerWatchPatience).
	return false
}

// checkResult checks a completed operation's result and the instance's status.
func (e *chaosEnv) checkResult(operation string, res chaosResult) []string {
	var fails []string
	fail := func(format string, a ...any) { fails = append(fails, fmt.Sprintf(format, a...)) }
	st, ch := res.status, res.change
	switch operation {
	case opDeploy:
		if st.Version != "6.9.3" || st.Workers != 2 {
			fail("deployed status: version %s, %d workers; want 6.9.3 with 2", st.Version, st.Workers)
		}
	case opWorkers:
		if strings.Join(ch.Started, ",") != "worker-2" || len(ch.Restarted)+len(ch.Stopped) != 0 || st.Workers != 3 {
			fail("workers 3: result %+v, status %d workers; want worker-2 started alone", *ch, st.Workers)
		}
	case opLogLevel:
		if strings.Join(ch.Restarted, ",") != "platform,worker-0,worker-1" || st.LogLevel != opencti.LogDebug {
			fail("log level debug: result %+v, status %s; want the platform then both workers restarted once", *ch, st.LogLevel)
		}
	case opUpgrade:
		if ch.Upgrade == nil || ch.Upgrade.Outcome != workflows.UpgradeUpgraded || ch.Upgrade.To != chaosTo || st.Version != chaosTo {
			fail("upgrade: result %+v, status version %s; want upgraded to %s", ch.Upgrade, st.Version, chaosTo)
		}
	}
	return fails
}

// requireServing waits (a minute: Pebble restarts a killed process after its backoff)
// for the platform and each worker of the status to run, and the platform to answer.
func (e *chaosEnv) requireServing(fails *[]string) {
	want := append([]string{opencti.PlatformService}, opencti.WorkerServices(e.workerCount())...)
	ok := waitUntil(time.Minute, func() bool {
		for _, s := range want {
			if !serviceActive(e.t, e.inst.Pebble.Socket, s) {
				return false
			}
		}
		return portOpen(e.inst.OpenCTI.Port)
	})
	if !ok {
		*fails = append(*fails, fmt.Sprintf("not serving a minute after the operation: services %v, want %v active", activeServices(e.t, e.inst.Pebble.Socket), want))
	}
}

// workerCount is how many workers the instance runs once its operation completed.
func (e *chaosEnv) workerCount() int {
	if _, ok := services(e.t, e.inst.Pebble.Socket)["worker-2"]; ok {
		return 3
	}
	return 2
}

// platformBoots splits the stand-in's own log file (<platform dir>/logs/opencti.log,
// appended by every process, never rotated) into one text per platform process.
func platformBoots(t *testing.T, inst opencti.Instance) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(inst.OpenCTI.PlatformDir, "logs", "opencti.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var boots []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if strings.Contains(line, "[OPENCTI] Starting platform") || len(boots) == 0 {
			boots = append(boots, "")
		}
		boots[len(boots)-1] += line
	}
	if len(boots) > 0 && !strings.Contains(boots[0], "[OPENCTI] Starting platform") {
		boots = boots[1:]
	}
	return boots
}

// bucketCreated is the bucket's creation date in the stack's MinIO; zero when absent.
func bucketCreated(t *testing.T, bucket string) time.Time {
	t.Helper()
	st := stacktest.Get(t)
	mc, err := minio.New(strings.TrimPrefix(st.S3Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(st.S3AccessKey, st.S3SecretKey, ""), Region: st.S3Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	all, err := mc.ListBuckets(ctx)
	if err != nil {
		t.Fatalf("cannot list buckets: %v", err)
	}
	for _, b := range all {
		if b.Name == bucket {
			return b.CreationDate
		}
	}
	return time.Time{}
}

// upgradeSnapshots names the instance's upgrade snapshots in the stack's repository.
func upgradeSnapshots(t *testing.T, name string) []string {
	t.Helper()
	repo := stacktest.Get(t).Raw["SOCFLOW_SNAPSHOT_REPOSITORY"]
	code, body := searchDo(t, http.MethodGet, "/_cat/snapshots/"+repo+"?h=id", nil)
	if code != http.StatusOK {
		t.Fatalf("cannot list the snapshots of %s: %d %s", repo, code, body)
	}
	var out []string
	for _, id := range strings.Fields(string(body)) {
		if strings.HasPrefix(id, name+"-upgrade-") {
			out = append(out, id)
		}
	}
	return out
}

// historySecrets searches every history of the run — the instance's, its deploy's and
// upgrade's children, and whatever else lists the instance — for every secret value
// the run knows: raw as the server stores it, and decoded through the codec for those
// that must not be in a payload at all (all but the spec's literal admin password, which
// rides in the input, sealed).
func (e *chaosEnv) historySecrets() []string {
	t, st := e.t, stacktest.Get(e.t)
	referenced := map[string]string{
		"rabbitmq password": st.RabbitMQPassword, "redis password": st.RedisPassword,
		"s3 access key": st.S3AccessKey, "s3 secret key": st.S3SecretKey,
	}
	for _, key := range []string{"admin-token", "health-access-key", "encryption-key"} {
		if b, err := os.ReadFile(filepath.Join(e.secretDir, e.inst.Name, key)); err == nil {
			referenced[key] = strings.TrimSpace(string(b))
		}
	}
	all := maps.Clone(referenced)
	all["admin password (literal)"] = string(e.inst.OpenCTI.AdminPassword)

	ids := map[string]bool{e.id: true, workflows.DeployWorkflowID(e.inst.Name): true, workflows.UpgradeWorkflowID(e.inst.Name): true}
	resp, err := e.c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("%s = '%s'", workflows.SearchAttrInstance.GetName(), e.inst.Name)})
	if err != nil {
		t.Fatalf("cannot list the run's workflows: %v", err)
	}
	for _, ex := range resp.GetExecutions() {
		ids[ex.GetExecution().GetWorkflowId()] = true
	}
	var fails []string
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if _, err := e.c.DescribeWorkflowExecution(context.Background(), id, ""); err != nil {
			continue // never started in this run (an upgrade's child in a deploy run)
		}
		raw, _ := historyJSON(t, e.c, id, "")
		for _, s := range secretsIn(raw, all) {
			fails = append(fails, fmt.Sprintf("history of %s holds the %s", id, s))
		}
		for _, s := range secretsIn(decodedHistory(t, e.c, id), referenced) {
			fails = append(fails, fmt.Sprintf("decoded history of %s holds the %s", id, s))
		}
	}
	return fails
}

// secretWatch polls the instance's secret store while the run goes on and keeps every
// version of each secret it sees: a secret generated twice shows as two versions.
type secretWatch struct {
	mu       sync.Mutex
	versions map[string][]secretFile
	done     chan struct{}
	stopped  chan struct{}
}

// watchSecrets starts watching the instance's three generated secrets.
func watchSecrets(t *testing.T, dir, instance string) *secretWatch {
	w := &secretWatch{versions: map[string][]secretFile{}, done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(w.stopped)
		for {
			for _, key := range []string{"admin-token", "health-access-key", "encryption-key"} {
				path := filepath.Join(dir, instance, key)
				fi, err1 := os.Stat(path)
				b, err2 := os.ReadFile(path)
				if err1 != nil || err2 != nil {
					continue
				}
				w.mu.Lock()
				vs := w.versions[key]
				if len(vs) == 0 || string(vs[len(vs)-1].content) != string(b) || !vs[len(vs)-1].mtime.Equal(fi.ModTime()) {
					w.versions[key] = append(vs, secretFile{content: b, mtime: fi.ModTime()})
				}
				w.mu.Unlock()
			}
			select {
			case <-w.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-w.stopped:
		default:
			close(w.done)
			<-w.stopped
		}
	})
	return w
}

// stop ends the watch and names each secret not seen in exactly one version.
func (w *secretWatch) stop() []string {
	close(w.done)
	<-w.stopped
	var fails []string
	for _, key := range []string{"admin-token", "health-access-key", "encryption-key"} {
		if n := len(w.versions[key]); n != 1 {
			fails = append(fails, fmt.Sprintf("secret %s seen in %d versions, want it written once", key, n))
		}
	}
	return fails
}

// firstLine is s up to its first newline, for the table.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
