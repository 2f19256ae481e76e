//go:build linux

package reaper

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run the real socflow-reap binary over real shell commands and check
// real pids in /proc: the reaper's whole job is an interaction with the kernel that
// a fake would only restate.

// reapBin is the socflow-reap binary built by TestMain.
var reapBin string

// waitTimeout bounds every wait for the reaper, so a reaper that never exits fails
// the test instead of hanging the suite.
const waitTimeout = 15 * time.Second

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "socflow-reap-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	reapBin = filepath.Join(dir, "socflow-reap")
	build := exec.Command("go", "build", "-o", reapBin, "github.com/socflow/socflow/internal/reaper/cmd/socflow-reap")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build socflow-reap:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// reapRun is one socflow-reap process started by a test.
type reapRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout string
	stderr string
}

// startReap starts socflow-reap with args. With ownGroup it leads its own process
// group, as under Pebble. Output goes to files, not pipes: a leftover that the
// reaper failed to kill would hold a pipe open and hang the test instead of
// failing it.
func startReap(t *testing.T, ownGroup bool, args ...string) *reapRun {
	t.Helper()
	dir := t.TempDir()
	r := &reapRun{t: t, stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr")}
	out, err := os.Create(r.stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(r.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	r.cmd = exec.Command(reapBin, args...)
	r.cmd.Stdout, r.cmd.Stderr = out, errf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ownGroup {
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		}
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	})
	return r
}

// reap starts socflow-reap in its own group with the standard labels and runs the
// shell script under it.
func reap(t *testing.T, script string, flags ...string) *reapRun {
	t.Helper()
	args := append([]string{"--instance", "demo", "--plan", "sha256:abc"}, flags...)
	return startReap(t, true, append(args, "--", "sh", "-c", script)...)
}

// wait returns the reaper's exit code, failing the test if it does not exit.
func (r *reapRun) wait() int {
	r.t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-done
		r.t.Fatalf("socflow-reap did not exit within %s; stdout:\n%s", waitTimeout, r.output())
	}
	return r.cmd.ProcessState.ExitCode()
}

// output is everything the reaper and its command wrote to stdout so far.
func (r *reapRun) output() string {
	b, _ := os.ReadFile(r.stdout)
	return string(b)
}

