package opencti

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// UpgradeTarget is what an upgrade moves an instance to: the version and the
// commands of that version's platform, workers and connectors (their pycti), which
// change together.
type UpgradeTarget struct {
	// Version is the target release (6.x semantic, 7.x date versions).
	Version string `json:"targetVersion"`
	// PlatformCommand and WorkerCommand start the target's platform and workers
	// (empty: kept, as when an image tag changes and its commands do not).
	PlatformCommand string `json:"platformCommand,omitempty"`
	WorkerCommand   string `json:"workerCommand,omitempty"`
	// ConnectorCommands are the connectors' commands on the target's pycti, by name
	// (absent: kept).
	ConnectorCommands map[string]string `json:"connectorCommands,omitempty"`
}

// Upgraded returns the spec the target leaves: the version and the commands it names.
func (t UpgradeTarget) Upgraded(base Instance) Instance {
	out := base.WithDefaults()
	out.OpenCTI.Version = t.Version
	if t.PlatformCommand != "" {
		out.OpenCTI.PlatformCommand = t.PlatformCommand
	}
	if t.WorkerCommand != "" {
		out.OpenCTI.WorkerCommand = t.WorkerCommand
	}
	for i, c := range out.Connectors {
		if cmd, ok := t.ConnectorCommands[c.Name]; ok {
			out.Connectors[i].Command = cmd
		}
	}
	return out
}

// ValidateTarget checks a target against the spec it upgrades, naming the field: a
// parsable version above the spec's, commands that are commands, connectors that exist.
func ValidateTarget(base Instance, t UpgradeTarget) error {
	var c checker
	switch cmp, err := CompareVersions(t.Version, base.OpenCTI.Version); {
	case t.Version == "":
		c.Add("targetVersion", "is required", "name the release to upgrade to, e.g. 7.260318.0")
	case err != nil || !versionRE.MatchString(t.Version):
		c.Add("targetVersion", fmt.Sprintf("must be a release number such as 6.9.28 or 7.260318.0 (got %q)", t.Version), "use the target image's version")
	case cmp == 0:
		c.Add("targetVersion", "is the version the instance runs ("+base.OpenCTI.Version+")", "name a newer release")
	case cmp < 0:
		c.Add("targetVersion", fmt.Sprintf("%s is older than the running %s: OpenCTI cannot downgrade its data (the old binary rewrites every index template, then refuses to start)",
			t.Version, base.OpenCTI.Version), "restore the snapshot taken before the upgrade instead")
	}
	if t.PlatformCommand != "" {
		c.Command("platformCommand", t.PlatformCommand)
	}
	if t.WorkerCommand != "" {
		c.Command("workerCommand", t.WorkerCommand)
	}
	for _, name := range slices.Sorted(maps.Keys(t.ConnectorCommands)) {
		if _, ok := base.Connector(name); !ok {
			c.Add("connectorCommands."+name, "is not a connector of this instance", "name one of: "+strings.Join(base.ConnectorNames(), ", "))
			continue
		}
		c.Command("connectorCommands."+name, t.ConnectorCommands[name])
	}
	return c.Err()
}

// The severities of a pre-flight finding.
const (
	// FindingError stops the upgrade before anything changes.
	FindingError = "error"
	// FindingWarning is reported and accepted.
	FindingWarning = "warning"
)

// Finding is one problem a pre-flight found, with the fix.
type Finding struct {
	// Check names what was checked (version, data-version, opensearch, disk, …).
	Check string `json:"check"`
	// Severity is error or warning.
	Severity string `json:"severity"`
	// Message says what is wrong, with the figures.
	Message string `json:"message"`
	// Fix says what to do about it.
	Fix string `json:"fix,omitempty"`
}

// String is the finding on one line.
func (f Finding) String() string {
	s := f.Severity + ": " + f.Check + ": " + f.Message
	if f.Fix != "" {
		s += " (fix: " + f.Fix + ")"
	}
	return s
}

// UpgradeFacts are what a pre-flight read before an upgrade, from the platform,
// the search engine, the other dependencies and the secret store.
type UpgradeFacts struct {
	// Running is the platform's about.version ("" when it did not answer; RunningError says why).
	Running      string `json:"running,omitempty"`
	RunningError string `json:"runningError,omitempty"`
	// Data is MigrationStatus.platformVersion, the version the data was migrated to.
	Data string `json:"data,omitempty"`
	// SearchError is why the search engine's facts could not be read.
	SearchError string `json:"searchError,omitempty"`
	// SearchHealth is the cluster's health.
	SearchHealth string `json:"searchHealth,omitempty"`
	// DiskNode, DiskUsedPercent and DiskFreeBytes are the fullest data node's disk.
	DiskNode        string  `json:"diskNode,omitempty"`
	DiskUsedPercent float64 `json:"diskUsedPercent,omitempty"`
	DiskFreeBytes   int64   `json:"diskFreeBytes,omitempty"`
	// FloodStage is the flood-stage watermark as set, and its value as a
	// percentage used or bytes free.
	FloodStage          string  `json:"floodStage,omitempty"`
	FloodStagePercent   float64 `json:"floodStagePercent,omitempty"`
	FloodStageFreeBytes int64   `json:"floodStageFreeBytes,omitempty"`
	// Dependencies are the probes of opensearch, rabbitmq and redis for the target.
	Dependencies []DependencyFact `json:"dependencies,omitempty"`
	// EncryptionKey is why the encryption key is unusable ("" when it is fine).
	EncryptionKey string `json:"encryptionKey,omitempty"`
	// Health is why the platform is not healthy now ("" when /health answered 200).
	Health string `json:"health,omitempty"`
	// SnapshotRepository is why the upgrade's snapshot could not be taken ("" when it can).
	SnapshotRepository string `json:"snapshotRepository,omitempty"`
}

