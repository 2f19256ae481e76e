package openctiapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// LogLine is one line of the platform service's output as Pebble keeps it.
type LogLine struct {
	// Time is when Pebble read the line.
	Time time.Time
	// Message is the line itself: OpenCTI writes JSON, socflow-reap too.
	Message string
}

// FailureKind says what socflow should do about the error that ended an attempt.
type FailureKind string

// The kinds of start failure the platform's own error codes tell apart.
const (
	// FailureNone: the attempt logged no error socflow recognises.
	FailureNone FailureKind = ""
	// FailureDependency is a DATABASE_ERROR "<dependency> seems down": transient,
	// the next start succeeds once the dependency answers.
	FailureDependency FailureKind = "dependency-down"
	// FailureLock is a LOCK_ERROR: another node (or a dead node's lock child) holds
	// the init lock; transient, it expires within a minute of its holder's death.
	FailureLock FailureKind = "lock-held"
	// FailureIndexExists is CONFIGURATION_ERROR "index already exists": a first boot
	// was killed; every later start fails the same way until the indices are removed.
	FailureIndexExists FailureKind = "index-already-exists"
	// FailureInvalidToken is "Token must be a valid UUID": the admin token is refused
	// at every boot.
	FailureInvalidToken FailureKind = "invalid-admin-token"
	// FailureDataTooRecent is UNSUPPORTED_ERROR: the data were written by a newer
	// version; starting this one again only rewrites more templates.
	FailureDataTooRecent FailureKind = "data-too-recent"
	// FailureSearchEngine is a search engine that lacks what OpenCTI needs (a module
	// for the component template, the ISM plugin for the lifecycle policy).
	FailureSearchEngine FailureKind = "search-engine-unfit"
	// FailureEncryptionKey is a missing or invalid APP__ENCRYPTION_KEY (7.x).
	FailureEncryptionKey FailureKind = "encryption-key"
	// FailureMigration is a data migration that failed ("Migration up error"): the
	// next start runs the same migration on the same data and fails the same way.
	FailureMigration FailureKind = "migration-failed"
	// FailureOther is an error socflow does not classify: reported, waited on.
	FailureOther FailureKind = "other"
)

// Permanent reports whether waiting and restarting cannot fix the failure.
func (k FailureKind) Permanent() bool {
	switch k {
	case FailureIndexExists, FailureInvalidToken, FailureDataTooRecent, FailureSearchEngine, FailureEncryptionKey, FailureMigration:
		return true
	}
	return false
}

// Attempt is one start of the platform as its output tells it.
type Attempt struct {
	// Start is the time of the attempt's first line.
	Start time.Time
	// Instance and Plan are what socflow-reap logged at the start ("" without it).
	Instance, Plan string
	// Exited is true once socflow-reap reported the exit (or a later attempt began).
	Exited bool
	// ExitCode is the exit code socflow-reap reported (-1 when unknown).
	ExitCode int
	// Kind classifies the most telling error the attempt logged.
	Kind FailureKind
	// Code is OpenCTI's error name (DATABASE_ERROR, LOCK_ERROR, …) when it gave one.
	Code string
	// Error is the error's message, with the cause OpenCTI attached.
	Error string
	// Dependency names the dependency of a FailureDependency: opensearch, s3,
	// rabbitmq or redis.
	Dependency string
	// Ready is true once the attempt logged "API ready on port".
	Ready bool
	// Existing is true once it logged "Existing platform detected": a boot on data,
	// which refreshes the mappings (silently) and migrates when the version changed.
	Existing bool
	// MigrationsPlanned is M of "[MIGRATION] M migrations will be executed",
	// MigrationsDone the "Saving current configuration" lines since, LastMigration
	// the last of their files, and MigratedTo the version of "Platform version
	// updated to X": the migration's progress as the platform logs it.
	MigrationsPlanned, MigrationsDone int
	LastMigration, MigratedTo         string
}

