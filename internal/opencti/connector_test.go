package opencti

import (
	"testing"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
)

func mitre() Connector {
	return Connector{Name: "mitre", Type: ExternalImport, Command: "python3 connector.py", WorkingDir: "/opt/connector",
		Pebble: spec.Pebble{Socket: "/var/lib/pebble/mitre/.pebble.socket"},
		Config: map[string]any{"mitre-interval": float64(7), "remove-revoked": true, "source.url": "https://example.com/x.json"}}
}

func TestValidateConnectors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*[]Connector)
		want   []want
	}{
		{"valid", func(*[]Connector) {}, nil},
		{"export needs MIME scope", func(cs *[]Connector) {
			*cs = append(*cs, Connector{Name: "export", Type: InternalExportFile, Command: "x", Pebble: spec.Pebble{Socket: "/s"}})
		}, []want{{"connectors[1].scope", "is required for a INTERNAL_EXPORT_FILE connector"}}},
		{"enrichment scope with a MIME type", func(cs *[]Connector) {
			*cs = append(*cs, Connector{Name: "abuse", Type: InternalEnrichment, Scope: []string{"IPv4-Addr", "text/csv"}, Command: "x", Pebble: spec.Pebble{Socket: "/s"}})
		}, []want{{"connectors[1].scope[1]", `must be an entity type for an enrichment connector (got "text/csv")`}}},
		{"scope with a comma", func(cs *[]Connector) { (*cs)[0].Scope = []string{"a,b"} },
			[]want{{"connectors[0].scope[0]", `must be a MIME type or an entity type such as text/csv or Indicator (got "a,b")`}}},
		{"duplicate name", func(cs *[]Connector) {
			c := mitre()
			c.Pebble.Socket = "/var/lib/pebble/other/.pebble.socket"
			*cs = append(*cs, c)
		}, []want{{"connectors[1].name", `"mitre" is already the name of connectors[0]`}}},
		{"two connectors in one container", func(cs *[]Connector) {
			c := mitre()
			c.Name = "abuse"
			*cs = append(*cs, c)
		}, []want{{"connectors[1].pebble", "is the container of connectors[0] (mitre)"}}},
		{"unknown type", func(cs *[]Connector) { (*cs)[0].Type = "IMPORT" },
			[]want{{"connectors[0].type", `must be one of EXTERNAL_IMPORT, INTERNAL_IMPORT_FILE, INTERNAL_ENRICHMENT, INTERNAL_ANALYSIS, INTERNAL_EXPORT_FILE, STREAM (got "IMPORT")`}}},
		{"bad name", func(cs *[]Connector) { (*cs)[0].Name = "Mitre" },
			[]want{{"connectors[0].name", `must be 2-40 lowercase letters, digits or dashes, start with a letter and not end with a dash (got "Mitre")`}}},
		{"config overwriting socflow's env", func(cs *[]Connector) {
			(*cs)[0].Config["opencti-token"] = "x"
			(*cs)[0].Config["connector.id"] = "y"
		}, []want{{"connectors[0].config.connector.id", "would overwrite CONNECTOR_ID, which socflow sets"},
			{"connectors[0].config.opencti-token", "would overwrite OPENCTI_TOKEN, which socflow sets"}}},
		{"config keys rendering alike", func(cs *[]Connector) { (*cs)[0].Config["mitre.interval"] = float64(1) },
			[]want{{"connectors[0].config.mitre.interval", "renders to MITRE_INTERVAL, as connectors[0].config.mitre-interval does"}}},
		{"config list value", func(cs *[]Connector) { (*cs)[0].Config["urls"] = []any{"a"} },
			[]want{{"connectors[0].config.urls", "must be a string, a number or a boolean (got []interface {})"}}},
		{"pebble of the connector", func(cs *[]Connector) { (*cs)[0].Pebble = spec.Pebble{} },
			[]want{{"connectors[0].pebble", "must set exactly one of socket or url (neither is set)"}}},
		{"log level", func(cs *[]Connector) { (*cs)[0].LogLevel = "trace" },
			[]want{{"connectors[0].logLevel", `must be one of error, warn, info, debug (got "trace")`}}},
		{"relative working dir", func(cs *[]Connector) { (*cs)[0].WorkingDir = "opt" },
			[]want{{"connectors[0].workingDir", `must be an absolute path (got "opt")`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := []Connector{mitre()}
			tc.mutate(&list)
			err := ValidateConnectors(list)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			checkProblems(t, err, tc.want)
		})
	}
}

func TestConnectorPlan(t *testing.T) {
	in := mustLoad(t, "minimal.yaml")
	cn := mitre()
	l := ConnectorPlan(ConnectorInput{Instance: in, Connector: cn, Token: "tok", ID: "5f3c9d1e-2a4b-4c6d-8e0f-1a2b3c4d5e6f"})
	svc, ok := l.Services[ConnectorService]
	if !ok || len(l.Services) != 1 {
		t.Fatalf("services %v, want only %s", l.Services, ConnectorService)
	}
	want := map[string]string{
		"OPENCTI_URL": "http://127.0.0.1:8080", "OPENCTI_TOKEN": "tok", "CONNECTOR_ID": "5f3c9d1e-2a4b-4c6d-8e0f-1a2b3c4d5e6f",
		"CONNECTOR_NAME": "mitre", "CONNECTOR_TYPE": "EXTERNAL_IMPORT", "CONNECTOR_SCOPE": "", "CONNECTOR_LOG_LEVEL": "info",
		"MITRE_INTERVAL": "7", "REMOVE_REVOKED": "true", "SOURCE_URL": "https://example.com/x.json", InstanceEnv: in.Name,
	}
	if len(svc.Environment) != len(want) {
		t.Errorf("env %v, want %v", svc.Environment, want)
	}
	for k, v := range want {
		if svc.Environment[k] != v {
			t.Errorf("env %s = %q, want %q", k, svc.Environment[k], v)
		}
	}
	if svc.OnFailure != layer.ActionRestart || svc.Startup != layer.StartupDisabled || svc.Command != cn.Command || svc.WorkingDir != cn.WorkingDir {
		t.Errorf("service %+v", svc)
	}
	if ConnectorGroup(InternalExportFile) != "Administrators" || ConnectorGroup(ExternalImport) != "Connectors" ||
		ConnectorUser("mitre") != "connector-mitre" || ConnectorEmail("mitre") != "mitre@opencti.local" || ConnectorLayer("mitre") != "connector-mitre" {
		t.Error("connector names")
	}
	cn.LogLevel = LogDebug
	cn.Scope = []string{"Indicator", "Malware"}
	env := ConnectorPlan(ConnectorInput{Instance: in, Connector: cn}).Services[ConnectorService].Environment
	if env["CONNECTOR_LOG_LEVEL"] != "debug" || env["CONNECTOR_SCOPE"] != "Indicator,Malware" {
		t.Errorf("env %v", env)
	}
}

func TestConfigEnv(t *testing.T) {
	for k, want := range map[string]string{"my-option": "MY_OPTION", "a.b-c": "A_B_C", "Already_Upper": "ALREADY_UPPER"} {
		if got := ConfigEnv(k); got != want {
			t.Errorf("ConfigEnv(%q) = %q, want %q", k, got, want)
		}
	}
	for v, want := range map[any]string{true: "true", false: "false", float64(3): "3", 2.5: "2.5", "x": "x", 7: "7"} {
		if got, ok := configValue(v); !ok || got != want {
			t.Errorf("configValue(%v) = %q, want %q", v, got, want)
		}
	}
}
