package openctiapi

import (
	"strings"
	"testing"
	"time"
)

// Lines in the shapes the real 6.9.28 platform and socflow-reap write
// (docs/opencti.md §7); the stand-in writes the same.
const (
	reapStartLine = `{"category":"SOCFLOW","level":"info","message":"[SOCFLOW] socflow-reap starting the service","instance":"demo","plan":"aa11bb22cc33","pid":100,"timestamp":"2026-11-30T10:00:00Z"}`
	startLine     = `{"category":"APP","level":"info","message":"[OPENCTI] Starting platform (version 6.9.28)","timestamp":"2026-11-30T10:00:00Z"}`
	rabbitDown    = `{"category":"APP","errors":[{"attributes":{"genre":"TECHNICAL","http_status":500},"message":"RabbitMQ seems down","name":"DATABASE_ERROR"}],"level":"error","message":"[OPENCTI] System dependencies check failed","timestamp":"2026-11-30T10:00:05Z"}`
	indexExists   = `{"category":"APP","errors":[{"message":"Fail initialize schema, index already exists, previous initialization fail because you kill the platform before the end of the initialization. Please remove your elastic/opensearch data and restart.","name":"CONFIGURATION_ERROR"}],"level":"error","message":"[OPENCTI] Platform default initialization failed","timestamp":"2026-11-30T10:00:20Z"}`
	lockError     = `{"category":"APP","errors":[{"message":"Platform cant get the lock for initialization (can be due to other instance currently migrating/initializing)","name":"LOCK_ERROR"}],"level":"error","message":"[OPENCTI] Platform default initialization failed","timestamp":"2026-11-30T10:00:30Z"}`
	initFailed    = `{"category":"APP","level":"error","message":"[OPENCTI] Platform default initialization failed","timestamp":"2026-11-30T10:00:31Z"}`
	reapExitLine  = `{"category":"SOCFLOW","level":"info","message":"[SOCFLOW] service exited","exit_code":1,"runtime":4.2,"instance":"demo","plan":"aa11bb22cc33","timestamp":"2026-11-30T10:00:05Z"}`
	readyLine     = `{"category":"APP","level":"info","message":"[OPENCTI] API ready on port 8080","timestamp":"2026-11-30T10:01:40Z"}`
)

func lines(msgs ...string) []LogLine {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	out := make([]LogLine, len(msgs))
	for i, m := range msgs {
		out[i] = LogLine{Time: t0.Add(time.Duration(i) * time.Second), Message: m}
	}
	return out
}

