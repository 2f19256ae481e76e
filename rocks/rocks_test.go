package rocks

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/standin/openctistandin"
	"github.com/socflow/socflow/internal/wazuh"
)

// rockcraft mirrors the keys of rockcraft's project schema that socflow's rocks use;
// strict decoding refuses any other, so a misspelt key fails here instead of in a build.
type rockcraft struct {
	Name                string                       `json:"name"`
	Title               string                       `json:"title,omitempty"`
	Summary             string                       `json:"summary"`
	Description         string                       `json:"description"`
	Version             string                       `json:"version"`
	Base                string                       `json:"base"`
	BuildBase           string                       `json:"build-base,omitempty"`
	License             string                       `json:"license"`
	RunUser             string                       `json:"run-user,omitempty"`
	Platforms           map[string]*platform         `json:"platforms"`
	PackageRepositories []packageRepository          `json:"package-repositories,omitempty"`
	Environment         map[string]string            `json:"environment,omitempty"`
	EntrypointService   string                       `json:"entrypoint-service,omitempty"`
	Services            map[string]pebbleService     `json:"services,omitempty"`
	Checks              map[string]map[string]string `json:"checks,omitempty"`
	Parts               map[string]part              `json:"parts"`
}

type platform struct {
	BuildOn  []string `json:"build-on,omitempty"`
	BuildFor []string `json:"build-for,omitempty"`
}

type packageRepository struct {
	Type       string   `json:"type"`
	URL        string   `json:"url"`
	Suites     []string `json:"suites,omitempty"`
	Components []string `json:"components,omitempty"`
	KeyID      string   `json:"key-id"`
	KeyServer  string   `json:"key-server,omitempty"`
}

type pebbleService struct {
	Override    string            `json:"override"`
	Summary     string            `json:"summary,omitempty"`
	Command     string            `json:"command"`
	Startup     string            `json:"startup,omitempty"`
	User        string            `json:"user,omitempty"`
	Group       string            `json:"group,omitempty"`
	WorkingDir  string            `json:"working-dir,omitempty"`
	Environment map[string]string `json:"environment,omitempty"`
	After       []string          `json:"after,omitempty"`
	Requires    []string          `json:"requires,omitempty"`
	OnSuccess   string            `json:"on-success,omitempty"`
	OnFailure   string            `json:"on-failure,omitempty"`
	KillDelay   string            `json:"kill-delay,omitempty"`
}

type part struct {
	Plugin             string              `json:"plugin"`
	Source             string              `json:"source,omitempty"`
	SourceType         string              `json:"source-type,omitempty"`
	SourceTag          string              `json:"source-tag,omitempty"`
	SourceCommit       string              `json:"source-commit,omitempty"`
	SourceBranch       string              `json:"source-branch,omitempty"`
	SourceDepth        int                 `json:"source-depth,omitempty"`
	SourceSubdir       string              `json:"source-subdir,omitempty"`
	SourceChecksum     string              `json:"source-checksum,omitempty"`
	After              []string            `json:"after,omitempty"`
	BuildPackages      []string            `json:"build-packages,omitempty"`
	BuildSnaps         []string            `json:"build-snaps,omitempty"`
	StagePackages      []string            `json:"stage-packages,omitempty"`
	StageSnaps         []string            `json:"stage-snaps,omitempty"`
	BuildEnvironment   []map[string]string `json:"build-environment,omitempty"`
	PythonRequirements []string            `json:"python-requirements,omitempty"`
	PythonPackages     []string            `json:"python-packages,omitempty"`
	OverlayScript      string              `json:"overlay-script,omitempty"`
	OverrideBuild      string              `json:"override-build,omitempty"`
	OverrideStage      string              `json:"override-stage,omitempty"`
	OverridePrime      string              `json:"override-prime,omitempty"`
	Organize           map[string]string   `json:"organize,omitempty"`
	Stage              []string            `json:"stage,omitempty"`
	Prime              []string            `json:"prime,omitempty"`
	Permissions        []permission        `json:"permissions,omitempty"`
}

type permission struct {
	Path  string `json:"path"`
	Owner int    `json:"owner,omitempty"`
	Group int    `json:"group,omitempty"`
	Mode  string `json:"mode,omitempty"`
}

// rockNames are the rocks socflow ships, each in rocks/<name>/rockcraft.yaml.
var rockNames = []string{"opencti", "wazuh-server", "socflow-worker"}