// printed waits for the command to print "<word> <pid> ..." and returns the
// numbers after word, so the test knows the real pids of the processes it made.
func (r *reapRun) printed(word string) []int {
	r.t.Helper()
	var nums []int
	waitFor(r.t, "the command to print "+word, func() bool {
		for line := range strings.Lines(r.output()) {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != word {
				continue
			}
			nums = nums[:0]
			for _, s := range f[1:] {
				n, err := strconv.Atoi(s)
				if err != nil {
					r.t.Fatalf("line %q: %v", line, err)
				}
				nums = append(nums, n)
			}
			return true
		}
		return false
	})
	for _, pid := range nums[:1] {
		// Whatever the outcome, leave no sleep 300 behind.
		r.t.Cleanup(func() {
			if isAlive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	}
	return nums
}

// logs parses the reaper's JSON lines strictly (unknown fields fail), skipping the
// command's own plain-text output.
func (r *reapRun) logs() []Entry {
	r.t.Helper()
	var out []Entry
	sc := bufio.NewScanner(strings.NewReader(r.output()))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("{")) {
			if bytes.Contains(line, []byte("[SOCFLOW]")) {
				r.t.Errorf("reaper line is not JSON: %s", line)
			}
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var e Entry
		if err := dec.Decode(&e); err != nil {
			r.t.Fatalf("cannot parse log line %s: %v", line, err)
		}
		if e.Category != "SOCFLOW" || e.Instance != "demo" || e.Plan != "sha256:abc" {
			r.t.Errorf("line %s: want category SOCFLOW, instance demo, plan sha256:abc", line)
		}
		if _, err := time.Parse(time.RFC3339, e.Timestamp); err != nil {
			r.t.Errorf("line %s: timestamp: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// find returns the entries whose message starts with prefix.
func find(es []Entry, prefix string) []Entry {
	var out []Entry
	for _, e := range es {
		if strings.HasPrefix(e.Message, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// checkLifecycle asserts the starting line comes first and carries the reaper's
// pid, and returns the single exited line.
func (r *reapRun) checkLifecycle(es []Entry) Entry {
	r.t.Helper()
	if len(es) == 0 || es[0].Message != MsgStarting || es[0].PID != r.cmd.Process.Pid || es[0].Level != "info" {
		r.t.Fatalf("first line must be %q with the reaper's pid %d; got %+v", MsgStarting, r.cmd.Process.Pid, es)
	}
	exited := find(es, MsgExited)
	if len(exited) != 1 || exited[0].RuntimeSeconds == nil {
		r.t.Fatalf("want one %q line with runtime_seconds; got %+v", MsgExited, es)
	}
	return exited[0]
}

// isAlive reports whether pid is a running (not zombie) process.
func isAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	p, err := parseStat(b)
	return err == nil && p.alive()
}

// groupMembers lists the live processes of process group pgid.
func groupMembers(t *testing.T, pgid int) []procInfo {
	t.Helper()
	procs, err := readProcs("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []procInfo
	for _, p := range procs {
		if p.pgid == pgid && p.alive() {
			out = append(out, p)
		}
	}
	return out
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkKilled asserts that exactly the pids in want were logged as killed, as
// "sleep 300", and are gone from /proc.
func checkKilled(t *testing.T, es []Entry, want ...int) {
	t.Helper()
	killed := find(es, MsgKilledPrefix)
	if len(killed) != len(want) {
		t.Fatalf("want %d killed lines for %v, got %+v", len(want), want, killed)
	}
	for i, pid := range want {
		e := killed[i]
		if e.PID != pid || e.Cmdline != "sleep 300" || e.Level != "warn" ||
			e.Message != fmt.Sprintf("%s %d (sleep 300)", MsgKilledPrefix, pid) {
			t.Errorf("killed line %+v: want pid %d, cmdline %q", e, pid, "sleep 300")
		}
		if isAlive(pid) {
			t.Errorf("leftover %d still runs after socflow-reap exited", pid)
		}
	}
}

// The platform's crash: the command exits 1 and leaves a child that ignores TERM
// and INT, like child-lock.manager.js. It exits only once the child has exec'd
// sleep, as the lock child has long been node by the time the platform dies;
// otherwise the reaper may kill the child between fork and exec and rightly log
// the shell's command line instead of "sleep 300".
const crashScript = `trap "" TERM INT; sleep 300 & until grep -q ^sleep /proc/$!/cmdline; do :; done; echo child $!; exit 1`

func TestCrashLeftoverSurvivesWithoutReaper(t *testing.T) {
	// Control for TestCrashKillsLeftover: without the reaper, the child outlives
	// its parent, so that test's "gone" assertion is not vacuous.
	// Output to a file: the surviving child would hold a pipe open.
	path := filepath.Join(t.TempDir(), "out")
	f0, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", crashScript)
	cmd.Stdout = f0
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	_ = cmd.Run()
	f0.Close()
	out, _ := os.ReadFile(path)
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("output %q", out)
	}
	pid, _ := strconv.Atoi(f[1])
	defer syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond)
	if !isAlive(pid) {
		t.Fatalf("child %d died without the reaper: the fixture does not model the lock child", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if !isAlive(pid) {
		t.Fatalf("child %d died of SIGTERM: the fixture does not ignore TERM", pid)
	}
}

func TestCrashKillsLeftover(t *testing.T) {
	r := reap(t, crashScript)
	child := r.printed("child")[0]
	if code := r.wait(); code != 1 {
		t.Fatalf("exit code %d, want the command's 1", code)
	}
	es := r.logs()
	exited := r.checkLifecycle(es)
	if exited.ExitCode == nil || *exited.ExitCode != 1 || exited.Signal != "" || exited.Level != "error" {
		t.Errorf("exited line %+v: want exit_code 1, level error", exited)
	}
	checkKilled(t, es, child)
	if left := groupMembers(t, r.cmd.Process.Pid); len(left) != 0 {
		t.Errorf("group %d still has %+v", r.cmd.Process.Pid, left)
	}
}

func TestGroupSIGTERMStopsCleanly(t *testing.T) {
	// Pebble's stop: SIGTERM to the whole group. The command exits 0 on TERM, its
	// child ignores TERM, and Pebble would never send the SIGKILL because the
	// service exited in time.
	r := reap(t, `trap "" TERM INT; sleep 300 & until grep -q ^sleep /proc/$!/cmdline; do :; done; trap "exit 0" TERM; echo child $!; while :; do sleep 0.05; done`)
	child := r.printed("child")[0]
	pgid := r.cmd.Process.Pid
	if members := groupMembers(t, pgid); len(members) < 3 {
		t.Fatalf("want reaper, shell and sleep in group %d, got %+v", pgid, members)
	}
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(); code != 0 {
		t.Fatalf("exit code %d, want 0; output:\n%s", code, r.output())
	}
	es := r.logs()
	exited := r.checkLifecycle(es)
	if exited.ExitCode == nil || *exited.ExitCode != 0 || exited.Level != "info" {
		t.Errorf("exited line %+v: want exit_code 0", exited)
	}
	checkKilled(t, es, child)
	if left := groupMembers(t, pgid); len(left) != 0 {
		t.Errorf("group %d still has %+v after a clean stop", pgid, left)
	}
}

func TestDoubleForkedDaemonIsKilled(t *testing.T) {
	// The daemon leaves the group with setsid and its parent subshell exits, so only
	// the subreaper can find it: it re-parents to the reaper.
	r := reap(t, `(setsid sh -c 'echo daemon $$ $(cut -d" " -f5 /proc/$$/stat); exec sleep 300' &); sleep 1; exit 0`)
	got := r.printed("daemon")
	daemon, pgid := got[0], got[1]
	if pgid == r.cmd.Process.Pid {
		t.Fatalf("daemon %d stayed in the reaper's group: the fixture does not escape it", daemon)
	}
	waitFor(t, "the daemon to re-parent to the reaper", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", daemon))
		if err != nil {
			return false
		}
		p, err := parseStat(b)
		return err == nil && p.ppid == r.cmd.Process.Pid
	})
	if code := r.wait(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	checkKilled(t, r.logs(), daemon)
}

func TestExitCodePassthrough(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
		signal string
	}{
		{"exit 0", 0, ""},
		{"exit 7", 7, ""},
		{"exit 255", 255, ""},
		{"kill -KILL $$", 128 + 9, "SIGKILL"},
		{"kill -TERM $$", 128 + 15, "SIGTERM"},
	} {
		t.Run(tc.script, func(t *testing.T) {
			r := reap(t, tc.script)
			if code := r.wait(); code != tc.code {
				t.Fatalf("exit code %d, want %d", code, tc.code)
			}
			es := r.logs()
			exited := r.checkLifecycle(es)
			if tc.signal != "" {
				if exited.Signal != tc.signal || exited.ExitCode != nil {
					t.Errorf("exited line %+v: want signal %s and no exit_code", exited, tc.signal)
				}
			} else if exited.ExitCode == nil || *exited.ExitCode != tc.code || exited.Signal != "" {
				t.Errorf("exited line %+v: want exit_code %d", exited, tc.code)
			}
			if k := find(es, MsgKilledPrefix); len(k) != 0 {
				t.Errorf("nothing was left over, yet: %+v", k)
			}
		})
	}
}

func TestCannotStart(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		command string
		code    int
	}{
		{"not in PATH", "socflow-no-such-command", ExitNotFound},
		{"no such path", "/nonexistent/socflow/bin", ExitNotFound},
		{"not executable", plain, ExitCannotExecute},
		{"directory", dir, ExitCannotExecute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startReap(t, true, "--instance", "demo", "--plan", "sha256:abc", "--", tc.command, "arg")
			if code := r.wait(); code != tc.code {
				t.Fatalf("exit code %d, want %d", code, tc.code)
			}
			es := r.logs()
			if len(es) != 2 || es[0].Message != MsgStarting || es[1].Message != MsgCannotStart ||
				es[1].Level != "error" || !strings.Contains(es[1].Error, tc.command) {
				t.Errorf("want starting and cannot-start lines naming %s, got %+v", tc.command, es)
			}
		})
	}
}

func TestUsageErrorExits2(t *testing.T) {
	r := startReap(t, true, "--instance", "demo", "sh", "-c", "exit 0")
	if code := r.wait(); code != ExitUsage {
		t.Fatalf("exit code %d, want %d", code, ExitUsage)
	}
	b, _ := os.ReadFile(r.stderr)
	if !strings.Contains(string(b), "the command must follow --") || !strings.Contains(string(b), Usage) {
		t.Errorf("stderr %q: want the reason and the usage", b)
	}
	if out := r.output(); out != "" {
		t.Errorf("a usage error must run nothing, stdout %q", out)
	}
}

func TestOrphansAreReapedWhileRunning(t *testing.T) {
	r := reap(t, `(sleep 0.1 & echo orphan $!); (sleep 0.1 & echo orphan $!); echo ready 0; sleep 30`)
	r.printed("ready")
	var orphans []int
	for line := range strings.Lines(r.output()) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "orphan" {
			pid, _ := strconv.Atoi(f[1])
			orphans = append(orphans, pid)
		}
	}
	if len(orphans) != 2 {
		t.Fatalf("want 2 orphans, output:\n%s", r.output())
	}
	for _, pid := range orphans {
		// An unreaped zombie keeps its /proc entry; a reaped one has none.
		waitFor(t, fmt.Sprintf("orphan %d to be reaped", pid), func() bool {
			_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
			return os.IsNotExist(err)
		})
	}
	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(); code != 128+15 {
		t.Fatalf("exit code %d, want 143 (shell killed by SIGTERM)", code)
	}
}

func TestReaperSurvivesSignalsWithoutForward(t *testing.T) {
	// Signals to the reaper alone must neither kill it nor reach the command: under
	// Pebble they reach the command through the group already.
	r := reap(t, `trap "exit 5" TERM; echo ready 0; while :; do sleep 0.05; done`)
	r.printed("ready")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT} {
		if err := syscall.Kill(r.cmd.Process.Pid, sig); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if !isAlive(r.cmd.Process.Pid) {
		t.Fatal("socflow-reap died of a signal it must survive")
	}
	if strings.Contains(r.output(), MsgExited) {
		t.Fatal("the command exited although nothing was forwarded")
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	if code := r.wait(); code != 5 {
		t.Fatalf("exit code %d, want the trap's 5", code)
	}
}

func TestForward(t *testing.T) {
	r := reap(t, `trap "exit 5" TERM; echo ready 0; while :; do sleep 0.05; done`, "--forward")
	r.printed("ready")
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(); code != 5 {
		t.Fatalf("exit code %d, want the trap's 5 after a forwarded SIGTERM", code)
	}
}

func TestGrace(t *testing.T) {
	t.Run("leftover that exits in time is not killed", func(t *testing.T) {
		start := time.Now()
		r := reap(t, `sleep 0.2 & echo child $!; exit 0`, "--grace", "5s")
		child := r.printed("child")[0]
		if code := r.wait(); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		if k := find(r.logs(), MsgKilledPrefix); len(k) != 0 {
			t.Errorf("killed %+v although it exited within the grace", k)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %s: the grace must end once no leftover is left", d)
		}
		if isAlive(child) {
			t.Errorf("child %d alive", child)
		}
	})
	t.Run("leftover outliving the grace is killed after it", func(t *testing.T) {
		start := time.Now()
		r := reap(t, crashScript, "--grace", "300ms")
		child := r.printed("child")[0]
		if code := r.wait(); code != 1 {
			t.Fatalf("exit code %d", code)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("exited after %s, before the grace", d)
		}
		checkKilled(t, r.logs(), child)
	})
}

func TestNotGroupLeaderKillsOnlyDescendants(t *testing.T) {
	// Outside Pebble the reaper may share its group with its parent (here, this
	// test binary): it must kill its descendants and nothing else of the group,
	// or this test would not survive to report.
	r := startReap(t, false, "--instance", "demo", "--plan", "sha256:abc", "--", "sh", "-c", crashScript)
	child := r.printed("child")[0]
	if code := r.wait(); code != 1 {
		t.Fatalf("exit code %d", code)
	}
	checkKilled(t, r.logs(), child)
}