func TestAttempts(t *testing.T) {
	tests := []struct {
		name  string
		lines []LogLine
		want  []Attempt // Start is not compared
	}{
		{"reaped dependency failures then a running start",
			lines(reapStartLine, startLine, rabbitDown, reapExitLine, reapStartLine, startLine),
			[]Attempt{
				{Instance: "demo", Plan: "aa11bb22cc33", Exited: true, ExitCode: 1, Kind: FailureDependency, Code: "DATABASE_ERROR",
					Error: "[OPENCTI] System dependencies check failed: RabbitMQ seems down", Dependency: "rabbitmq"},
				{Instance: "demo", Plan: "aa11bb22cc33", ExitCode: -1},
			}},
		{"without the reaper each Starting platform opens an attempt",
			lines(startLine, indexExists, startLine),
			[]Attempt{
				{Exited: true, ExitCode: -1, Kind: FailureIndexExists, Code: "CONFIGURATION_ERROR",
					Error: "[OPENCTI] Platform default initialization failed: Fail initialize schema, index already exists, previous initialization fail because you kill the platform before the end of the initialization. Please remove your elastic/opensearch data and restart."},
				{ExitCode: -1},
			}},
		{"the cause is kept over the generic line after it",
			lines(reapStartLine, startLine, lockError, initFailed, reapExitLine),
			[]Attempt{{Instance: "demo", Plan: "aa11bb22cc33", Exited: true, ExitCode: 1, Kind: FailureLock, Code: "LOCK_ERROR",
				Error: "[OPENCTI] Platform default initialization failed: Platform cant get the lock for initialization (can be due to other instance currently migrating/initializing)"}}},
		{"ready", lines(reapStartLine, startLine, readyLine), []Attempt{{Instance: "demo", Plan: "aa11bb22cc33", ExitCode: -1, Ready: true}}},
		{"plain text and lines before any start are skipped", lines("not json", rabbitDown, startLine), []Attempt{{ExitCode: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Attempts(tt.lines)
			for i := range got {
				got[i].Start = time.Time{}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d attempts %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("attempt %d\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code, text string
		kind       FailureKind
		dep        string
		permanent  bool
	}{
		{"DATABASE_ERROR", "Search engine seems down", FailureDependency, "opensearch", false},
		{"DATABASE_ERROR", "[OPENCTI] System dependencies check failed: Redis seems down", FailureDependency, "redis", false},
		{"", "S3 seems down: The Access Key Id you provided does not exist", FailureDependency, "s3", false},
		{"LOCK_ERROR", "Platform cant get the lock", FailureLock, "", false},
		{"CONFIGURATION_ERROR", "Fail initialize schema, index already exists", FailureIndexExists, "", true},
		{"", "Token must be a valid UUID", FailureInvalidToken, "", true},
		{"UNSUPPORTED_ERROR", "Your platform data are too recent to start on", FailureDataTooRecent, "", true},
		{"DATABASE_ERROR", "Creating component template fail", FailureSearchEngine, "", true},
		{"", "app:encryption_key configuration is missing or invalid", FailureEncryptionKey, "", true},
		{"", "something else", FailureOther, "", false},
	}
	for _, tt := range tests {
		kind, dep := classify(tt.code, tt.text)
		if kind != tt.kind || dep != tt.dep || kind.Permanent() != tt.permanent {
			t.Errorf("classify(%q, %q) = %s, %q (permanent %v); want %s, %q (permanent %v)",
				tt.code, tt.text, kind, dep, kind.Permanent(), tt.kind, tt.dep, tt.permanent)
		}
	}
}

func TestAttemptSummary(t *testing.T) {
	a := Attempts(lines(reapStartLine, startLine, rabbitDown, reapExitLine))[0]
	if got := a.Summary(); got != "rabbitmq seems down (DATABASE_ERROR), exit code 1" {
		t.Errorf("Summary() = %q", got)
	}
	if !strings.Contains(Attempts(lines(startLine))[0].Summary(), "no error logged") {
		t.Error("an attempt without an error says so")
	}
}

// TestMigrationProgress reads an upgrade's progress from the lines the real platform
// writes while it migrates (docs/opencti.md §8), and a failed migration as permanent.
func TestMigrationProgress(t *testing.T) {
	info := func(msg string) string {
		return `{"category":"APP","level":"info","message":"` + msg + `","timestamp":"2026-11-30T10:00:00Z"}`
	}
	boot := []string{reapStartLine, startLine, info("[INIT] Starting platform initialization"), info("[INIT] Existing platform detected, initialization...")}
	steps := []struct {
		add  []string
		want string
	}{
		{nil, "refreshing its mappings before any migration (OpenCTI logs nothing during this phase)"},
		{[]string{info("[MIGRATION] Read 0 migrations from the database"), info("[MIGRATION] 5 migrations will be executed")}, "migrating: 0 of 5 migrations done"},
		{[]string{info("[MIGRATION] Saving current configuration, 1773100000000-a.js"), info("[MIGRATION] Saving current configuration, 1773200000000-b.js")},
			"migrating: 2 of 5 migrations done (last 1773200000000-b.js)"},
		{[]string{info("[MIGRATION] Migration process completed"), info("[MIGRATION] Platform version updated to 7.260318.0")}, "migrated to 7.260318.0, starting its modules"},
	}
	msgs := boot
	for _, s := range steps {
		msgs = append(msgs, s.add...)
		as := Attempts(lines(msgs...))
		if got := as[len(as)-1].Progress(); got != s.want {
			t.Errorf("after %d lines: progress %q, want %q", len(msgs), got, s.want)
		}
	}
	failed := `{"category":"APP","errors":[{"message":"migration failed: 1773792000000-legacy_token_migration.js","name":"Error"}],"level":"error","message":"Migration up error","timestamp":"2026-11-30T10:00:40Z"}`
	as := Attempts(lines(append(boot, failed, initFailed, reapExitLine)...))
	if a := as[0]; a.Kind != FailureMigration || !a.Kind.Permanent() || !strings.Contains(a.Summary(), "legacy_token_migration") {
		t.Errorf("failed migration: %+v", a)
	}
}