// DependencyFact is one dependency's probe for the target.
type DependencyFact struct {
	// Name is opensearch, rabbitmq or redis.
	Name string `json:"name"`
	// Version is what it runs.
	Version string `json:"version,omitempty"`
	// Problem is why it does not serve the target ("" when it does).
	Problem string `json:"problem,omitempty"`
	// Warning is a version below the target's minimum that the spec allows.
	Warning string `json:"warning,omitempty"`
}

// PreflightUpgrade judges the facts for moving base to target: every finding at once,
// errors first, so an operator fixes them all in one go. A downgrade is refused
// against both the running version and the data's (never learned by starting the old
// binary); 7.x needs the encryption key; the cluster must be at least yellow with
// its fullest node below the flood-stage watermark; the platform must be healthy now.
func PreflightUpgrade(base Instance, target string, f UpgradeFacts) []Finding {
	var errs, warns []Finding
	add := func(sev, check, msg, fix string) {
		fd := Finding{Check: check, Severity: sev, Message: msg, Fix: fix}
		if sev == FindingError {
			errs = append(errs, fd)
		} else {
			warns = append(warns, fd)
		}
	}
	tv, err := ParseVersion(target)
	if err != nil {
		add(FindingError, "target", err.Error(), "name the release to upgrade to, e.g. 7.260318.0")
		return errs
	}
	switch {
	case f.RunningError != "":
		add(FindingError, "version", "cannot read the running version: "+f.RunningError, "bring the platform up before upgrading")
	default:
		if rv, err := ParseVersion(f.Running); err != nil {
			add(FindingError, "version", "the platform reports version "+f.Running+": "+err.Error(), "")
		} else if c := tv.Compare(rv); c <= 0 {
			add(FindingError, "version", fmt.Sprintf("the platform runs %s; %s is not newer: OpenCTI cannot downgrade", f.Running, target),
				"to go back, restore the snapshot taken before the upgrade")
		} else if f.Running != base.OpenCTI.Version {
			add(FindingError, "version", fmt.Sprintf("the platform runs %s, the instance's spec says %s", f.Running, base.OpenCTI.Version),
				"find out who changed the platform; socflow upgrades only from the version it deployed")
		}
	}
	switch {
	case f.SearchError != "":
		add(FindingError, "search", "cannot read the search engine: "+f.SearchError, "make the search engine answer")
	default:
		if f.Data != "" {
			if dv, err := ParseVersion(f.Data); err == nil && tv.Compare(dv) < 0 {
				add(FindingError, "data-version", fmt.Sprintf("the data was migrated to %s (MigrationStatus in %s_internal_objects), newer than %s: "+
					"that binary would rewrite every index template, then refuse with \"Your platform data are too recent to start on\"", f.Data, base.Name, target),
					"upgrade to "+f.Data+" or later, or restore a snapshot of the older data")
			}
		}
		switch f.SearchHealth {
		case "green", "yellow":
		default:
			add(FindingError, "search-health", fmt.Sprintf("the cluster's health is %q", f.SearchHealth), "bring the cluster to yellow or green: a migration rewrites indices")
		}
		if f.FloodStagePercent > 0 && f.DiskUsedPercent >= f.FloodStagePercent {
			add(FindingError, "disk", fmt.Sprintf("node %s is %.1f%% full, at or above the flood-stage watermark %s: the engine makes every index read-only and the migration fails half way",
				f.DiskNode, f.DiskUsedPercent, f.FloodStage), "free disk on "+f.DiskNode+" or add space before upgrading")
		}
		if f.SnapshotRepository != "" {
			add(FindingError, "snapshot", f.SnapshotRepository, "register a snapshot repository (PUT _snapshot/<name>) and name it in integrations.opensearch.snapshotRepository")
		}
		if f.FloodStageFreeBytes > 0 && f.DiskFreeBytes <= f.FloodStageFreeBytes {
			add(FindingError, "disk", fmt.Sprintf("node %s has %d bytes free, at or below the flood-stage watermark %s", f.DiskNode, f.DiskFreeBytes, f.FloodStage),
				"free disk on "+f.DiskNode+" or add space before upgrading")
		}
	}
	for _, d := range f.Dependencies {
		if d.Problem != "" {
			add(FindingError, d.Name, d.Problem, "")
		}
		if d.Warning != "" {
			add(FindingWarning, d.Name, d.Warning, "")
		}
	}
	if tv.Major() >= 7 && f.EncryptionKey != "" {
		add(FindingError, "encryption-key", "OpenCTI "+target+" needs APP__ENCRYPTION_KEY (base64 of at least 32 bytes): "+f.EncryptionKey,
			"keep the instance's opencti.encryptionKey reference readable by the worker")
	}
	if f.Health != "" {
		add(FindingError, "health", "the platform is not healthy now: "+f.Health, "upgrade a healthy platform: fix it first")
	}
	return append(errs, warns...)
}

// Blocking reports whether any finding is an error.
func Blocking(findings []Finding) bool {
	for _, f := range findings {
		if f.Severity == FindingError {
			return true
		}
	}
	return false
}
