package openctistandin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/standin/standinlog"
)

func TestCheckDependenciesLogsLikeOpenCTI(t *testing.T) {
	var buf bytes.Buffer
	results, err := checkDependencies(context.Background(), standinlog.New(&buf, slog.LevelInfo), healthyDeps())
	if err != nil || len(results) != 4 {
		t.Fatalf("got %v, %v", results, err)
	}
	for _, want := range []string{
		`"message":"Checking dependencies statuses"`,
		`"message":"[CHECK] Checking if Search engine is available"`,
		`"message":"[CHECK] Checking if File Storage is available"`,
		`"message":"[CHECK] Checking if RabbitMQ is available"`,
		`"message":"[CHECK] Checking if Redis is available"`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
}

func TestCheckDependenciesFailsOnFirstDown(t *testing.T) {
	deps := healthyDeps()
	cause := errors.New("dial tcp 127.0.0.1:5672: connect: connection refused")
	deps[2] = &fakeDep{name: "RabbitMQ", err: cause}
	var buf bytes.Buffer
	_, err := checkDependencies(context.Background(), standinlog.New(&buf, slog.LevelInfo), deps)
	var de *DependencyError
	if !errors.As(err, &de) || de.Dependency != "RabbitMQ" || !errors.Is(err, cause) {
		t.Fatalf("err = %v, want a DependencyError for RabbitMQ wrapping the cause", err)
	}
	for _, want := range []string{`"level":"error","message":"RabbitMQ seems down"`, `System dependencies check failed`, "connection refused"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
}

func TestCheckDependenciesWarnsBelowMinimum(t *testing.T) {
	deps := []dependency{&fakeDep{name: "Redis", version: "0.9"}}
	var buf bytes.Buffer
	if _, err := checkDependencies(context.Background(), standinlog.New(&buf, slog.LevelInfo), deps); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"level":"warn"`) || !strings.Contains(buf.String(), "below the documented minimum") {
		t.Errorf("no warning for an old version:\n%s", buf.String())
	}
}

// hangingDep never answers until its context ends, like a firewalled host.
type hangingDep struct{ fakeDep }

func (h *hangingDep) check(ctx context.Context) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

func TestCheckDependenciesDoesNotWaitForSlowChecks(t *testing.T) {
	deps := []dependency{&hangingDep{fakeDep{name: "Search engine"}}, &fakeDep{name: "Redis", err: errors.New("WRONGPASS")}}
	start := time.Now()
	_, err := checkDependencies(context.Background(), standinlog.New(io.Discard, slog.LevelInfo), deps)
	var de *DependencyError
	if !errors.As(err, &de) || de.Dependency != "Redis" {
		t.Fatalf("err = %v, want Redis named", err)
	}
	if time.Since(start) > startCheckTimeout/2 {
		t.Errorf("took %s: the failure should end the checks at once", time.Since(start))
	}
}
