package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/secrets"
)

// proc is one live process of an instance, found through /proc.
type proc struct {
	pid     int
	cmdline string
}

// instanceProcs lists the live (not zombie) processes whose environment carries
// SOCFLOW_INSTANCE=<name>: the platform, its workers, and whatever they forked (the
// lock child inherits the environment), so a leftover cannot hide under another name.
func instanceProcs(t testing.TB, name string) []proc {
	t.Helper()
	want := []byte("SOCFLOW_INSTANCE=" + name + "\x00")
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var out []proc
	for _, d := range dirs {
		env, err := os.ReadFile(d + "/environ")
		if err != nil || !bytes.Contains(append(env, 0), want) {
			continue
		}
		if stat, err := os.ReadFile(d + "/stat"); err != nil || zombie(stat) {
			continue
		}
		cmd, _ := os.ReadFile(d + "/cmdline")
		pid, _ := strconv.Atoi(filepath.Base(d))
		out = append(out, proc{pid: pid, cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))})
	}
	return out
}

// zombie reads the state field of /proc/<pid>/stat (after the parenthesised comm).
func zombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z'
}

// requireNoProcs fails when any process of the instance is still alive within limit.
func requireNoProcs(t testing.TB, name string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		left := instanceProcs(t, name)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d process(es) of instance %s survive: %+v", len(left), name, left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// platformPID finds the platform process itself: the stand-in, not socflow-reap nor
// the lock child it forked.
func platformPID(t testing.TB, name string) int {
	t.Helper()
	for _, p := range instanceProcs(t, name) {
		if strings.Contains(p.cmdline, "opencti-standin") && !strings.Contains(p.cmdline, "child-lock") &&
			!strings.Contains(p.cmdline, "socflow-reap") {
			return p.pid
		}
	}
	t.Fatalf("no platform process of %s among %+v", name, instanceProcs(t, name))
	return 0
}

// kill9 sends SIGKILL to one process.
func kill9(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("cannot kill %d: %v", pid, err)
	}
}

// stopAllAndRequireNoProcs stops every service of the instance's container the way
// socflow does (SIGTERM to each process group, SIGKILL after the kill-delay) and fails
// if any process of the instance outlives them: what a crash left behind shows here.
func stopAllAndRequireNoProcs(t *testing.T, inst opencti.Instance, secretDir string) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Activities{Secrets: &secrets.Store{Dir: secretDir}})
	names := opencti.Services(inst)
	if _, err := env.ExecuteActivity((*activities.Activities)(nil).StopPebbleServices,
		activities.StopPebbleServicesInput{Pebble: inst.Pebble, Services: names}); err != nil {
		t.Fatalf("cannot stop %s's services: %v", inst.Name, err)
	}
	requireNoProcs(t, inst.Name, 5*time.Second)
}
