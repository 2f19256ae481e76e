// Package connectorfixture holds socflow's connector fixture (a test fixture,
// not product): connector.py, a small EXTERNAL_IMPORT connector built on pycti's
// OpenCTIConnectorHelper — the library every real OpenCTI connector is built
// on — that registers, pings, and imports one STIX bundle into its push queue.
// It runs on the pycti of deploy/local/stack (SOCFLOW_PYCTI_PYTHON) and is
// configured only by environment, as socflow configures connectors, so tests
// can run it as a process or as a Pebble service.
package connectorfixture

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed connector.py
var script []byte

// Script returns connector.py.
func Script() []byte { return append([]byte(nil), script...) }

// WriteScript writes connector.py into dir (created if missing) and returns its path.
func WriteScript(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot create %s: %w", dir, err)
	}
	path := filepath.Join(dir, "connector.py")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		return "", fmt.Errorf("cannot write %s: %w", path, err)
	}
	return path, nil
}

// Config is what socflow hands a connector: the platform, the connector's own
// user token and identity, and its settings.
type Config struct {
	// URL is OPENCTI_URL, the platform's base URL (with APP__BASE_PATH).
	URL string
	// Token is OPENCTI_TOKEN, the API token of the connector's user.
	Token string
	// ID is CONNECTOR_ID, a UUIDv4 kept across restarts.
	ID string
	// Name is CONNECTOR_NAME.
	Name string
	// Type is CONNECTOR_TYPE (default EXTERNAL_IMPORT, the fixture's kind).
	Type string
	// Scope is CONNECTOR_SCOPE (default "identity").
	Scope string
	// LogLevel is CONNECTOR_LOG_LEVEL (default info).
	LogLevel string
	// Interval is FIXTURE_INTERVAL, an ISO 8601 duration between runs (default PT1H).
	Interval string
	// IdentityName is FIXTURE_IDENTITY_NAME, the organization it imports.
	IdentityName string
}

// Env is the connector's environment as KEY=VALUE lines, sorted; empty
// optional settings are left out so the fixture's defaults apply.
func (c Config) Env() []string {
	m := map[string]string{
		"OPENCTI_URL":         c.URL,
		"OPENCTI_TOKEN":       c.Token,
		"CONNECTOR_ID":        c.ID,
		"CONNECTOR_NAME":      c.Name,
		"CONNECTOR_TYPE":      or(c.Type, "EXTERNAL_IMPORT"),
		"CONNECTOR_SCOPE":     or(c.Scope, "identity"),
		"CONNECTOR_LOG_LEVEL": or(c.LogLevel, "info"),
	}
	if c.Interval != "" {
		m["FIXTURE_INTERVAL"] = c.Interval
	}
	if c.IdentityName != "" {
		m["FIXTURE_IDENTITY_NAME"] = c.IdentityName
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Command is the command line that runs the fixture with python (the
// interpreter of pycti's virtualenv, SOCFLOW_PYCTI_PYTHON).
func Command(python, scriptPath string) []string {
	return []string{python, "-u", scriptPath}
}

// PebbleCommand is Command as one Pebble service command string.
func PebbleCommand(python, scriptPath string) string {
	return strings.Join(Command(python, scriptPath), " ")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
