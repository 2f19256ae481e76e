package e2e

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"sigs.k8s.io/yaml"

	"github.com/socflow/socflow/internal/benchreport"
	"github.com/socflow/socflow/internal/fleetfixture"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// The fleet benchmark's secrets: env references the worker process resolves, as an
// operator's would be; the deploy that would have generated them is not run.
var fleetSecrets = opencti.InstanceSecrets{
	AdminToken:      "env:SOCFLOW_FLEET_ADMIN_TOKEN",
	HealthAccessKey: "env:SOCFLOW_FLEET_HEALTH_KEY",
	EncryptionKey:   "env:SOCFLOW_FLEET_ENCRYPTION_KEY",
}

var fleetSecretValues = map[string]string{
	"SOCFLOW_FLEET_ADMIN_TOKEN":    "5f0bdb4e-2a8e-4c43-9f0a-0c6f2d9b1e77",
	"SOCFLOW_FLEET_HEALTH_KEY":     "fleet-health-key",
	"SOCFLOW_FLEET_ENCRYPTION_KEY": "ZmxlZXQtYmVuY2htYXJrLWVuY3J5cHRpb24ta2V5IS0=",
}

// fleetBench is one run of the fleet health benchmark: a fixture serving the virtual
// instances, socflow's worker as its own process (what is measured), the instances'
// workflows on its queue, and a worker in this process for the trivial workflow of the
// same shape (Temporal's own ceiling).
type fleetBench struct {
	tb        testing.TB
	c         tclient.Client
	st        stacktest.Stack
	fleet     *fleetfixture.Fleet
	queue     string
	worker    *workerProcess
	trivial   string // the trivial workflows' task queue
	instances int    // the virtual instances started so far
	run       string // this run's prefix of every ID
}

// fleetStep is one fleet size's sweep: each instance checked once a minute for
// `minutes`, the checks spread evenly over the minute.
type fleetStep struct {
	n, checks, failed  int
	quiet              int     // checks the HealthCheck workflow made without asking the instance
	p50, p99, max      float64 // ms, from the check's due time to its report
	workerCPU, servCPU float64 // cores, over the sweep
	depsCPU            float64 // the stack's dependencies (the probes' other end), cores
	benchCPU           float64 // this process (fixture, driver, trivial worker)
	workerRSS          float64 // MiB at the sweep's end
	workerFDs          int     // the worker's open descriptors at the sweep's end
	firstFailure       string
	asked              string // why the first check that asked its instance did
	// reads are each component's read latencies (ms), as the reports give them.
	reads map[string][]float64
}

func (s fleetStep) ok() bool { return s.failed == 0 && s.p99 < 5000 }

// perThousand is what the worker took per 1000 instances at this size: its resident
// memory above rssBase (MiB, before the fleet) and its CPU (cores).
func (s fleetStep) perThousand(rssBase float64) (mib, cores float64) {
	return (s.workerRSS - rssBase) * 1000 / float64(s.n), s.workerCPU * 1000 / float64(s.n)
}

func newFleetBench(tb testing.TB) *fleetBench {
	tb.Helper()
	for k, v := range fleetSecretValues {
		tb.Setenv(k, v)
	}
	st := stacktest.Get(tb)
	// Unix socket paths are short: not under the test's temporary directory.
	dir, err := os.MkdirTemp("", "fleet-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	fleet, err := fleetfixture.New(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fleet.Close() })
	run := fmt.Sprintf("f%d", time.Now().Unix()%1e6)
	if os.Getenv("SOCFLOW_BENCH_FLEET_SERVER") == "memory" {
		st.TemporalAddress = memoryDevServer(tb)
	}
	c := stacktest.TemporalClient(tb, st.TemporalAddress, quietLogger())
	f := &fleetBench{tb: tb, c: c, st: st, fleet: fleet, queue: "fleet-" + run, trivial: "fleet-trivial-" + run, run: run}
	f.worker = startWorkerProcessAt(tb, st.TemporalAddress, "fleet-worker", f.queue, tb.TempDir())
	w := worker.New(f.c, f.trivial, worker.Options{})
	w.RegisterWorkflowWithOptions(trivialCheck, workflow.RegisterOptions{Name: "FleetTrivialCheck"})
	w.RegisterActivity(trivialRead)
	if err := w.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Stop)
	tb.Cleanup(f.terminate)
	return f
}

