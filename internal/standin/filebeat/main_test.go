package main

// Process-level tests of the stand-in binary: exit codes and streams of its commands,
// SIGTERM, and the data path lock a second filebeat runs into.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "filebeat-standin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "filebeat")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build the stand-in: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// home is a path.home with Wazuh's module, and a config reading alerts from dir.
func setup(t *testing.T) (home, config string) {
	t.Helper()
	home, err := filepath.Abs("../filebeatstandin/testdata")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config = filepath.Join(dir, "filebeat.yml")
	body := `output.elasticsearch.hosts: ["127.0.0.1:1"]
output.elasticsearch.password: ${password}
filebeat.modules:
  - module: wazuh
    alerts:
      enabled: true
      var.paths: ["` + filepath.Join(dir, "alerts.json") + `"]
`
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return home, config
}

func run(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), o.String(), e.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, o.String(), e.String()
}

func TestCommands(t *testing.T) {
	home, config := setup(t)
	if code, out, _ := run(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "filebeat version 7.10.2 (") {
		t.Fatalf("version: %d %q", code, out)
	}
	args := []string{"test", "config", "-c", config, "--path.home", home, "--path.data", t.TempDir(), "--path.logs", t.TempDir()}
	if code, out, errs := run(t, []string{"password=x"}, args...); code != 0 || out != "Config OK\n" || errs != "" {
		t.Fatalf("test config: %d %q %q", code, out, errs)
	}
	code, out, errs := run(t, nil, args...)
	want := "Exiting: error initializing publisher: missing field accessing 'output.elasticsearch.password' (source:'" + config + "')\n"
	if code != 1 || out != "" || errs != want {
		t.Fatalf("test config without ${password}: %d %q %q", code, out, errs)
	}
	// A run fails the same way, after logging its paths (-e: on stderr).
	code, _, errs = run(t, nil, "-e", "-c", config, "--path.home", home, "--path.data", t.TempDir())
	if code != 1 || !strings.Contains(errs, "\tERROR\tinstance/beat.go:956\tExiting: error initializing publisher: missing field") || !strings.HasSuffix(errs, want) {
		t.Fatalf("run without ${password}: %d\n%s", code, errs)
	}
}

// TestSigtermAndDataLock runs filebeat as Pebble does; a second one on the same
// path.data is refused, and SIGTERM stops the first with exit 0.
func TestSigtermAndDataLock(t *testing.T) {
	home, config := setup(t)
	data := t.TempDir()
	logf := filepath.Join(t.TempDir(), "stderr")
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(binary, "-e", "-c", config, "--path.home", home, "--path.data", data, "--strict.perms=false")
	cmd.Env, cmd.Stderr = []string{"password=x"}, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(logf); strings.Contains(string(b), "filebeat start running.") {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf)
			t.Fatalf("filebeat did not start:\n%s", b)
		}
	}
	code, _, errs := run(t, []string{"password=x"}, "-e", "-c", config, "--path.home", home, "--path.data", data)
	if code != 1 || !strings.HasSuffix(errs, "Exiting: data path already locked by another beat\n") {
		t.Fatalf("second filebeat on the same data path: %d\n%s", code, errs)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("filebeat on SIGTERM: %v", err)
	}
	if b, _ := os.ReadFile(logf); !strings.HasSuffix(string(b), "filebeat stopped.\n") {
		t.Fatalf("last line is not \"filebeat stopped.\":\n%s", b)
	}
}