// Progress says, for an attempt whose port is not open yet, where its boot is:
// migrating (n of m done), refreshing the mappings before migrating, or "".
func (a Attempt) Progress() string {
	switch {
	case a.MigratedTo != "":
		return "migrated to " + a.MigratedTo + ", starting its modules"
	case a.MigrationsPlanned > 0:
		p := fmt.Sprintf("migrating: %d of %d migrations done", a.MigrationsDone, a.MigrationsPlanned)
		if a.LastMigration != "" {
			p += " (last " + a.LastMigration + ")"
		}
		return p
	case a.Existing:
		return "refreshing its mappings before any migration (OpenCTI logs nothing during this phase)"
	}
	return ""
}

// logRecord is the part of a JSON log line socflow reads.
type logRecord struct {
	Level    string        `json:"level"`
	Message  string        `json:"message"`
	Errors   []errorRecord `json:"errors"`
	Cause    any           `json:"cause"`
	Error    any           `json:"error"`
	Instance string        `json:"instance"`
	Plan     string        `json:"plan"`
	ExitCode *int          `json:"exit_code"`
}

// errorRecord is one entry of OpenCTI's "errors" array.
type errorRecord struct {
	Name    string `json:"name"`
	Message string `json:"message"`
	Cause   any    `json:"cause"`
}

// Messages that mark attempts: socflow-reap's and OpenCTI's own.
const (
	reapStart     = "[SOCFLOW] socflow-reap starting"
	reapExit      = "[SOCFLOW] service exited"
	platformStart = "[OPENCTI] Starting platform"
	apiReady      = "API ready on port"
)

// Attempts splits the platform's output into start attempts, oldest first. A
// socflow-reap start line opens an attempt; without the reaper, OpenCTI's own
// "Starting platform" line does.
func Attempts(lines []LogLine) []Attempt {
	var out []Attempt
	sawPlatformStart := false
	open := func(t time.Time) *Attempt {
		if n := len(out); n > 0 {
			out[n-1].Exited = true
		}
		out = append(out, Attempt{Start: t, ExitCode: -1})
		sawPlatformStart = false
		return &out[len(out)-1]
	}
	for _, l := range lines {
		var r logRecord
		if json.Unmarshal([]byte(strings.TrimSpace(l.Message)), &r) != nil {
			continue
		}
		var cur *Attempt
		if n := len(out); n > 0 {
			cur = &out[n-1]
		}
		switch {
		case strings.HasPrefix(r.Message, reapStart):
			cur = open(l.Time)
			cur.Instance, cur.Plan = r.Instance, r.Plan
			continue
		case strings.HasPrefix(r.Message, platformStart):
			if cur == nil || sawPlatformStart || cur.Exited {
				open(l.Time)
			}
			sawPlatformStart = true
			continue
		case cur == nil:
			continue
		case strings.HasPrefix(r.Message, reapExit):
			cur.Exited = true
			if r.ExitCode != nil {
				cur.ExitCode = *r.ExitCode
			}
			continue
		case strings.Contains(r.Message, apiReady):
			cur.Ready = true
			continue
		case strings.Contains(r.Message, "Existing platform detected"):
			cur.Existing = true
			continue
		case strings.Contains(r.Message, "migrations will be executed"):
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(r.Message, "[MIGRATION]")), "%d", &cur.MigrationsPlanned)
			continue
		case strings.Contains(r.Message, "Saving current configuration, "):
			cur.MigrationsDone++
			_, cur.LastMigration, _ = strings.Cut(r.Message, "Saving current configuration, ")
			continue
		case strings.Contains(r.Message, "Platform version updated to "):
			_, cur.MigratedTo, _ = strings.Cut(r.Message, "Platform version updated to ")
			continue
		}
		if r.Level == "error" || len(r.Errors) > 0 {
			classifyInto(cur, r)
		}
	}
	return out
}

