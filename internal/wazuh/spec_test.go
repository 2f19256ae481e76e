package wazuh

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/spec"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLoadMinimalDefaults(t *testing.T) {
	in, err := Load(readTestdata(t, "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := in.Nodes[0]
	want := Node{Name: "soc-0", Pebble: spec.Pebble{Socket: "/run/wazuh-0/.pebble.socket"}, Address: "127.0.0.1",
		APIPort: 55000, AgentPort: 1514, EnrolmentPort: 1515, ClusterPort: 1516, SyslogPort: 6514}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("node defaults:\n got %+v\nwant %+v", n, want)
	}
	w := in.Wazuh
	if w.Version != "4.11.0" || w.Home != "/var/ossec" || !*w.VulnerabilityDetection || w.FilebeatDir != "/etc/filebeat" {
		t.Errorf("settings defaults: %+v", w)
	}
}

// TestValidateNamesFieldAndFix checks that each bad input is reported at its field with
// a fix a user can act on.
func TestValidateNamesFieldAndFix(t *testing.T) {
	for _, tt := range []struct {
		name  string
		edit  func(*Instance)
		field string
		fix   string
	}{
		{"no nodes", func(i *Instance) { i.Nodes = nil }, "nodes", "add the master"},
		{"bad version", func(i *Instance) { i.Wazuh.Version = "5.0" }, "wazuh.version", "wazuh-control info"},
		{"literal short cluster key", func(i *Instance) { i.Wazuh.ClusterKey = "literal:abc" }, "wazuh.clusterKey", "openssl rand -hex 16"},
		{"repo url", func(i *Instance) {
			i.Wazuh.ConfigRepo = &ConfigRepo{URL: "https://git.example.com/x.git", SSHKey: "env:K", HostKey: fullHostKey}
		}, "wazuh.configRepo.url", "git+ssh://"},
		{"no pinned host key", func(i *Instance) {
			i.Wazuh.ConfigRepo = &ConfigRepo{URL: "git+ssh://git@h/x.git@main", SSHKey: "env:K"}
		}, "wazuh.configRepo.hostKey", "ssh-keyscan"},
		{"garbage host key", func(i *Instance) {
			i.Wazuh.ConfigRepo = &ConfigRepo{URL: "git+ssh://git@h/x.git@main", SSHKey: "env:K", HostKey: "ssh-ed25519 notbase64"}
		}, "wazuh.configRepo.hostKey", "one line"},
		{"duplicate node names", func(i *Instance) {
			i.Nodes = append(i.Nodes, i.Nodes[0])
			i.Nodes[1].ClusterPort = 1526
		}, "nodes[1].name", "its own name"},
		{"same port twice", func(i *Instance) { i.Nodes[0].AgentPort = 55000 }, "nodes[0].agentPort", "its own port"},
		{"no indexer", func(i *Instance) { i.Integrations.Indexer = nil }, "integrations.indexer", "wazuh-indexer"},
		{"indexer url", func(i *Instance) { i.Integrations.Indexer.URLs = []string{"indexer:9200"} }, "integrations.indexer.urls[0]", "http(s)://host:port"},
		{"opencti instance and url", func(i *Instance) {
			i.Integrations.OpenCTI = &OpenCTI{Instance: "demo", URL: "http://x:8080", Token: "env:T"}
		}, "integrations.opencti.url", "not both"},
		{"opencti instance and token", func(i *Instance) {
			i.Integrations.OpenCTI = &OpenCTI{Instance: "demo", Token: "env:T"}
		}, "integrations.opencti.token", "remove token or instance"},
		{"opencti instance name", func(i *Instance) { i.Integrations.OpenCTI = &OpenCTI{Instance: "Demo_1"} }, "integrations.opencti.instance", "starter status NAME"},
		{"opencti nothing", func(i *Instance) { i.Integrations.OpenCTI = &OpenCTI{} }, "integrations.opencti.url", "integrations.opencti.instance"},
		{"opencti token", func(i *Instance) { i.Integrations.OpenCTI = &OpenCTI{URL: "http://x:8080"} }, "integrations.opencti.token", "env:NAME"},
		{"syslog key", func(i *Instance) { i.Wazuh.Syslog = &Syslog{Cert: "file:/c", CA: "file:/ca"} }, "wazuh.syslog.key", "reference"},
		{"proxy", func(i *Instance) { i.Wazuh.Proxy = &Proxy{HTTP: "proxy:3128"} }, "wazuh.proxy.http", "http://host:port"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in, err := Load(readTestdata(t, "minimal.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(&in)
			err = in.WithDefaults().Validate()
			var ve *spec.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *spec.ValidationError", err)
			}
			for _, p := range ve.Problems {
				if p.Field == tt.field {
					if !strings.Contains(p.Fix, tt.fix) {
						t.Errorf("fix of %s = %q, want it to mention %q", p.Field, p.Fix, tt.fix)
					}
					return
				}
			}
			t.Errorf("no problem at %s in %v", tt.field, err)
		})
	}
}

