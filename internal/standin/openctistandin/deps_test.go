package openctistandin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/standin/standinlog"
)

// noSMTP is an address nothing listens on: SMTP only warns.
var noSMTP = SMTPConfig{Hostname: "127.0.0.1", Port: 1}

func TestCheckDependenciesSequentialLines(t *testing.T) {
	var buf bytes.Buffer
	results, err := checkDependencies(context.Background(), standinlog.New(&buf, slog.LevelInfo), healthyDeps(), noSMTP, "python3")
	if err != nil || len(results) != 4 {
		t.Fatalf("got %v, %v", results, err)
	}
	want := []string{
		"[OPENCTI] Checking dependencies statuses",
		"[CHECK] checking if Search engine is alive",
		"[CHECK] Search engine ok, checking if File storage is alive",
		"[CHECK] File storage ok, checking if RabbitMQ is alive",
		"[CHECK] RabbitMQ ok, checking if Redis is alive",
		"[CHECK] Redis ok, checking if SMTP is alive",
		"[CHECK] SMTP seems down, email notification will may not work",
		"[CHECK] SMTP done, checking if python is available",
		"[CHECK] Python3 is available",
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var l struct{ Message string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		got = append(got, l.Message)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// countingDep records whether it was checked.
type countingDep struct {
	fakeDep
	checked bool
}

func (c *countingDep) check(ctx context.Context) (string, error) {
	c.checked = true
	return c.fakeDep.check(ctx)
}

func TestCheckDependenciesStopsAtFirstFailureInOrder(t *testing.T) {
	cause := errors.New("connect ECONNREFUSED 127.0.0.1:5672")
	redis := &countingDep{fakeDep: fakeDep{name: "Redis"}}
	deps := healthyDeps()
	deps[2] = &fakeDep{name: "RabbitMQ", err: cause, typed: DatabaseErrorName}
	deps[3] = redis
	var buf bytes.Buffer
	log := standinlog.New(&buf, slog.LevelInfo)
	_, err := checkDependencies(context.Background(), log, deps, noSMTP, "python3")
	var de *DependencyError
	if !errors.As(err, &de) || de.Dependency != "RabbitMQ" || !errors.Is(err, cause) {
		t.Fatalf("err = %v, want a DependencyError for RabbitMQ wrapping the cause", err)
	}
	if redis.checked {
		t.Error("Redis was checked after RabbitMQ failed: checks must be sequential")
	}
	logFailure(log, "[OPENCTI] System dependencies check failed", err)
	line := lastLine(t, buf.String())
	if line.Message != "[OPENCTI] System dependencies check failed" || line.Level != "error" ||
		len(line.Errors) != 2 || line.Errors[0].Name != DatabaseErrorName || line.Errors[0].Message != "RabbitMQ seems down" ||
		!strings.Contains(line.Errors[1].Message, "ECONNREFUSED") {
		t.Errorf("error line = %+v", line)
	}
}

func TestCheckDependenciesPythonMissing(t *testing.T) {
	_, err := checkDependencies(context.Background(), standinlog.New(&bytes.Buffer{}, slog.LevelInfo), healthyDeps(), noSMTP, "/nonexistent/python3")
	var de *DependencyError
	if !errors.As(err, &de) || de.Dependency != "Python" {
		t.Fatalf("err = %v, want Python named", err)
	}
}

func TestHealthChecksTimeOutWithOpenCTIText(t *testing.T) {
	deps := []dependency{&hangingDep{fakeDep{name: "Search engine"}}, &fakeDep{name: "Redis"}}
	start := time.Now()
	err := runHealthChecks(context.Background(), deps, 200*time.Millisecond)
	if err == nil || err.Error() != "Timeout checking elastic/opensearch health" || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
}

func TestHealthChecksReportFirstFailureInTime(t *testing.T) {
	deps := []dependency{&hangingDep{fakeDep{name: "Search engine"}}, &fakeDep{name: "Redis", err: errors.New("WRONGPASS"), typed: DatabaseErrorName}}
	err := runHealthChecks(context.Background(), deps, 5*time.Second)
	if err == nil || reportMessage(err) != "Redis seems down" {
		t.Fatalf("err = %v, want Redis seems down at once", err)
	}
}

// hangingDep never answers until its context ends, like a firewalled host.
type hangingDep struct{ fakeDep }

func (h *hangingDep) check(ctx context.Context) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

// logLine is one decoded OpenCTI JSON log line.
type logLine struct {
	Level, Message string
	Errors         []struct {
		Name, Message string
		Attributes    map[string]any
	}
}

func lastLine(t *testing.T, log string) logLine {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(log), "\n")
	var l logLine
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &l); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	return l
}
