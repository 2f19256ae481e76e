package main

// Process-level tests of the stand-in binary: exit codes, what it prints
// before its logger exists, SIGTERM mid-init and in steady state, the forked
// lock child as ps sees it, and kill -9 or a failing migration during an upgrade.

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/socflow/socflow/internal/stacktest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "opencti-standin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "opencti-standin")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build the stand-in: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fast are flags for a quick boot.
var fast = []string{"-start-delay", "0", "-fork-delay", "0", "-ready-delay", "0", "-lock-retry", "1s", "-lock-ttl", "2s", "-lock-linger", "1s"}

// env is the stack's OpenCTI environment with per-test names.
func env(t *testing.T) []string {
	t.Helper()
	st := stacktest.Get(t)
	s3, _ := url.Parse(st.S3Endpoint)
	id := "stp" + strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	t.Cleanup(func() { st.RemoveInstanceData(id) })
	return append(os.Environ(),
		"APP__PORT=0", "APP__ADMIN__TOKEN=6f7c1e52-8a3b-4c9d-9e0f-1a2b3c4d5e6f", "APP__HEALTH_ACCESS_KEY=k",
		"APP__ENCRYPTION_KEY="+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)),
		"REDIS__HOSTNAME="+st.RedisHost, "REDIS__PORT="+strconv.Itoa(st.RedisPort), "REDIS__PASSWORD="+st.RedisPassword, "REDIS__NAMESPACE="+id,
		"RABBITMQ__HOSTNAME="+st.RabbitMQHost, "RABBITMQ__PORT="+strconv.Itoa(st.RabbitMQPort), "RABBITMQ__USERNAME="+st.RabbitMQUser,
		"RABBITMQ__PASSWORD="+st.RabbitMQPassword, "RABBITMQ__VHOST="+st.RabbitMQVHost, "RABBITMQ__QUEUE_PREFIX="+id,
		"ELASTICSEARCH__URL="+st.OpenSearchURL, "ELASTICSEARCH__INDEX_PREFIX="+id, "ELASTICSEARCH__NUMBER_OF_REPLICAS=0",
		"MINIO__ENDPOINT="+s3.Hostname(), "MINIO__PORT="+s3.Port(), "MINIO__ACCESS_KEY="+st.S3AccessKey, "MINIO__SECRET_KEY="+st.S3SecretKey,
		"MINIO__BUCKET_NAME="+id, "MINIO__BUCKET_REGION="+st.S3Region, "SMTP__PORT=1")
}

// proc is the stand-in running as a process, stdout in a file (a pipe would be
// held open by the lock child).
type proc struct {
	cmd *exec.Cmd
	out string
}

func startProc(t *testing.T, dir string, environ []string, args ...string) *proc {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, environ, f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return &proc{cmd: cmd, out: f.Name()}
}

func (p *proc) log() string { b, _ := os.ReadFile(p.out); return string(b) }

func (p *proc) waitLog(t *testing.T, s string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(p.log(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 60s:\n%s", s, p.log())
		}
	}
}

func (p *proc) exitCode(t *testing.T, within time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("still running after %s:\n%s", within, p.log())
	}
	return 0
}

func TestExitsBeforeAnyLogLineWhenLogsNotWritable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "logs"), nil, 0o644); err != nil { // a file where the directory should be
		t.Fatal(err)
	}
	out, err := runQuiet(dir, os.Environ())
	if code := exitCode(err); code != 1 || strings.Contains(out.stdout, "{") || !strings.Contains(out.stderr, "log directory") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.stdout, out.stderr)
	}
}

func TestExitsBeforeAnyLogLineWithoutPython(t *testing.T) {
	out, err := runQuiet(t.TempDir(), os.Environ(), "-python", "/nonexistent/python3")
	if code := exitCode(err); code != 1 || out.stdout != "" || !strings.Contains(out.stderr, "Python3 is not available") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.stdout, out.stderr)
	}
}

type outputs struct{ stdout, stderr string }

