// Command worker is a test stand-in for the OpenCTI worker (not product): it
// reads OPENCTI_URL, OPENCTI_TOKEN and WORKER_LOG_LEVEL, never exits while the
// platform is unreachable (it retries every -poll-interval, 60 s like the real
// worker), consumes the push queues the platform advertises, and exits 0 on SIGTERM.
// -version (default 6.9.28) is the OpenCTI release it is built for: against a
// platform of another major its queries fail validation at every poll.
// -broken-while FILE makes it die at every start while FILE exists, as a worker whose
// image lost a module does (a test's broken worker).
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/socflow/socflow/internal/standin/standinlog"
	"github.com/socflow/socflow/internal/standin/workerstandin"
)

func main() {
	poll := flag.Duration("poll-interval", workerstandin.DefaultPollInterval, "pause between polls of the platform and between retries")
	version := flag.String("version", workerstandin.DefaultVersion, "OpenCTI version this worker (and its pycti) pretends to be")
	brokenWhile := flag.String("broken-while", "", "exit 1 at start, with Python's import error, while this file exists")
	flag.Parse()
	if *brokenWhile != "" {
		if _, err := os.Stat(*brokenWhile); err == nil {
			standinlog.New(os.Stdout, slog.LevelInfo).Error("Traceback (most recent call last): File \"/opt/opencti-worker/worker.py\", line 13, in <module>: " +
				"ModuleNotFoundError: No module named 'pycti'")
			os.Exit(1)
		}
	}

	cfg, err := workerstandin.ConfigFromEnv(os.Getenv)
	if err != nil {
		// Same JSON line format as the rest of the log, so the supervisor's log
		// forwarding shows why the service will not start.
		standinlog.New(os.Stdout, slog.LevelInfo).Error("Invalid configuration", "error", err.Error())
		os.Exit(1)
	}
	cfg.PollInterval, cfg.Version = *poll, *version

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := workerstandin.Run(ctx, cfg); err != nil {
		os.Exit(1)
	}
}
