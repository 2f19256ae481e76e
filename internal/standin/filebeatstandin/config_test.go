package filebeatstandin

import (
	"bytes"
	"context"
	"github.com/socflow/socflow/internal/stacktest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envOf is an environment holding only m, so tests do not depend on the machine's.
func envOf(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// moduleHome is a path.home with Wazuh's module installed (testdata/module/wazuh).
func moduleHome(t *testing.T) string {
	t.Helper()
	h, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// writeConfig writes filebeat.yml (0600, as strict.perms wants) in a new directory.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "filebeat.yml")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// testConfig runs `filebeat test config` in process.
func testConfig(t *testing.T, file string, env map[string]string, extra ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	args := append([]string{"test", "config", "-c", file, "--path.home", moduleHome(t), "--path.data", t.TempDir(), "--path.logs", t.TempDir()}, extra...)
	code := Main(context.Background(), args, envOf(env), &out, &errb)
	return code, out.String(), errb.String()
}

const moduleConfig = `output.elasticsearch.hosts:
  - ${INDEXER_HOST}
output.elasticsearch:
  protocol: https
  username: ${username}
  password: ${password}
  ssl.certificate_authorities:
    - ${CA_FILE:/etc/filebeat/certs/root-ca.pem}
setup.template.json.enabled: true
setup.template.json.path: '/etc/filebeat/wazuh-template.json'
setup.ilm.enabled: false
filebeat.modules:
  - module: wazuh
    alerts:
      enabled: true
    archives:
      enabled: false
logging.level: info
`

func TestTestConfig(t *testing.T) {
	ca := stacktest.NewCA(t, "root-ca").CertFile
	file := writeConfig(t, moduleConfig)
	full := map[string]string{"INDEXER_HOST": "10.0.0.1:9200", "username": "admin", "password": "s3cret", "CA_FILE": ca}
	code, out, errs := testConfig(t, file, full)
	if code != 0 || out != "Config OK\n" {
		t.Fatalf("test config with every variable set: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	missing := map[string]string{"INDEXER_HOST": "10.0.0.1:9200", "username": "admin", "CA_FILE": ca}
	code, out, errs = testConfig(t, file, missing)
	want := "Exiting: error initializing publisher: missing field accessing 'output.elasticsearch.password' (source:'" + file + "')\n"
	if code != 1 || out != "" || errs != want {
		t.Fatalf("missing ${password}: exit %d, stdout %q, stderr %q; want stderr %q", code, out, errs, want)
	}

	// The default of ${CA_FILE:...} applies, and a CA file that is not there stops filebeat.
	noCA := map[string]string{"INDEXER_HOST": "h", "username": "u", "password": "p"}
	code, _, errs = testConfig(t, file, noCA)
	if code != 1 || !strings.Contains(errs, "Exiting: error initializing publisher:") || !strings.Contains(errs, "/etc/filebeat/certs/root-ca.pem: no such file or directory") {
		t.Fatalf("missing CA file: exit %d, stderr %q", code, errs)
	}
}

func TestConfigRefusals(t *testing.T) {
	out := "output.elasticsearch.hosts: [\"127.0.0.1:9200\"]\n"
	for _, tc := range []struct {
		name, body string
		home       string // "" means the testdata module home
		want       string
	}{
		{"yaml", "output.elasticsearch:\n  hosts: [a\n", "", "Exiting: error loading config file: yaml: line 2: did not find expected ',' or ']'"},
		{"no output", "filebeat.inputs:\n  - paths: [/x]\n", "", "Exiting: No outputs are defined. Please define one under the output section."},
		{"two outputs", out + "output.file.path: /tmp\n", "", "Exiting: error unpacking output config: more than one namespace configured accessing 'output'"},
		{"nothing to read", out, "", "Exiting: " + errNoInputs.Error()},
		{"module not installed", out + "filebeat.modules:\n  - module: wazuh\n    alerts: {enabled: true}\n", t.TempDir(),
			"Exiting: " + errNoInputs.Error()},
		{"unknown fileset", out + "filebeat.modules:\n  - module: wazuh\n    alertz: {enabled: true}\n", "", "Exiting: fileset wazuh/alertz is configured but doesn't exist"},
		{"no enabled fileset", out + "filebeat.modules:\n  - module: wazuh\n    alerts: {enabled: false}\n", "", "Exiting: module wazuh is configured but has no enabled filesets"},
		{"index without template", out + "output.elasticsearch.index: custom-%{+yyyy.MM.dd}\nfilebeat.inputs:\n  - paths: [/x]\n", "",
			"Exiting: setup.template.name and setup.template.pattern have to be set if index name is modified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeConfig(t, tc.body)
			args := []string{"test", "config", "-e", "-c", file, "--path.data", t.TempDir()}
			home := tc.home
			if home == "" {
				home = moduleHome(t)
			}
			var o, e bytes.Buffer
			code := Main(context.Background(), append(args, "--path.home", home), envOf(nil), &o, &e)
			if code != 1 || !strings.Contains(e.String(), tc.want) || o.Len() != 0 {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant %q", code, o.String(), e.String(), tc.want)
			}
			if tc.name == "module not installed" && !strings.Contains(e.String(), "ERROR\t[modules]\tfileset/modules.go:471\tNot loading modules. Module directory not found: "+filepath.Join(home, "module")) {
				t.Fatalf("no module-directory error in the log:\n%s", e.String())
			}
		})
	}
}

func TestStrictPerms(t *testing.T) {
	file := writeConfig(t, "output.elasticsearch.hosts: [h]\nfilebeat.inputs:\n  - paths: [/x]\n")
	if err := os.Chmod(file, 0o664); err != nil {
		t.Fatal(err)
	}
	code, _, errs := testConfig(t, file, nil)
	want := `Exiting: error loading config file: config file ("` + file + `") can only be writable by the owner but the permissions are "-rw-rw-r--" (to fix the permissions use: 'chmod go-w ` + file + `')`
	if code != 1 || strings.TrimSpace(errs) != want {
		t.Fatalf("exit %d, stderr %q, want %q", code, errs, want)
	}
	if code, out, errs := testConfig(t, file, nil, "--strict.perms=false"); code != 0 || out != "Config OK\n" {
		t.Fatalf("--strict.perms=false: exit %d %q %q", code, out, errs)
	}
}

func TestCommandLine(t *testing.T) {
	var o, e bytes.Buffer
	if code := Main(context.Background(), []string{"version"}, envOf(nil), &o, &e); code != 0 || !strings.HasPrefix(o.String(), "filebeat version 7.10.2 (") {
		t.Fatalf("version: %d %q %q", code, o.String(), e.String())
	}
	o.Reset()
	e.Reset()
	if code := Main(context.Background(), []string{"-e", "--bogus"}, envOf(nil), &o, &e); code != 1 || !strings.HasPrefix(e.String(), "Error: unknown flag: --bogus\n") {
		t.Fatalf("unknown flag: %d %q", code, e.String())
	}
	cl, err := parseArgs([]string{"-e", "-c", "fb.yml", "--path.home", "/h", "--path.data=/d", "--strict.perms=false", "-Eoutput.x=1",
		"--standin.scan-frequency", "2s"}, envOf(map[string]string{"FILEBEAT_STANDIN_MAX_BACKOFF": "3s"}))
	if err != nil {
		t.Fatal(err)
	}
	if !cl.toStderr || cl.strictPerms || cl.configFile() != "/h/fb.yml" || cl.paths.Data != "/d" || cl.paths.Logs != "/h/logs" ||
		!reflect.DeepEqual(cl.overrides, []string{"output.x=1"}) {
		t.Fatalf("parsed %+v", cl)
	}
	want := RealTimings()
	want.ScanFrequency, want.MaxBackoff = 2*time.Second, 3*time.Second
	if cl.timings != want {
		t.Fatalf("timings %+v, want %+v", cl.timings, want)
	}
}

func TestExpandAndNormalize(t *testing.T) {
	tr, err := parseYAML([]byte("output.elasticsearch.hosts: ${HOSTS}\noutput.elasticsearch:\n  username: \"${U:anon}\"\n  password: \"p$$w${X}\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := expand(tr, "", "f.yml", envOf(map[string]string{"HOSTS": `["a:1", "b:2"]`, "X": "!"}))
	if err != nil {
		t.Fatal(err)
	}
	want := tree{"output": tree{"elasticsearch": tree{"hosts": []any{"a:1", "b:2"}, "username": "anon", "password": "p$w!"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
	_, err = expand(tree{"a": []any{"x", "${NOPE}"}}, "", "f.yml", envOf(nil))
	if err == nil || err.Error() != "missing field accessing 'a.1' (source:'f.yml')" {
		t.Fatalf("missing variable: %v", err)
	}
}

func TestHostsAndIndex(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9200":        "https://127.0.0.1:9200",
		"indexer":               "https://indexer:9200",
		"http://indexer:9201":   "http://indexer:9201",
		"https://[::1]":         "https://[::1]:9200",
		"https://a.example/es/": "https://a.example:9200/es/",
	} {
		u, err := hostURL(in, "https", "")
		if err != nil || u.String() != want {
			t.Fatalf("hostURL(%q) = %v %v, want %s", in, u, err, want)
		}
	}
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if got := formatIndex("Wazuh-%{[agent.version]}-%{+yyyy.MM.dd}", ts, map[string]any{"agent": map[string]any{"version": "7.10.2"}}); got != "wazuh-7.10.2-2026.03.04" {
		t.Fatalf("formatIndex = %q", got)
	}
}