// memoryDevServer starts a Temporal dev server of its own that keeps everything in
// memory (no database file), with socflow's search attributes, and returns its
// address: the fleet benchmark's second figure, the server without its file store's
// synchronous writes.
func memoryDevServer(tb testing.TB) string {
	tb.Helper()
	srv := &restartableServer{addr: "127.0.0.1:" + strconv.Itoa(freePort(tb))}
	srv.start(tb)
	tb.Cleanup(func() { srv.stop(tb) })
	return srv.addr
}

// name is the i-th virtual instance's name.
func (f *fleetBench) name(i int) string { return fmt.Sprintf("%s-%05d", f.run, i) }

// grow starts virtual instances until there are n: each served by the fixture with the
// plan its spec renders (so its drift check finds none) and an OpenCTIInstance workflow
// whose state is that of a deployed instance.
func (f *fleetBench) grow(n int) {
	f.tb.Helper()
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 16 {
		wg.Go(func() {
			for i := range work {
				if err := f.startInstance(i); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := f.instances; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		f.tb.Fatal(firstErr)
	}
	// Their first workflow tasks are done once each answers a query: the sweep then
	// measures checks, not the fleet's start.
	settle := make(chan int)
	var swg sync.WaitGroup
	for range 16 {
		swg.Go(func() {
			for i := range settle {
				for try := 0; ; try++ {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					_, err := f.c.QueryWorkflow(ctx, workflows.InstanceWorkflowID(f.name(i)), "", workflows.HealthReadsQuery)
					cancel()
					if err == nil || try == 20 {
						break
					}
					time.Sleep(time.Second)
				}
			}
		})
	}
	for i := f.instances; i < n; i++ {
		settle <- i
	}
	close(settle)
	swg.Wait()
	f.instances = n
}

func (f *fleetBench) startInstance(i int) error {
	name := f.name(i)
	workers := 3
	inst := opencti.Instance{
		Name: name,
		OpenCTI: opencti.Settings{
			Version:              "6.9.3",
			PlatformCommand:      "/bin/false",
			PlatformDir:          "/var/lib/fleet/" + name + "/platform",
			WorkerCommand:        "/bin/false",
			WorkerDir:            "/var/lib/fleet/" + name + "/worker",
			Workers:              &workers,
			Port:                 f.fleet.HealthPort(),
			MetricsPort:          f.fleet.HealthPort() + 1,
			BasePath:             "/" + name,
			AdminPassword:        "local-admin-password",
			AllowOldDependencies: true,
		},
		Pebble:       spec.Pebble{Socket: f.fleet.Socket(name)},
		Integrations: stackIntegrations(f.st, "fleet-files"),
	}
	inst = inst.WithDefaults()
	if err := inst.Validate(); err != nil {
		return fmt.Errorf("fleet spec invalid: %w", err)
	}
	plan, err := fleetPlan(inst)
	if err != nil {
		return err
	}
	if _, err := f.fleet.Add(name, inst.OpenCTI.BasePath, fleetSecretValues["SOCFLOW_FLEET_HEALTH_KEY"], plan); err != nil {
		return err
	}
	// A deployed instance whose last check was ok: what a fleet is between incidents.
	state := workflows.InstanceState{Deployed: true, Spec: inst, Pushed: &inst, Secrets: fleetSecrets, Version: inst.OpenCTI.Version,
		ChangeLog: workflows.ChangeLog{Status: workflows.Status{Kind: workflows.StatusActive, Message: "deployed (fleet benchmark)"}},
		Health:    &workflows.HealthReport{Instance: name, Health: workflows.HealthOK, CheckedAt: time.Now()}}
	_, err = f.c.ExecuteWorkflow(context.Background(), tclient.StartWorkflowOptions{ID: workflows.InstanceWorkflowID(name), TaskQueue: f.queue},
		workflows.OpenCTIInstanceWorkflow, workflows.InstanceInput{Instance: inst, State: &state, HealthEvery: -1})
	return err
}

// fleetPlan is the plan `pebble plan` shows for an instance whose layer socflow pushed.
func fleetPlan(inst opencti.Instance) ([]byte, error) {
	gen := fleetSecrets
	store := &secrets.Store{}
	v, err := opencti.SecretTable.Resolve(&inst, &gen, func(field string, ref spec.SecretRef) (string, error) { return store.Resolve(ref) })
	if err != nil {
		return nil, err
	}
	p, err := opencti.NewPlan(opencti.Input{Instance: inst, Secrets: v})
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(p.Layer)
}

// sweep checks instances 0..n-1 once a minute for `minutes`, each at its own offset
// within the minute, starting workflow `wf` (HealthCheck, or the trivial check) with
// the instance's name, and measures each check from its due time to its report.
func (f *fleetBench) sweep(n, minutes int, wf, queue, idPrefix string) fleetStep {
	f.tb.Helper()
	step := fleetStep{n: n, reads: map[string][]float64{}}
	period := time.Minute / time.Duration(n)
	start := time.Now().Add(time.Second)
	cpu0 := f.cpu()
	var mu sync.Mutex
	var lat []float64
	var wg sync.WaitGroup
	for k := range minutes * n {
		due := start.Add(time.Duration(k) * period)
		time.Sleep(time.Until(due))
		i := k % n
		wg.Go(func() {
			name := f.name(i)
			err := func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				run, err := f.c.ExecuteWorkflow(ctx, tclient.StartWorkflowOptions{ID: fmt.Sprintf("%s-%s-%d", idPrefix, f.name(i), k/n), TaskQueue: queue},
					wf, workflows.HealthCheckInput{Instance: name})
				if err != nil {
					return err
				}
				var rep workflows.HealthReport
				if err := run.Get(ctx, &rep); err != nil {
					return err
				}
				if rep.Health != workflows.HealthOK {
					return fmt.Errorf("%s: %s %s %+v", name, rep.Health, rep.Note, rep.Components)
				}
				mu.Lock()
				if strings.HasPrefix(rep.Note, "checked without the instance") {
					step.quiet++
				} else {
					step.asked = cmp.Or(step.asked, rep.Note)
				}
				for _, c := range rep.Components {
					step.reads[c.Name] = append(step.reads[c.Name], float64(c.Latency)/float64(time.Millisecond))
				}
				mu.Unlock()
				return nil
			}()
			took := float64(time.Since(due)) / float64(time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			step.checks++
			if err != nil {
				step.failed++
				step.firstFailure = cmp.Or(step.firstFailure, err.Error())
				return
			}
			lat = append(lat, took)
		})
	}
	wg.Wait()
	cpu1 := f.cpu()
	wall := cpu1.at.Sub(cpu0.at).Seconds()
	step.workerCPU = (cpu1.worker - cpu0.worker) / wall
	step.servCPU = (cpu1.server - cpu0.server) / wall
	step.benchCPU = (cpu1.bench - cpu0.bench) / wall
	step.depsCPU = (cpu1.deps - cpu0.deps) / wall
	step.workerRSS = procRSS(f.worker.cmd.Process.Pid)
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", f.worker.cmd.Process.Pid))
	step.workerFDs = len(fds)
	if len(lat) > 0 {
		step.p50, step.p99, step.max = pct(lat, 50), pct(lat, 99), pct(lat, 100)
	}
	return step
}

// cpuSample is the CPU seconds the worker, the Temporal server and this process used
// until `at`.
type cpuSample struct {
	at                          time.Time
	worker, server, bench, deps float64
}

func (f *fleetBench) cpu() cpuSample {
	s := cpuSample{at: time.Now(), worker: procCPU(f.worker.cmd.Process.Pid), server: procCPU(temporalServerPID(f.st)), bench: procCPU(os.Getpid())}
	// OpenSearch, RabbitMQ, Redis and MinIO: the other end of every probe.
	out, _ := exec.Command("pgrep", "-f", "opensearch|beam.smp|redis-server|minio").Output()
	for _, p := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(p)
		s.deps += procCPU(pid)
	}
	return s
}

// procCPU is the user and system CPU seconds a process used (0 if it is gone).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || pid == 0 {
		return 0
	}
	// The fields after the command's closing parenthesis: utime and stime are the
	// 12th and 13th of them, in clock ticks (100 a second).
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	u, _ := strconv.ParseFloat(fields[11], 64)
	s, _ := strconv.ParseFloat(fields[12], 64)
	return (u + s) / 100
}

