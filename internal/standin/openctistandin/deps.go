package openctistandin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// dependency is one backing service the platform cannot run without; start-up and
// /health share its check so both judge a service the same way.
type dependency interface {
	// label is the name in about, /health and errors ("Search engine", "RabbitMQ").
	label() string
	// check talks to the service for real and returns the version it reports
	// ("" when the protocol does not expose one) or the client's raw error.
	check(ctx context.Context) (string, error)
	// report turns a raw check error into what OpenCTI reports: a typed error
	// ("RabbitMQ seems down") or, for S3, the raw error itself.
	report(err error) error
}

// startCheckTimeout bounds each start-up check: finite because OpenCTI does not
// retry and the supervisor must see the exit to decide on a restart.
var startCheckTimeout = 10 * time.Second

// checkResult is the outcome of one dependency's check.
type checkResult struct {
	dep     dependency
	version string
}

// checkDependencies runs OpenCTI's checkSystemDependencies: one service after the
// other in its order, each announced by its real log line, stopping at the first
// failure with no retry (the supervisor decides). SMTP only warns. Python comes last.
func checkDependencies(ctx context.Context, log *slog.Logger, deps []dependency, smtp SMTPConfig, python string) ([]checkResult, error) {
	log.Info("[OPENCTI] Checking dependencies statuses")
	results := make([]checkResult, 0, len(deps))
	for i, d := range deps {
		if i == 0 {
			log.Info(fmt.Sprintf("[CHECK] checking if %s is alive", d.label()))
		} else {
			log.Info(fmt.Sprintf("[CHECK] %s ok, checking if %s is alive", deps[i-1].label(), d.label()))
		}
		cctx, cancel := context.WithTimeout(ctx, startCheckTimeout)
		v, err := d.check(cctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("cannot check dependencies: %w", ctx.Err())
			}
			return nil, &DependencyError{Dependency: d.label(), Err: d.report(err)}
		}
		results = append(results, checkResult{dep: d, version: v})
	}
	if len(deps) > 0 {
		log.Info(fmt.Sprintf("[CHECK] %s ok, checking if SMTP is alive", deps[len(deps)-1].label()))
	}
	if err := smtpIsAlive(ctx, smtp); err != nil {
		// OpenCTI only warns: e-mail is not needed to run.
		log.Warn("[CHECK] SMTP seems down, email notification will may not work", "error", err.Error())
	}
	log.Info("[CHECK] SMTP done, checking if python is available")
	if err := checkPython(ctx, python); err != nil {
		return nil, &DependencyError{Dependency: "Python", Err: newError(ConfigurationErrorName, "Python3 is not available", err, nil, nil)}
	}
	log.Info("[CHECK] Python3 is available")
	return results, nil
}

// smtpIsAlive opens a TCP connection and reads the greeting's first byte, which
// is as far as the check needs to go to tell "answers" from "does not".
func smtpIsAlive(ctx context.Context, c SMTPConfig) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(c.Hostname, strconv.Itoa(c.Port)))
	if err != nil {
		return fmt.Errorf("cannot reach smtp: %w", err)
	}
	return conn.Close()
}

// pythonCheckTimeout bounds one run of the interpreter.
const pythonCheckTimeout = 10 * time.Second

// checkPython runs the interpreter once; OpenCTI executes Python for
// playbooks and imports, so a platform without it refuses to start.
func checkPython(ctx context.Context, python string) error {
	ctx, cancel := context.WithTimeout(ctx, pythonCheckTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", "import sys; sys.exit(0 if sys.version_info[0] == 3 else 1)").CombinedOutput()
	if err != nil {
		return fmt.Errorf("cannot run %s: %w: %s", python, err, truncate(string(out), 200))
	}
	return nil
}

// pythonPath is the interpreter to check: the venv's when APP__PYTHON_EXECUTION_VENV is set.
func (c Config) pythonPath() string {
	if c.PythonVenv != "" {
		return filepath.Join(c.PythonVenv, "bin", "python3")
	}
	if c.Python != "" {
		return c.Python
	}
	return "python3"
}

// runHealthChecks checks all dependencies concurrently, as OpenCTI's health
// endpoint does with Promise.all, and returns the first failure in time, or nil.
// A dependency silent for timeout fails with OpenCTI's timeout text.
func runHealthChecks(ctx context.Context, deps []dependency, timeout time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(deps))
	for _, d := range deps {
		go func() {
			_, err := d.check(ctx)
			if err != nil {
				err = d.report(err)
			}
			errs <- err
		}()
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for range deps {
		select {
		case err := <-errs:
			if err != nil {
				return err
			}
		case <-timer.C:
			return errors.New("Timeout checking elastic/opensearch health")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// reportMessage is what /health shows for an error: the typed error's own
// message ("RabbitMQ seems down") or the raw text.
func reportMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}