// Base is the Ubuntu release every rock builds on: the charms' rocks use it, and
// Python 3.12's dist-packages path in the OpenCTI rock depends on it.
const Base = "ubuntu@24.04"

// parse decodes one rockcraft.yaml strictly.
func parse(data []byte) (rockcraft, error) {
	var r rockcraft
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		return rockcraft{}, err
	}
	return r, nil
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(name, "rockcraft.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var (
	versionRE    = regexp.MustCompile(`^\d+\.\d+(\.\d+)?$`)
	commitRE     = regexp.MustCompile(`^[0-9a-f]{40}$`)
	latestRE     = regexp.MustCompile(`(?i)\blatest\b|set-version stable`)
	snapRE       = regexp.MustCompile(`^[a-z0-9-]+/[0-9][0-9.]*/(stable|candidate|beta|edge)$`)
	urlVersionRE = regexp.MustCompile(`\d+\.\d+`)
)

// checkCommon is what every rock must satisfy: the required keys, the base, and sources,
// snaps and packages that name what they fetch exactly.
func checkCommon(r rockcraft, raw []byte) []string {
	var p []string
	for key, v := range map[string]string{"name": r.Name, "summary": r.Summary, "description": r.Description, "license": r.License, "version": r.Version, "base": r.Base} {
		if strings.TrimSpace(v) == "" {
			p = append(p, key+": is required")
		}
	}
	if r.Version != "" && !versionRE.MatchString(r.Version) {
		p = append(p, fmt.Sprintf("version: %q is not a release number", r.Version))
	}
	if r.Base != Base {
		p = append(p, fmt.Sprintf("base: %q, want %s", r.Base, Base))
	}
	if r.BuildBase != "" && r.BuildBase != Base {
		p = append(p, fmt.Sprintf("build-base: %q, want %s", r.BuildBase, Base))
	}
	if len(r.Platforms) == 0 {
		p = append(p, "platforms: is required")
	}
	if len(r.Parts) == 0 {
		p = append(p, "parts: is required")
	}
	if loc := latestRE.Find(raw); loc != nil {
		p = append(p, fmt.Sprintf("%q: a floating version; pin what is fetched", loc))
	}
	for _, repo := range r.PackageRepositories {
		if len(repo.KeyID) != 40 {
			p = append(p, fmt.Sprintf("package-repositories %s: key-id must be a full 40-character fingerprint", repo.URL))
		}
	}
	for name, pt := range r.Parts {
		at := "parts." + name
		if pt.Plugin == "" {
			p = append(p, at+".plugin: is required")
		}
		if pt.SourceBranch != "" {
			p = append(p, at+".source-branch: a branch moves; use source-tag or source-commit")
		}
		switch {
		case pt.SourceType == "git" || strings.HasSuffix(pt.Source, ".git"):
			if pt.SourceTag == "" && pt.SourceCommit == "" {
				p = append(p, at+": a git source needs source-tag or source-commit")
			}
			if pt.SourceTag != "" && !versionRE.MatchString(strings.TrimPrefix(pt.SourceTag, "v")) {
				p = append(p, fmt.Sprintf("%s.source-tag: %q is not a release tag", at, pt.SourceTag))
			}
			if pt.SourceCommit != "" && !commitRE.MatchString(pt.SourceCommit) {
				p = append(p, fmt.Sprintf("%s.source-commit: %q is not a full commit hash", at, pt.SourceCommit))
			}
		case strings.HasPrefix(pt.Source, "http"):
			if pt.SourceChecksum == "" && !urlVersionRE.MatchString(pt.Source) {
				p = append(p, at+".source: a download names no version and has no source-checksum")
			}
		}
		for _, s := range append(append([]string{}, pt.BuildSnaps...), pt.StageSnaps...) {
			if !snapRE.MatchString(s) {
				p = append(p, fmt.Sprintf("%s: snap %q must name a numbered track and a risk, e.g. node/22/stable", at, s))
			}
		}
	}
	return p
}

// pins returns the name=version pins of every part's stage packages.
func pins(r rockcraft) map[string]string {
	out := map[string]string{}
	for _, pt := range r.Parts {
		for _, s := range pt.StagePackages {
			if name, v, ok := strings.Cut(s, "="); ok {
				out[name] = v
			}
		}
	}
	return out
}