// procRSS is a process's resident memory in MiB.
func procRSS(pid int) float64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// temporalServerPID is the stack's Temporal dev server's process.
func temporalServerPID(st stacktest.Stack) int {
	_, port, _ := strings.Cut(st.TemporalAddress, ":")
	out, _ := exec.Command("pgrep", "-f", "start-dev .*--port "+port+"( |$)").Output()
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.Split(string(out), "\n")[0]))
	return pid
}

// terminate ends every workflow the benchmark started.
func (f *fleetBench) terminate() {
	for i := range f.instances {
		_ = f.c.TerminateWorkflow(context.Background(), workflows.InstanceWorkflowID(f.name(i)), "", "fleet benchmark over")
	}
}

// trivialRead is the trivial shape's local activity: no work.
func trivialRead(context.Context) (string, error) { return "ok", nil }

// trivialCheck is a quiet instance's HealthCheck with nothing of socflow in it: the same
// commands — the version marker (with its search attribute), two local activities (the
// query, the reads) doing nothing, the same details and search attributes — so its
// ceiling is Temporal's own for that shape on this machine.
func trivialCheck(ctx workflow.Context, in workflows.HealthCheckInput) (workflows.HealthReport, error) {
	workflow.GetVersion(ctx, workflows.HealthCheckReadsChange, workflow.DefaultVersion, workflows.HealthCheckReads)
	la := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
	for range 2 {
		var out string
		if err := workflow.ExecuteLocalActivity(la, trivialRead).Get(ctx, &out); err != nil {
			return workflows.HealthReport{}, err
		}
	}
	rep := workflows.HealthReport{Instance: in.Instance, Health: workflows.HealthOK}
	workflow.SetCurrentDetails(ctx, "**"+in.Instance+"** — health **"+rep.Health+"**")
	return rep, workflow.UpsertTypedSearchAttributes(ctx, workflows.SearchAttrInstance.ValueSet(in.Instance),
		workflows.SearchAttrApp.ValueSet(workflows.AppOpenCTI), workflows.SearchAttrHealth.ValueSet(rep.Health))
}

