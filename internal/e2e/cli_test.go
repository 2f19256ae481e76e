package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// readmeBlock returns the commands of the first code block after heading in the
// README, one per entry, with backslash continuations joined; the test fails unless
// they are the commands it names in want, one each, so that a README edit is noticed.
func readmeBlock(t *testing.T, heading string, want ...string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, heading)
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	s = s[i:]
	start := strings.Index(s, "```\n")
	end := strings.Index(s[start+4:], "```")
	if start < 0 || end < 0 {
		t.Fatalf("no code block under %q", heading)
	}
	var cmds []string
	cur := ""
	for _, line := range strings.Split(s[start+4:start+4+end], "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		cur += strings.TrimSpace(strings.TrimSuffix(line, "\\")) + " "
		if !strings.HasSuffix(line, "\\") {
			cmds = append(cmds, strings.TrimSpace(cur))
			cur = ""
		}
	}
	if len(cmds) != len(want) {
		t.Fatalf("README block has %d commands, want %s: %q", len(cmds), strings.Join(want, ", "), cmds)
	}
	return cmds
}

// writeJSON writes v as JSON to the file name in dir (JSON is YAML, for the starter's -f).
func writeJSON(t *testing.T, dir, name string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReadmeTctlAndTemporalCommands runs the README's tctl and temporal commands
// verbatim with the real binaries, changing only what is this machine's (address,
// task queue, workflow ID, input file; $CODEC_TOKEN comes from the environment as the
// README says): a deploy started by tctl and by temporal completes, and the status
// query reads as plain JSON in tctl, which has no codec.
func TestReadmeTctlAndTemporalCommands(t *testing.T) {
	st := stacktest.Get(t)
	_, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second})
	dir := t.TempDir()
	writeJSON(t, dir, "input.json", workflows.DeployInput{Instance: inst})
	cmds := readmeBlock(t, "### With tctl and temporal", "run", "execute", "query", "query")
	local := strings.NewReplacer(
		"127.0.0.1:7233", st.TemporalAddress,
		"--taskqueue socflow", "--taskqueue "+queue, "--task-queue socflow", "--task-queue "+queue,
		"opencti-deploy-demo", workflows.DeployWorkflowID(inst.Name),
		"http://127.0.0.1:8089", "http://"+os.Getenv("SOCFLOW_CODEC_ADDR"),
	)
	_, must := readmeRunner(t, dir, local, cmds)

	if out := must(0); !strings.Contains(out, "COMPLETED") && !strings.Contains(out, "completed") {
		t.Errorf("tctl workflow run did not report completion:\n%s", out)
	}
	if out := must(1); !strings.Contains(strings.ToLower(out), "completed") {
		t.Errorf("temporal workflow execute did not report completion:\n%s", out)
	}
	out := must(2)
	if strings.Contains(out, "encoding") || !strings.Contains(out, `"phase"`) || !strings.Contains(out, `"done"`) {
		t.Errorf("tctl's status query is not readable plain JSON with the phase done:\n%s", out)
	}
	if out := must(3); !strings.Contains(out, "done") {
		t.Errorf("temporal's status query (with the codec) does not show the phase done:\n%s", out)
	}
}

// TestReadmeInstanceCommands runs the README's instance commands verbatim with the real
// tctl, temporal and starter binaries, changing only what is this machine's (address,
// task queue, instance name, input file): tctl starts OpenCTIInstance, the starter's
// Update adds two workers, its Signal and tctl's Signal change the log level and the
// workers back, temporal's Update (through the codec) restores the log level, and
// tctl's status query reads as plain JSON. A bad change makes the starter exit 1
// naming the field.
func TestReadmeInstanceCommands(t *testing.T) {
	st := stacktest.Get(t)
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second})
	dir := t.TempDir()
	writeJSON(t, dir, "input.json", workflows.InstanceInput{Instance: inst})
	cmds := readmeBlock(t, "## Changing an instance: the instance workflow", "start", "starter change", "starter change", "signal", "update", "query")
	id := workflows.InstanceWorkflowID(inst.Name)
	terminateAtEnd(t, c, id)
	local := strings.NewReplacer(
		"127.0.0.1:7233", st.TemporalAddress,
		"--taskqueue socflow", "--taskqueue "+queue,
		"opencti/demo", id,
		"config set demo ", "config set "+inst.Name+" ",
		"http://127.0.0.1:8089", "http://"+os.Getenv("SOCFLOW_CODEC_ADDR"),
	)
	run, must := readmeRunner(t, dir, local, cmds)

	must(0)
	waitInstance(t, c, id, 3*time.Minute, "active", activeInstance)
	if out := must(1); !strings.Contains(out, "started: worker-3, worker-4") || strings.Contains(out, "restarted") {
		t.Errorf("starter config set workers=5 did not start exactly worker-3 and worker-4:\n%s", out)
	}
	if out := must(2); !strings.Contains(out, "applied") || !strings.Contains(out, "restarted platform, worker-0") {
		t.Errorf("starter config set logLevel=debug --signal did not restart the platform, then the workers:\n%s", out)
	}
	must(3)
	s := waitInstance(t, c, id, time.Minute, "tctl's signal applied", func(s workflows.InstanceStatus) bool {
		return len(s.Recent) > 0 && s.Recent[len(s.Recent)-1].RequestID == "tctl-1"
	})
	if o := s.Recent[len(s.Recent)-1]; o.State != "applied" || !strings.Contains(o.Summary, "stopped worker-3, worker-4") || s.Workers != 3 {
		t.Errorf("tctl's signal: %+v (workers %d)", o, s.Workers)
	}
	if out := must(4); !strings.Contains(out, "temporal-1") || !strings.Contains(out, "platform") {
		t.Errorf("temporal workflow update execute did not show the result:\n%s", out)
	}
	out := must(5)
	if strings.Contains(out, "encoding") || !strings.Contains(out, `"active"`) || !strings.Contains(out, `"logLevel"`) {
		t.Errorf("tctl's status query is not readable plain JSON, active:\n%s", out)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 3 {
		t.Errorf("platform started %d times, want 3 (deploy, debug, info)", n)
	}
	if out, err := run("bin/starter config set demo workers=-1"); err == nil || !strings.Contains(out, "opencti.workers: must be at least 1 (got -1)") {
		t.Errorf("a bad change: exit %v, want 1 naming the field:\n%s", err, out)
	}
}