// scripts is every shell script of the rock's parts, for the pins installed by scripts.
func scripts(r rockcraft) string {
	var b strings.Builder
	for _, pt := range r.Parts {
		b.WriteString(pt.OverlayScript + "\n" + pt.OverrideBuild + "\n" + pt.OverrideStage + "\n")
	}
	return b.String()
}

// workloadNoServices: socflow pushes every layer of a workload, so the rock defines
// none, and the entrypoint stays rockcraft's `pebble enter` (no entrypoint-service).
func workloadNoServices(r rockcraft) []string {
	var p []string
	if len(r.Services) != 0 {
		p = append(p, "services: a workload rock defines no services; socflow pushes its layers")
	}
	if r.EntrypointService != "" {
		p = append(p, "entrypoint-service: the workload's entrypoint is Pebble itself")
	}
	if len(r.Checks) != 0 {
		p = append(p, "checks: a workload rock defines no checks; socflow pushes them with its layers")
	}
	return p
}

// openctiVersion is the OpenCTI release the local specs and stand-ins use, and pycti's
// pin on the stack (deploy/local/stack PYCTI_VERSION): the rock must ship the same.
func openctiVersion(t *testing.T) string {
	stack, err := os.ReadFile("../deploy/local/stack")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^PYCTI_VERSION=(\S+)`).FindSubmatch(stack)
	if m == nil {
		t.Fatal("deploy/local/stack sets no PYCTI_VERSION")
	}
	if string(m[1]) != openctistandin.DefaultVersion {
		t.Fatalf("the stack's pycti %s and the stand-in's OpenCTI %s disagree", m[1], openctistandin.DefaultVersion)
	}
	return openctistandin.DefaultVersion
}

func checkOpenCTI(r rockcraft, version string) []string {
	p := workloadNoServices(r)
	if r.Name != "opencti" {
		p = append(p, fmt.Sprintf("name: %q, want opencti", r.Name))
	}
	if r.Version != version {
		p = append(p, fmt.Sprintf("version: %q, want %s (pycti and the stand-in's release)", r.Version, version))
	}
	tagged := 0
	for name, pt := range r.Parts {
		if strings.Contains(pt.Source, "OpenCTI-Platform/opencti") {
			tagged++
			if pt.SourceTag != r.Version {
				p = append(p, fmt.Sprintf("parts.%s.source-tag: %q, want the rock's version %s", name, pt.SourceTag, r.Version))
			}
		}
	}
	if tagged == 0 {
		p = append(p, "parts: nothing builds OpenCTI from its repository")
	}
	s := scripts(r)
	if !strings.Contains(s, `"pycti==`+r.Version+`"`) {
		p = append(p, "parts: pycti is not pinned to the rock's version (pycti=="+r.Version+")")
	}
	for _, dir := range []string{opencti.DefaultPlatformDir, opencti.DefaultWorkerDir, opencti.DefaultPlatformDir + "/logs"} {
		if !strings.Contains(s, "$CRAFT_PART_INSTALL"+dir) {
			p = append(p, "parts: nothing installs "+dir+" (internal/opencti's default)")
		}
	}
	reaper := false
	for _, pt := range r.Parts {
		for _, to := range pt.Organize {
			if "/"+to == opencti.DefaultReaper {
				reaper = true
			}
		}
	}
	if !reaper {
		p = append(p, "parts: nothing puts socflow-reap at "+opencti.DefaultReaper)
	}
	return p
}

// filebeatFor is the filebeat-oss release and wazuh filebeat module each Wazuh minor
// release supports (Wazuh's installation guide): a filebeat of another release ships
// alerts the index template does not describe.
var filebeatFor = map[string]struct{ filebeat, module string }{
	"4.11": {"7.10.2-1", "0.4"},
}

func checkWazuh(r rockcraft) []string {
	p := workloadNoServices(r)
	v := wazuh.DefaultVersion
	if r.Name != "wazuh-server" {
		p = append(p, fmt.Sprintf("name: %q, want wazuh-server", r.Name))
	}
	if r.Version != v {
		p = append(p, fmt.Sprintf("version: %q, want wazuh.DefaultVersion %s", r.Version, v))
	}
	s := scripts(r)
	if !strings.Contains(s, "wazuh-manager="+v+"-1") {
		p = append(p, "parts: wazuh-manager is not installed pinned to "+v+"-1")
	}
	if !strings.Contains(s, "/wazuh/wazuh/v"+v+"/") {
		p = append(p, "parts: the index template is not the manager's release v"+v)
	}
	pin := pins(r)
	minor := v[:strings.LastIndex(v, ".")]
	want, ok := filebeatFor[minor]
	if !ok {
		p = append(p, "no known filebeat for Wazuh "+minor+": add it to filebeatFor")
	} else {
		if pin["filebeat"] != want.filebeat {
			p = append(p, fmt.Sprintf("filebeat pinned to %q, Wazuh %s supports %s", pin["filebeat"], minor, want.filebeat))
		}
		module := false
		for _, pt := range r.Parts {
			if strings.HasSuffix(pt.Source, "/wazuh-filebeat-"+want.module+".tar.gz") {
				module = true
			}
		}
		if !module {
			p = append(p, "parts: no wazuh filebeat module "+want.module)
		}
	}
	if pin["rsyslog"] == "" || pin["rsyslog"] != pin["rsyslog-gnutls"] {
		p = append(p, fmt.Sprintf("rsyslog %q and rsyslog-gnutls %q must be pinned to one build", pin["rsyslog"], pin["rsyslog-gnutls"]))
	}
	exporter := strings.Fields(wazuh.DefaultExporterCommand)[1]
	if !strings.Contains(s, "$CRAFT_PART_INSTALL"+exporter) {
		p = append(p, "parts: nothing installs the exporter at "+exporter+" (wazuh.DefaultExporterCommand)")
	}
	return p
}

// daemonUser is rockcraft's one non-root run-user.
const daemonUser = "_daemon_"

// workerBinary is where the worker rock puts the worker.
const workerBinary = "/usr/local/bin/socflow-worker"

// starterBinary is where the worker rock puts the starter.
const starterBinary = "/usr/local/bin/starter"

func checkWorker(r rockcraft) []string {
	var p []string
	if r.Name != "socflow-worker" {
		p = append(p, fmt.Sprintf("name: %q, want socflow-worker", r.Name))
	}
	if r.RunUser != daemonUser {
		p = append(p, fmt.Sprintf("run-user: %q, want %s: the worker needs no root", r.RunUser, daemonUser))
	}
	svc, ok := r.Services["socflow-worker"]
	switch {
	case !ok:
		p = append(p, "services.socflow-worker: missing")
	default:
		if svc.Command != workerBinary {
			p = append(p, fmt.Sprintf("services.socflow-worker.command: %q, want %s", svc.Command, workerBinary))
		}
		if svc.Startup != "enabled" {
			p = append(p, "services.socflow-worker.startup: must be enabled, or `pebble enter` starts nothing")
		}
		if svc.User == "root" || svc.User == "0" {
			p = append(p, "services.socflow-worker.user: root")
		}
		if svc.OnFailure != "shutdown" {
			p = append(p, "services.socflow-worker.on-failure: must be shutdown, so a dead worker fails its container")
		}
		if len(svc.Environment) != 0 {
			p = append(p, "services.socflow-worker.environment: would override the pod's environment")
		}
	}
	if r.EntrypointService != "" {
		p = append(p, "entrypoint-service: Pebble is the entrypoint")
	}
	// The codec server's Deployment runs the starter from this rock.
	for _, bin := range []string{workerBinary, starterBinary} {
		found := false
		for _, pt := range r.Parts {
			for _, to := range pt.Organize {
				if "/"+to == bin {
					found = true
				}
			}
		}
		if !found {
			p = append(p, "parts: nothing puts a binary at "+bin)
		}
	}
	return p
}

func check(t *testing.T, name string, data []byte) []string {
	r, err := parse(data)
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	p := checkCommon(r, data)
	switch name {
	case "opencti":
		p = append(p, checkOpenCTI(r, openctiVersion(t))...)
	case "wazuh-server":
		p = append(p, checkWazuh(r)...)
	case "socflow-worker":
		p = append(p, checkWorker(r)...)
	default:
		t.Fatalf("no checks for rock %s", name)
	}
	return p
}

func TestRocks(t *testing.T) {
	dirs, _ := filepath.Glob("*/rockcraft.yaml")
	if len(dirs) != len(rockNames) {
		t.Errorf("rockcraft files %v, want one for each of %v", dirs, rockNames)
	}
	for _, name := range rockNames {
		t.Run(name, func(t *testing.T) {
			for _, problem := range check(t, name, read(t, name)) {
				t.Error(problem)
			}
		})
	}
}

// TestRockChecksFail breaks one thing at a time in a real rockcraft.yaml (every
// occurrence of the anchor) and expects
// the checks to name it: a check that cannot fail proves nothing.
func TestRockChecksFail(t *testing.T) {
	for _, tc := range []struct {
		rock, old, new, want string
	}{
		{"opencti", "license: Apache-2.0\n", "licence: Apache-2.0\n", `unknown field "licence"`},
		{"opencti", "license: Apache-2.0\n", "", "license: is required"},
		{"opencti", "base: ubuntu@24.04\n", "base: ubuntu@22.04\n", "base:"},
		{"opencti", `version: "6.9.28"`, `version: "6.9.27"`, "version:"},
		{"opencti", `"pycti==6.9.28"`, `"pycti"`, "pycti is not pinned"},
		{"opencti", `source-tag: "6.9.28"`, `source-branch: master`, "source-branch"},
		{"opencti", "    source-tag: \"6.9.28\"\n    source-depth: 1\n    build-packages:\n      - python3-pip", "    source-depth: 1\n    build-packages:\n      - python3-pip", "needs source-tag or source-commit"},
		{"opencti", "node/22/stable", "node/latest/stable", "floating version"},
		{"opencti", "- node/22/stable", "- node", "numbered track"},
		{"opencti", "usr/local/bin/socflow-reap\n", "usr/bin/socflow-reap\n", "socflow-reap"},
		{"opencti", "platforms:\n  amd64:\n", "platforms:\n  amd64:\nservices:\n  platform: {override: replace, command: node build/back.js}\n", "defines no services"},
		{"opencti", "platforms:\n  amd64:\n", "platforms:\n  amd64:\nentrypoint-service: platform\n", "entrypoint-service"},
		{"wazuh-server", `version: "4.11.0"`, `version: "4.10.0"`, "wazuh.DefaultVersion"},
		{"wazuh-server", "wazuh-manager=4.11.0-1", "wazuh-manager", "wazuh-manager is not installed pinned"},
		{"wazuh-server", "filebeat=7.10.2-1", "filebeat=7.17.0-1", "Wazuh 4.11 supports"},
		{"wazuh-server", "wazuh-filebeat-0.4.tar.gz", "wazuh-filebeat-0.3.tar.gz", "filebeat module"},
		{"wazuh-server", "v4.11.0/extensions", "v4.8.1/extensions", "index template"},
		{"wazuh-server", "rsyslog-gnutls=8.2312.0-3ubuntu9", "rsyslog-gnutls=8.2312.0-3ubuntu9.1", "one build"},
		{"wazuh-server", "source-commit: ef2a117d20530984bba643996f95b980647874a1", "source-commit: ef2a117", "full commit hash"},
		{"wazuh-server", "$CRAFT_PART_INSTALL/srv/prometheus/prometheus_exporter.py", "$CRAFT_PART_INSTALL/srv/exporter.py", "DefaultExporterCommand"},
		{"wazuh-server", "key-id: 0DCFCA5547B19D2A6099506096B3EE5F29111145", "key-id: 29111145", "fingerprint"},
		{"socflow-worker", "run-user: _daemon_\n", "", "run-user"},
		{"socflow-worker", "startup: enabled", "startup: disabled", "startup"},
		{"socflow-worker", "    on-failure: shutdown\n", "", "on-failure"},
		{"socflow-worker", "    kill-delay: 15s\n", "    kill-delay: 15s\n    environment: {SOCFLOW_HEALTH_ADDR: \":1\"}\n", "override the pod's environment"},
		{"socflow-worker", "command: /usr/local/bin/socflow-worker", "command: /bin/sh", "command"},
		{"socflow-worker", "starter: usr/local/bin/starter", "starter: usr/bin/starter", "/usr/local/bin/starter"},
	} {
		t.Run(tc.rock+"/"+tc.want, func(t *testing.T) {
			data := string(read(t, tc.rock))
			if !strings.Contains(data, tc.old) {
				t.Fatalf("the mutation's anchor %q is not in rocks/%s/rockcraft.yaml", tc.old, tc.rock)
			}
			problems := check(t, tc.rock, []byte(strings.ReplaceAll(data, tc.old, tc.new)))
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("replacing %q with %q: no problem mentions %q; got %q", tc.old, tc.new, tc.want, problems)
		})
	}
}