// fleetSizes are the fleet sizes to try, from SOCFLOW_BENCH_FLEET ("500,1000,…").
func fleetSizes(tb testing.TB, def string) []int {
	var out []int
	for s := range strings.SplitSeq(cmp.Or(os.Getenv("SOCFLOW_BENCH_FLEET"), def), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			tb.Fatalf("SOCFLOW_BENCH_FLEET: %q is not a fleet size (fix: a comma-separated list of instance counts, e.g. 500,1000,2000)", s)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// runFleet runs socflow's sweeps over the sizes, then the trivial shape's, each until a
// size fails (p99 >= 5 s or a check not ok); one that passes every size goes on by
// half as many again, up to limit, so its ceiling is found, and prints each step.
func runFleet(tb testing.TB, sizes []int, minutes, limit int) (socflow, trivial []fleetStep, rssBase float64) {
	f := newFleetBench(tb)
	time.Sleep(2 * time.Second)
	rssBase = procRSS(f.worker.cmd.Process.Pid)
	climb := func(run func(n int) fleetStep) []fleetStep {
		var steps []fleetStep
		for i, n := 0, sizes[0]; n <= max(limit, sizes[len(sizes)-1]); i++ {
			s := run(n)
			steps = append(steps, s)
			if !s.ok() {
				break
			}
			if n = n * 3 / 2; i+1 < len(sizes) {
				n = sizes[i+1]
			}
		}
		return steps
	}
	socflow = climb(func(n int) fleetStep {
		f.grow(n)
		s := f.sweep(n, minutes, workflows.HealthCheckWorkflow, f.queue, "hc-"+strconv.Itoa(n))
		printFleetStep("socflow", s, rssBase)
		return s
	})
	trivial = climb(func(n int) fleetStep {
		s := f.sweep(n, minutes, "FleetTrivialCheck", f.trivial, "tc-"+strconv.Itoa(n))
		printFleetStep("trivial", s, 0)
		return s
	})
	return socflow, trivial, rssBase
}

func printFleetStep(what string, s fleetStep, rssBase float64) {
	fmt.Printf("fleet %-7s N=%5d  checks %5d (%d without the instance) failed %3d  p50 %7.0f ms  p99 %7.0f ms  max %7.0f ms  CPU worker %.2f server %.2f deps %.2f bench %.2f cores  worker RSS %.0f MiB, %d fds",
		what, s.n, s.checks, s.quiet, s.failed, s.p50, s.p99, s.max, s.workerCPU, s.servCPU, s.depsCPU, s.benchCPU, s.workerRSS, s.workerFDs)
	if rssBase > 0 {
		mib, cores := s.perThousand(rssBase)
		fmt.Printf(" (%.1f MiB and %.2f cores per 1000 instances)", mib, cores)
	}
	fmt.Println()
	if len(s.reads) > 0 {
		fmt.Print("  reads p50/p99 ms:")
		for _, name := range slices.Sorted(maps.Keys(s.reads)) {
			if !strings.HasPrefix(name, "worker-") || name == "worker-0" {
				fmt.Printf(" %s %.0f/%.0f", name, pct(s.reads[name], 50), pct(s.reads[name], 99))
			}
		}
		fmt.Println()
	}
	if s.asked != "" {
		fmt.Printf("  first check that asked its instance: %.300s\n", s.asked)
	}
	if s.firstFailure != "" {
		fmt.Printf("  first failure: %.400s\n", s.firstFailure)
	}
}

// largest is the largest size that passed.
func largest(steps []fleetStep) int {
	n := 0
	for _, s := range steps {
		if s.ok() {
			n = s.n
		}
	}
	return n
}

// BenchmarkFleetHealth measures how many instances one worker health-checks every
// minute on this machine: virtual instances (fleetfixture: their Pebble APIs and
// /health in one process, every read answered at once) with socflow's worker as its
// own process, the real dependency probes against the stack, the real HealthCheck and
// OpenCTIInstance workflows. For each size of SOCFLOW_BENCH_FLEET (default
// 500,1000,1250,1500,1750,2000,2500,3000) it sweeps for SOCFLOW_BENCH_FLEET_MINUTES (default 1), each
// instance checked once a minute at its own offset, until p99 (due time to report)
// reaches 5 s or a check is not ok, going on past the last by half as many again up to
// SOCFLOW_BENCH_FLEET_LIMIT (default 9000); then the same for a trivial workflow of the
// same shape (trivialCheck: Temporal's ceiling). SOCFLOW_BENCH_FLEET_SERVER=memory runs
// it on a dev server of its own that keeps everything in memory. b.N is ignored: one
// run is minutes long. Goal: the largest N with p99 < 5 s is at least 1000 instances
// per worker; the worker's memory and CPU per 1000 instances are reported beside it.
func BenchmarkFleetHealth(b *testing.B) {
	sizes := fleetSizes(b, "500,1000,1250,1500,1750,2000,2500,3000")
	minutes := benchCount(b, "SOCFLOW_BENCH_FLEET_MINUTES", 1)
	limit := benchCount(b, "SOCFLOW_BENCH_FLEET_LIMIT", 9000)
	b.ResetTimer()
	socflow, trivial, rssBase := runFleet(b, sizes, minutes, limit)
	b.StopTimer()
	n, ceiling := largest(socflow), largest(trivial)
	figs := []benchreport.Figure{
		{Name: "instances", Value: float64(n), Unit: "instances", Goal: &benchreport.Goal{Text: "≥ 1000 instances per worker", Op: benchreport.AtLeast, Bound: 1000}},
		{Name: "trivial-instances", Value: float64(ceiling), Unit: "instances"},
	}
	for _, s := range socflow {
		if s.n == n {
			mib, cores := s.perThousand(rssBase)
			figs = append(figs,
				benchreport.Figure{Name: "p99-ms", Value: s.p99, Unit: "ms", Goal: &benchreport.Goal{Text: "< 5 s", Op: benchreport.Less, Bound: 5000}},
				benchreport.Figure{Name: "worker-cores/1000", Value: cores, Unit: "cores"},
				benchreport.Figure{Name: "worker-rss-MiB/1000", Value: mib, Unit: "MiB"})
		}
	}
	reportFigures(b, figs)
	ratio := "n/a"
	if ceiling > 0 {
		ratio = fmt.Sprintf("%.2f", float64(n)/float64(ceiling))
		if trivial[len(trivial)-1].ok() {
			ratio += fmt.Sprintf(" or less (the trivial workflow passed every size up to the limit, %d)", limit)
		}
	}
	fmt.Printf("fleet health: largest N with p99 < 5 s: socflow %d, trivial workflow of the same shape %d; ratio %s\n", n, ceiling, ratio)
}

// TestFleetHealthShort is the fleet benchmark's short variant in `make test`: 30
// virtual instances checked for one minute — every check reports ok, and every one is
// made by the HealthCheck workflow without asking its quiet instance — so the
// benchmark's fixture, its plans and the fast path stay working.
func TestFleetHealthShort(t *testing.T) {
	socflow, trivial, _ := runFleet(t, []int{30}, 1, 30)
	for _, s := range append(socflow, trivial...) {
		if s.failed > 0 || s.checks != 30 {
			t.Fatalf("%d of %d checks failed (want 30, none failed); first: %s", s.failed, s.checks, s.firstFailure)
		}
	}
	if q := socflow[0].quiet; q != 30 {
		t.Fatalf("%d of 30 checks of quiet, healthy instances were made without asking them, want all", q)
	}
}