// classifyInto records the record's error in a when it says more than what a
// has: a known kind beats an unknown one, and the first known one is kept
// (OpenCTI logs the cause first and "Platform default initialization failed" after).
func classifyInto(a *Attempt, r logRecord) {
	code, msg := "", r.Message
	if len(r.Errors) > 0 {
		code = r.Errors[0].Name
		if m := r.Errors[0].Message; m != "" {
			msg = m
		}
	}
	text := msg
	for _, extra := range []any{r.Cause, r.Error} {
		if s := flatten(extra); s != "" && !strings.Contains(text, s) {
			text += ": " + s
		}
	}
	if len(r.Errors) > 0 {
		if s := flatten(r.Errors[0].Cause); s != "" && !strings.Contains(text, s) {
			text += ": " + s
		}
	}
	if text != r.Message && r.Message != "" && !strings.Contains(text, r.Message) {
		text = r.Message + ": " + text
	}
	kind, dep := classify(code, text)
	if a.Kind != FailureNone && a.Kind != FailureOther {
		return
	}
	if a.Kind == FailureOther && kind == FailureOther {
		return
	}
	a.Kind, a.Code, a.Error, a.Dependency = kind, code, text, dep
}

// classify maps OpenCTI's error codes and messages (docs/opencti.md §7, §8) to kinds.
func classify(code, text string) (FailureKind, string) {
	lower := strings.ToLower(text)
	switch {
	case strings.Contains(lower, "index already exists"):
		return FailureIndexExists, ""
	case strings.Contains(text, "Token must be a valid UUID"):
		return FailureInvalidToken, ""
	case code == "LOCK_ERROR" || strings.Contains(lower, "cant get the lock"):
		return FailureLock, ""
	case code == "UNSUPPORTED_ERROR" || strings.Contains(lower, "too recent to start"):
		return FailureDataTooRecent, ""
	case strings.Contains(text, "Migration up error") || strings.Contains(text, "[MIGRATION] Error applying migration"):
		return FailureMigration, ""
	case strings.Contains(lower, "encryption_key"):
		return FailureEncryptionKey, ""
	case strings.Contains(text, "Creating component template fail") || strings.Contains(text, "Creating lifecycle policy fail"):
		return FailureSearchEngine, ""
	case strings.Contains(lower, "seems down") || strings.Contains(lower, "dependencies check failed"):
		return FailureDependency, dependencyOf(lower)
	}
	return FailureOther, ""
}

// dependencyOf names the dependency an OpenCTI "seems down" message is about.
func dependencyOf(lower string) string {
	for _, d := range []struct{ word, name string }{
		{"rabbitmq", "rabbitmq"}, {"redis", "redis"}, {"search engine", "opensearch"}, {"elastic", "opensearch"},
		{"opensearch", "opensearch"}, {"file storage", "s3"}, {"minio", "s3"}, {"s3", "s3"},
	} {
		if strings.Contains(lower, d.word) {
			return d.name
		}
	}
	return ""
}

// flatten renders a JSON cause (a string, or an object with a message) as text.
func flatten(v any) string {
	switch c := v.(type) {
	case nil:
		return ""
	case string:
		return c
	case map[string]any:
		if m, ok := c["message"].(string); ok {
			return m
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Summary is one line for an operator: what ended the attempt and how.
func (a Attempt) Summary() string {
	var b strings.Builder
	switch {
	case a.Kind == FailureDependency && a.Dependency != "":
		fmt.Fprintf(&b, "%s seems down", a.Dependency)
	case a.Error != "":
		b.WriteString(a.Error)
	default:
		b.WriteString("no error logged")
	}
	if a.Code != "" && !strings.Contains(b.String(), a.Code) {
		fmt.Fprintf(&b, " (%s)", a.Code)
	}
	if a.Exited && a.ExitCode >= 0 {
		fmt.Fprintf(&b, ", exit code %d", a.ExitCode)
	}
	return b.String()
}