func runQuiet(dir string, environ []string, args ...string) (outputs, error) {
	var o, e bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, append(environ, "APP__ADMIN__TOKEN=6f7c1e52-8a3b-4c9d-9e0f-1a2b3c4d5e6f"), &o, &e
	err := cmd.Run()
	return outputs{o.String(), e.String()}, err
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestDependencyFailureExitsOneAfterStartDelay(t *testing.T) {
	environ := append(env(t), "RABBITMQ__PASSWORD=wrong")
	began := time.Now()
	p := startProc(t, t.TempDir(), environ, "-start-delay", "1s")
	if code := p.exitCode(t, 30*time.Second); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, p.log())
	}
	if d := time.Since(began); d < time.Second {
		t.Errorf("failed after %s, before -start-delay", d)
	}
	if !strings.Contains(p.log(), `"message":"[OPENCTI] System dependencies check failed"`) ||
		!strings.Contains(p.log(), `"name":"DATABASE_ERROR"`) {
		t.Errorf("log:\n%s", p.log())
	}
}

func TestSIGTERMMidInitExitsZeroAtOnceAndLeavesTheChild(t *testing.T) {
	environ := env(t)
	dir := t.TempDir()
	p := startProc(t, dir, environ, append(fast, "-init-delay", "1m")...)
	p.waitLog(t, "[INIT] Starting platform initialization")
	child := findChild(t, p.cmd.Process.Pid)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	began := time.Now()
	if code := p.exitCode(t, 5*time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("SIGTERM mid-init took %s, want ≈ 0.1 s", d)
	}
	// The child ignores SIGTERM and outlives its parent.
	_ = syscall.Kill(child, syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	if syscall.Kill(child, 0) != nil {
		t.Error("the lock child died with its parent or on SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "opencti.log")); err != nil {
		t.Errorf("no log file: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
}

// findChild returns the pid of parent's lock child, checking its argv.
func findChild(t *testing.T, parent int) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 3 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) < 2 || args[1] != "-child-lock.manager" {
			t.Fatalf("child %d argv = %q, want <binary> -child-lock.manager …", pid, args)
		}
		if pgid, _ := syscall.Getpgid(pid); pgid != mustPgid(parent) {
			t.Errorf("lock child in process group %d, parent in %d", pgid, mustPgid(parent))
		}
		return pid
	}
	t.Fatalf("no lock child of %d", parent)
	return 0
}

func mustPgid(pid int) int { g, _ := syscall.Getpgid(pid); return g }

func TestSteadyStateStop(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hang  string
		hangs bool
	}{{"clean", "0", false}, {"hang", "1", true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProc(t, t.TempDir(), env(t), append(fast, "-init-delay", "1s", "-stop-delay", "1s", "-stop-hang", tc.hang)...)
			p.waitLog(t, "[OPENCTI] API ready on port")
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			p.waitLog(t, "SIGTERM signal received, stopping OpenCTI")
			if tc.hangs {
				time.Sleep(2 * time.Second)
				if p.cmd.Process.Signal(syscall.Signal(0)) != nil {
					t.Fatal("a hanging stop ended by itself")
				}
				_ = p.cmd.Process.Kill()
				return
			}
			if code := p.exitCode(t, 10*time.Second); code != 0 || !strings.Contains(p.log(), "[OPENCTI] Platform stopped ") {
				t.Fatalf("exit %d:\n%s", code, p.log())
			}
		})
	}
}

// upgradeFlags start the binary as 7.260318.0 on existing data, quickly but for
// the step given to each migration.
func upgradeFlags(step string) []string {
	return append(append([]string{}, fast...), "-version", "7.260318.0", "-migration-delay", "0", "-migration-step-delay", step,
		"-stop-delay", "0", "-stop-hang", "0")
}

// existing69 leaves an existing 6.9.28 platform in environ's names, stopped.
func existing69(t *testing.T, dir string, environ []string) {
	t.Helper()
	p := startProc(t, dir, environ, append(append([]string{}, fast...), "-version", "6.9.28", "-init-delay", "1s", "-stop-delay", "0", "-stop-hang", "0")...)
	p.waitLog(t, "[OPENCTI] API ready on port")
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(t, 10*time.Second); code != 0 {
		t.Fatalf("6.9.28 stop: exit %d:\n%s", code, p.log())
	}
}