// TestReadmeInstanceIntegrationCommands runs the README's second instance block
// verbatim with the real starter, tctl and temporal binaries, changing only what is this
// machine's: the starter deploys through Update-With-Start and follows the deploy; plan
// finds no difference; tctl's preview query says removing S3 would block the instance
// and stop its workers; unrelate does exactly that and status exits 1 naming it; tctl's
// SetIntegration signal brings S3 back and the workers with it; temporal's RotateSecret
// Update gives the admin token a new value and restarts platform and workers; rotating
// the encryption key is refused, naming why.
func TestReadmeInstanceIntegrationCommands(t *testing.T) {
	st := stacktest.Get(t)
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: time.Second})
	dir := t.TempDir()
	writeJSON(t, dir, "instance.yaml", inst)
	writeJSON(t, dir, "s3.json", workflows.SetIntegrationRequest{RequestID: "tctl-s3", S3: inst.Integrations.S3})
	cmds := readmeBlock(t, "### Integrations, secrets and `deploy -f` on an existing instance",
		"deploy", "plan", "preview", "unrelate", "status", "signal", "update", "rotate")
	id := workflows.InstanceWorkflowID(inst.Name)
	terminateAtEnd(t, c, id)
	local := strings.NewReplacer(
		"127.0.0.1:7233", st.TemporalAddress,
		"opencti/demo", id,
		" demo ", " "+inst.Name+" ",
		"status demo", "status "+inst.Name,
		"http://127.0.0.1:8089", "http://"+os.Getenv("SOCFLOW_CODEC_ADDR"),
	)
	run, must := readmeRunner(t, dir, local, cmds, "SOCFLOW_TASK_QUEUE="+queue)

	if out := must(0); !strings.Contains(out, "deploy of "+inst.Name+": workflow "+id) || !strings.Contains(out, "phase: waiting-platform") ||
		!strings.Contains(out, "deployed "+inst.Name+": OpenCTI 6.9.3") {
		t.Errorf("starter deploy did not deploy through the instance workflow, following the deploy:\n%s", out)
	}
	if out := must(1); !strings.Contains(out, "plan (now): no difference") {
		t.Errorf("starter plan of the deployed spec:\n%s", out)
	}
	if out := must(2); strings.Contains(out, "encoding") || !strings.Contains(out, `"blocked":"missing integration(s): s3"`) ||
		!strings.Contains(out, `"worker-0"`) {
		t.Errorf("tctl's preview query does not say, in plain JSON, that removing s3 blocks and stops the workers:\n%s", out)
	}
	starts := platformStarts(t, inst.Pebble.Socket)
	if out := must(3); !strings.Contains(out, "stopped: worker-0, worker-1, worker-2") || !strings.Contains(out, "blocked: missing integration(s): s3") {
		t.Errorf("starter unrelate s3:\n%s", out)
	}
	if got := activeServices(t, inst.Pebble.Socket); strings.Join(got, ",") != "platform" {
		t.Errorf("active services after s3 was removed: %v, want the platform alone", got)
	}
	if out, err := run(cmds[4]); err == nil || !strings.Contains(out, "status: blocked: missing integration(s): s3") || !strings.Contains(out, "missing integrations: s3") {
		t.Errorf("starter status while blocked: exit %v, want 1 naming s3:\n%s", err, out)
	}
	must(5)
	s := waitInstance(t, c, id, time.Minute, "s3 back", func(s workflows.InstanceStatus) bool {
		return len(s.Recent) > 0 && s.Recent[len(s.Recent)-1].RequestID == "tctl-s3"
	})
	if o := s.Recent[len(s.Recent)-1]; o.State != "applied" || s.Status.Kind != workflows.StatusActive || len(s.Missing) != 0 ||
		!strings.Contains(o.Summary, "started worker-0, worker-1, worker-2") {
		t.Errorf("tctl's SetIntegration signal: %+v, status %+v", o, s.Status)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != starts {
		t.Errorf("the platform started %d times while s3 was removed and restored, want %d (untouched)", n, starts)
	}
	if out := must(6); !strings.Contains(out, "rotate-1") || !strings.Contains(out, "opencti.adminToken") || !strings.Contains(out, "worker-0") {
		t.Errorf("temporal's RotateSecret update did not show the rotation and restarts:\n%s", out)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != starts+1 {
		t.Errorf("the platform started %d times after the token rotation, want %d", n, starts+1)
	}
	if out, err := run(cmds[7]); err == nil || !strings.Contains(out, "opencti.encryptionKey cannot be rotated: OpenCTI 7 hashes every API token") {
		t.Errorf("rotating the encryption key: exit %v, want 1 with the reason:\n%s", err, out)
	}
}

// TestStarterDeployDuringADeployAppliesTheDifference: a second `starter deploy -f` with
// workers: 2, sent while the first (workers: 3) is still waiting for the platform, is
// never silently attached: it prints the preview of the difference (after the first
// deploy's own change), waits for the deploy, and applies it — 2 workers run, the
// platform started once.
func TestStarterDeployDuringADeployAppliesTheDifference(t *testing.T) {
	c, queue, inst := instanceOnWorker(t, instanceOpts{initDelay: 15 * time.Second})
	id := workflows.InstanceWorkflowID(inst.Name)
	terminateAtEnd(t, c, id)
	dir := t.TempDir()
	two := 2
	inst2 := inst
	inst2.OpenCTI.Workers = &two
	writeJSON(t, dir, "three.yaml", inst)
	writeJSON(t, dir, "two.yaml", inst2)
	starter := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, "socflow-starter"), args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SOCFLOW_TASK_QUEUE="+queue)
		out, err := cmd.CombinedOutput()
		t.Logf("$ starter %s\n%s", strings.Join(args, " "), out)
		return string(out), err
	}
	if out, err := starter("deploy", "-f", "three.yaml", "-detach"); err != nil {
		t.Fatalf("first deploy: %v\n%s", err, out)
	}
	waitStatus(t, c, workflows.DeployWorkflowID(inst.Name), time.Minute, "waiting for the platform", func(s workflows.DeployStatus) bool {
		return s.Phase == workflows.PhaseWaitingPlatform
	})
	out, err := starter("deploy", "-f", "two.yaml")
	if err != nil {
		t.Fatalf("second deploy: %v\n%s", err, out)
	}
	for _, want := range []string{
		"instance " + inst.Name + " exists (workflow " + id + "): applying the difference as a change",
		"plan (after the 1 change(s) queued before it): workers 3 -> 2",
		"- stop      worker-2",
		"note: the deploy has not finished: the change is applied once it has",
		"workers 3 -> 2",
		"stopped: worker-2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("second deploy's output lacks %q", want)
		}
	}
	st := waitInstance(t, c, id, time.Minute, "active", activeInstance)
	if got := activeServices(t, inst.Pebble.Socket); st.Workers != 2 || strings.Join(got, ",") != "platform,worker-0,worker-1" {
		t.Errorf("after both deploys: status workers %d, active services %v; want 2 workers running", st.Workers, got)
	}
	if n := platformStarts(t, inst.Pebble.Socket); n != 1 {
		t.Errorf("platform started %d times, want once", n)
	}
}

