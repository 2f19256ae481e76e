package connectorfixture

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnvIsWhatSocflowSetsPlusTheFixturesOwn(t *testing.T) {
	got := strings.Join(Config{URL: "http://cti:8080", Token: "t", ID: "id", Name: "f", Interval: "PT2S"}.Env(), " ")
	want := "CONNECTOR_ID=id CONNECTOR_LOG_LEVEL=info CONNECTOR_NAME=f CONNECTOR_SCOPE=identity CONNECTOR_TYPE=EXTERNAL_IMPORT " +
		"FIXTURE_INTERVAL=PT2S OPENCTI_TOKEN=t OPENCTI_URL=http://cti:8080"
	if got != want {
		t.Errorf("Env() = %s\nwant   %s", got, want)
	}
}

// TestScriptImportsWithTheStacksPycti compiles connector.py and imports what it
// uses with the stack's pycti, so a pycti upgrade that moves a name fails here.
func TestScriptImportsWithTheStacksPycti(t *testing.T) {
	python := os.Getenv("SOCFLOW_PYCTI_PYTHON")
	if python == "" {
		t.Skip("no SOCFLOW_PYCTI_PYTHON: export `deploy/local/stack env`")
	}
	path, err := WriteScript(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	check := "import importlib.util, sys; spec = importlib.util.spec_from_file_location('fixture', sys.argv[1]); " +
		"m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); print(m.FixtureConnector.__name__)"
	out, err := exec.Command(python, "-c", check, path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "FixtureConnector" {
		t.Fatalf("%s %s: %v\n%s", python, filepath.Base(path), err, out)
	}
	if argv := Command(python, path); argv[0] != python || argv[len(argv)-1] != path {
		t.Errorf("Command = %v", argv)
	}
}
