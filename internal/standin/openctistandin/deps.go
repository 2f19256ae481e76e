package openctistandin

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// dependency is one backing service the platform cannot run without; start-up and
// /health share its check so both judge a service the same way.
type dependency interface {
	// label is the name in OpenCTI's "[CHECK] Checking if <label> is available" line.
	label() string
	// product is the name used in errors and /health details ("RabbitMQ").
	product() string
	// check talks to the service for real and returns the version it reports
	// ("" when the protocol does not expose one).
	check(ctx context.Context) (string, error)
	// minimum returns the documented minimum version, or "" when it cannot be compared.
	minimum(version string) string
}

// Timeouts per kind of probe, chosen for who waits on them.
var (
	// startCheckTimeout bounds each start-up check: generous because a backend
	// may be slow to answer its first request, yet finite because OpenCTI does not
	// retry and the supervisor must see the exit to decide on a restart.
	startCheckTimeout = 10 * time.Second
	// healthCheckTimeout bounds /health's live checks below the 5 s timeout the
	// charm's probe uses, so the endpoint answers 503 rather than timing out.
	healthCheckTimeout = 3 * time.Second
)

// checkResult is the outcome of one dependency's check.
type checkResult struct {
	dep     dependency
	version string
	err     error
}

// runChecks checks all dependencies concurrently, as OpenCTI does, and returns
// results in the order given (so reports are deterministic) plus the index of
// the first check to fail in time, or -1. With failFast the first failure
// cancels the other checks, as OpenCTI's start-up ends at the first failure.
func runChecks(ctx context.Context, deps []dependency, timeout time.Duration, failFast bool) ([]checkResult, int) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]checkResult, len(deps))
	first := -1
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, d := range deps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, ccancel := context.WithTimeout(ctx, timeout)
			defer ccancel()
			v, err := d.check(cctx)
			mu.Lock()
			defer mu.Unlock()
			results[i] = checkResult{dep: d, version: v, err: err}
			if err != nil && first < 0 {
				first = i
				if failFast {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	return results, first
}

// checkDependencies logs OpenCTI's start-up check lines and fails on the first
// dependency that does not answer, with no retry: the supervisor decides.
func checkDependencies(ctx context.Context, log *slog.Logger, deps []dependency) ([]checkResult, error) {
	log.Info("Checking dependencies statuses")
	for _, d := range deps {
		log.Info(fmt.Sprintf("[CHECK] Checking if %s is available", d.label()))
	}
	results, first := runChecks(ctx, deps, startCheckTimeout, true)
	if first >= 0 {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("cannot check dependencies: %w", ctx.Err())
		}
		r := results[first]
		log.Error(r.dep.product()+" seems down", "category", "APP",
			"errors", []map[string]string{{"name": "DATABASE_ERROR", "message": r.dep.product() + " seems down", "cause": r.err.Error()}})
		log.Error("[OPENCTI] System dependencies check failed", "category", "APP")
		return nil, &DependencyError{Dependency: r.dep.product(), Err: r.err}
	}
	for _, r := range results {
		if minimum := r.dep.minimum(r.version); minimum != "" && !atLeast(r.version, minimum) {
			// OpenCTI documents these minimums; the local stack runs older
			// Debian packages, so like the brief says this only warns.
			log.Warn(fmt.Sprintf("[CHECK] %s version %s is below the documented minimum %s", r.dep.product(), r.version, minimum))
		}
		if r.version == "" {
			log.Info(fmt.Sprintf("[CHECK] %s is alive", r.dep.label()))
		} else {
			log.Info(fmt.Sprintf("[CHECK] %s is alive", r.dep.label()), "version", r.version)
		}
	}
	return results, nil
}