// readmeRunner returns how a test runs README command lines with the real tctl, temporal
// and starter binaries in dir, after local's replacements (this machine's address,
// queue, names), with CODEC_TOKEN and env set: run returns the output and error, must(i)
// runs cmds[i] and fails the test when it fails.
func readmeRunner(t *testing.T, dir string, local *strings.Replacer, cmds []string, env ...string) (run func(string) (string, error), must func(int) string) {
	bins := map[string]string{"tctl": os.Getenv("SOCFLOW_TCTL_BIN"), "temporal": os.Getenv("SOCFLOW_TEMPORAL_BIN"),
		"bin/starter": filepath.Join(bin, "socflow-starter")}
	run = func(line string) (string, error) {
		t.Helper()
		name, rest, _ := strings.Cut(local.Replace(line), " ")
		cmd := exec.Command("bash", "-c", bins[name]+" "+rest)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "CODEC_TOKEN="+os.Getenv("SOCFLOW_CODEC_TOKEN")), env...)
		out, err := cmd.CombinedOutput()
		t.Logf("$ %s\n%s", line, out)
		return string(out), err
	}
	must = func(i int) string {
		t.Helper()
		out, err := run(cmds[i])
		if err != nil {
			t.Fatalf("README command %q failed: %v\n%s", cmds[i], err, out)
		}
		return out
	}
	return run, must
}
