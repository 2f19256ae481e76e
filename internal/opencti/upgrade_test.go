package opencti

import (
	"strings"
	"testing"
)

func upgradeBase() Instance {
	in := minimalDefaulted()
	in.OpenCTI.Version = "6.9.28"
	return in.WithDefaults()
}

// healthyFacts are the facts of a platform ready to upgrade.
func healthyFacts() UpgradeFacts {
	return UpgradeFacts{Running: "6.9.28", Data: "6.9.28", SearchHealth: "yellow", DiskNode: "n1", DiskUsedPercent: 40,
		FloodStage: "95%", FloodStagePercent: 95,
		Dependencies: []DependencyFact{{Name: "opensearch", Version: "2.19.3"}, {Name: "rabbitmq", Version: "3.10.8", Warning: "rabbitmq 3.10.8 is below 3.11"}}}
}

func TestPreflightUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target string
		mutate func(*UpgradeFacts)
		want   []string // findings, in order
	}{
		{"ready (a warning is accepted)", "7.260318.0", func(*UpgradeFacts) {}, []string{"warning: rabbitmq: rabbitmq 3.10.8 is below 3.11"}},
		{"downgrade of the running version", "6.9.3", func(*UpgradeFacts) {},
			[]string{"error: version: the platform runs 6.9.28; 6.9.3 is not newer: OpenCTI cannot downgrade",
				"error: data-version: the data was migrated to 6.9.28", "warning: rabbitmq"}},
		{"data newer than the target", "7.260224.0", func(f *UpgradeFacts) { f.Data = "7.260318.0" },
			[]string{`error: data-version: the data was migrated to 7.260318.0 (MigrationStatus in demo_internal_objects), newer than 7.260224.0`, "warning: rabbitmq"}},
		{"every problem at once", "7.260318.0", func(f *UpgradeFacts) {
			f.SearchHealth, f.DiskUsedPercent, f.EncryptionKey, f.Health = "red", 96.5, "store:demo/encryption-key: no such secret", "HTTP 503: redis down"
			f.Dependencies[0].Problem = "opensearch: connection refused"
		}, []string{"error: search-health: the cluster's health is \"red\"", "error: disk: node n1 is 96.5% full, at or above the flood-stage watermark 95%",
			"error: opensearch: opensearch: connection refused", "error: encryption-key: OpenCTI 7.260318.0 needs APP__ENCRYPTION_KEY",
			"error: health: the platform is not healthy now: HTTP 503: redis down", "warning: rabbitmq"}},
		{"no encryption key needed below 7", "6.10.0", func(f *UpgradeFacts) { f.EncryptionKey = "missing" }, []string{"warning: rabbitmq"}},
		{"platform changed behind socflow's back", "7.260318.0", func(f *UpgradeFacts) { f.Running = "6.9.30" },
			[]string{"error: version: the platform runs 6.9.30, the instance's spec says 6.9.28", "warning: rabbitmq"}},
		{"disk watermark in bytes", "7.260318.0", func(f *UpgradeFacts) { f.FloodStagePercent, f.FloodStageFreeBytes, f.DiskFreeBytes = 0, 1<<30, 1<<20 },
			[]string{"error: disk: node n1 has 1048576 bytes free, at or below the flood-stage watermark 95%", "warning: rabbitmq"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthyFacts()
			tc.mutate(&f)
			got := PreflightUpgrade(upgradeBase(), tc.target, f)
			var lines []string
			for _, fd := range got {
				lines = append(lines, fd.String())
			}
			ok := len(got) == len(tc.want)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.HasPrefix(lines[i], tc.want[i])
			}
			if !ok {
				t.Errorf("findings:\n%s\nwant prefixes:\n%s", strings.Join(lines, "\n"), strings.Join(tc.want, "\n"))
			}
			if Blocking(got) != strings.HasPrefix(tc.want[0], "error") {
				t.Errorf("Blocking = %v", Blocking(got))
			}
		})
	}
}

func TestValidateTarget(t *testing.T) {
	base := upgradeBase()
	base.Connectors = []Connector{mitre()}
	for _, tc := range []struct {
		target UpgradeTarget
		want   []want
	}{
		{UpgradeTarget{Version: "7.260318.0", ConnectorCommands: map[string]string{"mitre": "python3 main.py"}}, nil},
		{UpgradeTarget{}, []want{{"targetVersion", "is required"}}},
		{UpgradeTarget{Version: "6.9.28"}, []want{{"targetVersion", "is the version the instance runs (6.9.28)"}}},
		{UpgradeTarget{Version: "6.9.3"}, []want{{"targetVersion", "6.9.3 is older than the running 6.9.28: OpenCTI cannot downgrade its data (the old binary rewrites every index template, then refuses to start)"}}},
		{UpgradeTarget{Version: "7.x"}, []want{{"targetVersion", `must be a release number such as 6.9.28 or 7.260318.0 (got "7.x")`}}},
		{UpgradeTarget{Version: "7.260318.0", ConnectorCommands: map[string]string{"ghost": "x"}}, []want{{"connectorCommands.ghost", "is not a connector of this instance"}}},
	} {
		err := ValidateTarget(base, tc.target)
		if tc.want == nil {
			if err != nil {
				t.Errorf("ValidateTarget(%+v) = %v", tc.target, err)
			}
			continue
		}
		checkProblems(t, err, tc.want)
	}
	up := UpgradeTarget{Version: "7.260318.0", PlatformCommand: "node build/back.js --v7", ConnectorCommands: map[string]string{"mitre": "python3 v7.py"}}.Upgraded(base)
	if up.OpenCTI.Version != "7.260318.0" || up.OpenCTI.PlatformCommand != "node build/back.js --v7" || up.OpenCTI.WorkerCommand != base.OpenCTI.WorkerCommand ||
		up.Connectors[0].Command != "python3 v7.py" || base.Connectors[0].Command == "python3 v7.py" {
		t.Errorf("Upgraded: %+v", up.OpenCTI)
	}
}