// envValue is name's value in environ.
func envValue(environ []string, name string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestKill9MidMigrationThenLockErrorThenResume is §8's kill -9 during the
// upgrade's migrations: the next start within the lock's TTL (kept alive by the
// orphaned lock child) exits 1 with LOCK_ERROR and "[OPENCTI] Platform default
// initialization failed"; once the lock has expired, a start reads the two
// recorded migrations, runs the three after lastRun, and opens the port.
func TestKill9MidMigrationThenLockErrorThenResume(t *testing.T) {
	environ := env(t)
	dir := t.TempDir()
	existing69(t, dir, environ)

	killed := startProc(t, dir, environ, upgradeFlags("1s")...)
	for deadline := time.Now().Add(60 * time.Second); strings.Count(killed.log(), "[MIGRATION] Saving current configuration, ") < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no second migration within 60s:\n%s", killed.log())
		}
	}
	child := findChild(t, killed.cmd.Process.Pid)
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	_ = killed.cmd.Process.Kill()
	_ = killed.exitCode(t, 5*time.Second)

	locked := startProc(t, dir, environ, upgradeFlags("1s")...)
	if code := locked.exitCode(t, 30*time.Second); code != 1 || !strings.Contains(locked.log(), `"name":"LOCK_ERROR"`) ||
		!strings.Contains(lastLogLine(locked.log()), `"message":"[OPENCTI] Platform default initialization failed"`) {
		t.Fatalf("start within the lock's TTL: exit %d:\n%s", code, locked.log())
	}

	st := stacktest.Get(t)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", st.RedisHost, st.RedisPort), Password: st.RedisPassword})
	defer rdb.Close()
	key := envValue(environ, "REDIS__NAMESPACE") + ":{locks}:platform_init_lock"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if n, err := rdb.Exists(context.Background(), key).Result(); err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed start's init lock never expired")
		}
	}
	resumed := startProc(t, dir, environ, upgradeFlags("0")...)
	resumed.waitLog(t, "[OPENCTI] API ready on port")
	log := resumed.log()
	for _, want := range []string{"[MIGRATION] Read 2 migrations from the database", "[MIGRATION] 3 migrations will be executed",
		"[MIGRATION] Migration process completed", "[MIGRATION] Platform version updated to 7.260318.0"} {
		if !strings.Contains(log, want) {
			t.Errorf("resumed start lacks %q:\n%s", want, log)
		}
	}
	if strings.Count(log, "[MIGRATION] Saving current configuration, ") != 3 || strings.Contains(log, "Replaying migration") {
		t.Errorf("resumed start ran other than the 3 remaining migrations:\n%s", log)
	}
	_ = resumed.cmd.Process.Signal(syscall.SIGTERM)
	if code := resumed.exitCode(t, 10*time.Second); code != 0 {
		t.Errorf("stop after the resume: exit %d", code)
	}
}

// TestFailMigrationExitsOne: -fail-migration makes the upgrade's
// legacy_token_migration fail; the process logs it and exits 1 after the four
// migrations before it were recorded.
func TestFailMigrationExitsOne(t *testing.T) {
	environ := env(t)
	dir := t.TempDir()
	existing69(t, dir, environ)
	p := startProc(t, dir, environ, append(upgradeFlags("0"), "-fail-migration", "legacy_token_migration")...)
	code := p.exitCode(t, 30*time.Second)
	log := p.log()
	if code != 1 || strings.Count(log, "[MIGRATION] Saving current configuration, ") != 4 ||
		!strings.Contains(log, `"message":"Migration up error"`) || !strings.Contains(log, "-legacy_token_migration.js (injected by -fail-migration)") ||
		!strings.Contains(lastLogLine(log), `"message":"[OPENCTI] Platform default initialization failed"`) {
		t.Fatalf("exit %d:\n%s", code, log)
	}
}

// lastLogLine is the log's last line.
func lastLogLine(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	return lines[len(lines)-1]
}
