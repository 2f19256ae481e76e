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
// README, one per entry, with backslash continuations joined.
func readmeBlock(t *testing.T, heading string) []string {
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
	return cmds
}

// TestReadmeTctlAndTemporalCommands runs the README's tctl and temporal commands
// verbatim with the real binaries, changing only what is this machine's (address,
// task queue, workflow ID, input file; $CODEC_TOKEN comes from the environment as the
// README says): a deploy started by tctl and by temporal completes, and the status
// query reads as plain JSON in tctl, which has no codec.
func TestReadmeTctlAndTemporalCommands(t *testing.T) {
	st := stacktest.Get(t)
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	inst := newInstance(t, instanceOpts{initDelay: time.Second})
	input, err := json.Marshal(workflows.DeployInput{Instance: inst})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "input.json"), input, 0o600); err != nil {
		t.Fatal(err)
	}
	cmds := readmeBlock(t, "### With tctl and temporal")
	if len(cmds) != 4 {
		t.Fatalf("README block has %d commands, want run, execute, query, query: %q", len(cmds), cmds)
	}
	local := strings.NewReplacer(
		"127.0.0.1:7233", st.TemporalAddress,
		"--taskqueue socflow", "--taskqueue "+queue, "--task-queue socflow", "--task-queue "+queue,
		"opencti-deploy-demo", workflows.DeployWorkflowID(inst.Name),
		"http://127.0.0.1:8089", "http://"+os.Getenv("SOCFLOW_CODEC_ADDR"),
	)
	bins := map[string]string{"tctl": os.Getenv("SOCFLOW_TCTL_BIN"), "temporal": os.Getenv("SOCFLOW_TEMPORAL_BIN")}
	run := func(i int) string {
		t.Helper()
		line := local.Replace(cmds[i])
		name, rest, _ := strings.Cut(line, " ")
		cmd := exec.Command("bash", "-c", bins[name]+" "+rest)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CODEC_TOKEN="+os.Getenv("SOCFLOW_CODEC_TOKEN"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README command %q failed: %v\n%s", cmds[i], err, out)
		}
		return string(out)
	}

	if out := run(0); !strings.Contains(out, "COMPLETED") && !strings.Contains(out, "completed") {
		t.Errorf("tctl workflow run did not report completion:\n%s", out)
	}
	if out := run(1); !strings.Contains(strings.ToLower(out), "completed") {
		t.Errorf("temporal workflow execute did not report completion:\n%s", out)
	}
	out := run(2)
	if strings.Contains(out, "encoding") || !strings.Contains(out, `"phase"`) || !strings.Contains(out, `"done"`) {
		t.Errorf("tctl's status query is not readable plain JSON with the phase done:\n%s", out)
	}
	if out := run(3); !strings.Contains(out, "done") {
		t.Errorf("temporal's status query (with the codec) does not show the phase done:\n%s", out)
	}
}