// TestOpenCTIInstanceFormIsValid checks that naming an OpenCTI instance socflow runs
// is accepted on its own, with the user name and login the deploy ensures for it.
func TestOpenCTIInstanceFormIsValid(t *testing.T) {
	in, err := Load(append(readTestdata(t, "minimal.yaml"), "  opencti: {instance: demo}\n"...))
	if err != nil {
		t.Fatal(err)
	}
	if in.OpenCTIInstance() != "demo" || in.OpenCTIUser() != "wazuh-soc" || in.OpenCTIUserEmail() != "wazuh.soc@opencti.local" {
		t.Errorf("instance %q, user %q <%s>", in.OpenCTIInstance(), in.OpenCTIUser(), in.OpenCTIUserEmail())
	}
	if strings.HasPrefix(in.OpenCTIUser(), "connector-") {
		t.Errorf("user %s would be deactivated by the OpenCTI instance's connector reconcile", in.OpenCTIUser())
	}
	full, err := Load(readTestdata(t, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if full.OpenCTIInstance() != "" {
		t.Errorf("a url and token spec names instance %q", full.OpenCTIInstance())
	}
}

const fullHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"

func TestLoadFull(t *testing.T) {
	in, err := Load(readTestdata(t, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := in.Redacted(); got.Wazuh.ConfigRepo.SSHKey != "file:/etc/socflow/git-key" {
		t.Errorf("a file reference must stay readable in the redacted spec: %q", got.Wazuh.ConfigRepo.SSHKey)
	}
	lit := in
	lit.Wazuh.ClusterKey = "literal:0123456789abcdef0123456789abcdef"
	if b, _ := json.Marshal(lit.Redacted()); strings.Contains(string(b), "0123456789abcdef") {
		t.Errorf("Redacted leaks a literal cluster key: %s", b)
	}
}

// FuzzParse checks that no input makes Parse or Load panic, and that what Load
// accepts survives the JSON round trip the workflow input takes.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"minimal.yaml", "full.yaml"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte("name: soc\nnodes: [{}]\n"))
	f.Add([]byte(`{"nodes": null, "wazuh": {"vulnerabilityDetection": null}}`))
	f.Add(append(readTestdata(f, "minimal.yaml"), "  opencti: {instance: demo}\n"...))
	f.Add(append(readTestdata(f, "minimal.yaml"), "  opencti: {instance: demo, url: http://x:8080}\n"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Parse(data); err != nil {
			return
		}
		in, err := Load(data)
		if err != nil {
			return
		}
		j, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("cannot marshal a loaded spec: %v", err)
		}
		again, err := Load(j)
		if err != nil {
			t.Fatalf("Load rejects its own output %s: %v", j, err)
		}
		if !reflect.DeepEqual(in, again) {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v", in, again)
		}
	})
}
