// Package layer mirrors the part of Pebble's layer format socflow writes, renders it
// as the YAML Pebble reads, digests services and diffs layers; it is pure (no I/O), so
// planners, activities and workflows share it and tests compare whole layers.
package layer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Layer mirrors the subset of Pebble's layer YAML socflow writes; socflow
// keeps its own types because Pebble's live in an internal package.
type Layer struct {
	// Summary is a one-line description shown by "pebble plan".
	Summary string `json:"summary,omitempty"`
	// Description says who owns the layer and why it looks the way it does.
	Description string `json:"description,omitempty"`
	// Services are keyed by service name.
	Services map[string]Service `json:"services,omitempty"`
	// Checks are keyed by check name.
	Checks map[string]Check `json:"checks,omitempty"`
	// LogTargets are keyed by target name. They are not part of any service's Digest:
	// Pebble forwards logs without restarting a service, so adding a target to the plan
	// of a running instance must not make its services look changed.
	LogTargets map[string]LogTarget `json:"log-targets,omitempty"`
}

// LogTargetType is where Pebble forwards service logs to.
type LogTargetType string

// LogTargetLoki is Grafana Loki's push API, the type socflow writes.
const LogTargetLoki LogTargetType = "loki"

// LogTarget mirrors a Pebble log target (Pebble >= 1.17): the services whose output
// Pebble pushes to Location, with extra Labels on every line.
type LogTarget struct {
	Override Override          `json:"override,omitempty"`
	Type     LogTargetType     `json:"type,omitempty"`
	Location string            `json:"location,omitempty"`
	Services []string          `json:"services,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// LokiTarget is the name of the log target socflow writes into every plan it owns.
const LokiTarget = "socflow-loki"

// WithLoki returns l with the log target LokiTarget forwarding every service of l to
// the Loki push URL location with labels; l itself when location is "" (logs stay in
// Pebble). The target merges, so layers of several labels in one container (a Wazuh
// master's node and exporter layers) each add their services to it.
func (l Layer) WithLoki(location string, labels map[string]string) Layer {
	if location == "" || len(l.Services) == 0 {
		return l
	}
	names := make([]string, 0, len(l.Services))
	for name := range l.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	l.LogTargets = map[string]LogTarget{LokiTarget: {Override: OverrideMerge, Type: LogTargetLoki, Location: location,
		Services: names, Labels: maps.Clone(labels)}}
	return l
}

// YAML renders the layer for Pebble's AddLayer; map keys come out sorted, so
// the same layer always gives the same bytes and an unchanged plan can be
// recognised by comparing them.
func (l Layer) YAML() ([]byte, error) {
	b, err := yaml.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("cannot render pebble layer: %w", err)
	}
	return b, nil
}

// Override is how a layer entry combines with the same entry in lower layers.
type Override string

// The override modes Pebble accepts.
const (
	OverrideMerge   Override = "merge"
	OverrideReplace Override = "replace"
)

// Startup says whether Pebble starts a service (or runs a check) on its own.
type Startup string

// The startup modes Pebble accepts.
const (
	StartupEnabled  Startup = "enabled"
	StartupDisabled Startup = "disabled"
)

// ServiceAction is what Pebble does when a service exits or a check fails.
type ServiceAction string

// The service actions Pebble accepts.
const (
	ActionRestart         ServiceAction = "restart"
	ActionShutdown        ServiceAction = "shutdown"
	ActionIgnore          ServiceAction = "ignore"
	ActionSuccessShutdown ServiceAction = "success-shutdown"
	ActionFailureShutdown ServiceAction = "failure-shutdown"
)

// CheckLevel is the health level a failing check degrades.
type CheckLevel string

// The check levels Pebble accepts.
const (
	LevelAlive CheckLevel = "alive"
	LevelReady CheckLevel = "ready"
)

// Service mirrors a Pebble service entry; each field is the Pebble key named
// in its tag, with Pebble's meaning and defaults.
type Service struct {
	Summary        string                   `json:"summary,omitempty"`
	Description    string                   `json:"description,omitempty"`
	Startup        Startup                  `json:"startup,omitempty"`
	Override       Override                 `json:"override,omitempty"`
	Command        string                   `json:"command,omitempty"`
	After          []string                 `json:"after,omitempty"`
	Before         []string                 `json:"before,omitempty"`
	Requires       []string                 `json:"requires,omitempty"`
	Environment    map[string]string        `json:"environment,omitempty"`
	UserID         *int                     `json:"user-id,omitempty"`
	User           string                   `json:"user,omitempty"`
	GroupID        *int                     `json:"group-id,omitempty"`
	Group          string                   `json:"group,omitempty"`
	WorkingDir     string                   `json:"working-dir,omitempty"`
	OnSuccess      ServiceAction            `json:"on-success,omitempty"`
	OnFailure      ServiceAction            `json:"on-failure,omitempty"`
	OnCheckFailure map[string]ServiceAction `json:"on-check-failure,omitempty"`
	BackoffDelay   Duration                 `json:"backoff-delay,omitempty"`
	BackoffFactor  float64                  `json:"backoff-factor,omitempty"`
	BackoffLimit   Duration                 `json:"backoff-limit,omitempty"`
	KillDelay      Duration                 `json:"kill-delay,omitempty"`
}

// Check mirrors a Pebble health check entry, field for key as in its tags;
// exactly one of HTTP, TCP and Exec is set.
type Check struct {
	Override  Override   `json:"override,omitempty"`
	Level     CheckLevel `json:"level,omitempty"`
	Startup   Startup    `json:"startup,omitempty"`
	Period    Duration   `json:"period,omitempty"`
	Timeout   Duration   `json:"timeout,omitempty"`
	Threshold int        `json:"threshold,omitempty"`
	HTTP      *HTTPCheck `json:"http,omitempty"`
	TCP       *TCPCheck  `json:"tcp,omitempty"`
	Exec      *ExecCheck `json:"exec,omitempty"`
}

// HTTPCheck passes when a GET of URL answers 2xx.
type HTTPCheck struct {
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// TCPCheck passes when Host:Port accepts a connection.
type TCPCheck struct {
	Port int    `json:"port,omitempty"`
	Host string `json:"host,omitempty"`
}

// ExecCheck passes when Command exits 0.
type ExecCheck struct {
	Command        string            `json:"command,omitempty"`
	ServiceContext string            `json:"service-context,omitempty"`
	Environment    map[string]string `json:"environment,omitempty"`
	User           string            `json:"user,omitempty"`
	Group          string            `json:"group,omitempty"`
	WorkingDir     string            `json:"working-dir,omitempty"`
}

// Duration is written as Go duration text ("1m", "5s"), the form Pebble
// parses, instead of the nanosecond count encoding/json would produce.
type Duration time.Duration

// MarshalJSON writes the shortest Go duration text, e.g. "1m" not "1m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return json.Marshal(s)
}

// UnmarshalJSON reads Go duration text, so layers round-trip through YAML.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("cannot parse duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("cannot parse duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Digest is a short SHA-256 of the service's whole definition: equal definitions give
// equal digests, and any change — a secret's value included, so a rotation shows — gives
// another. Secrets go in only through the hash, beside random generated keys, so the
// digest reveals nothing usable of them.
func (s Service) Digest() string {
	// encoding/json sorts map keys, so equal definitions give equal bytes.
	b, err := json.Marshal(s)
	if err != nil {
		// Service holds only strings, numbers and maps of strings: it always marshals.
		panic("cannot marshal a pebble service: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// Dir is one directory a plan creates in the workload container beside its layer.
type Dir struct {
	// Path is absolute inside the container.
	Path string
	// Perm is the mode to create it with.
	Perm os.FileMode
}

// File is one file a plan pushes into the workload container beside its layer.
type File struct {
	// Path is absolute inside the container.
	Path string
	// Content is the exact bytes to write.
	Content []byte
	// Perm is the file mode to create the file with.
	Perm os.FileMode
}
