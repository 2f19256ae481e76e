// Command worker is a test stand-in for the OpenCTI worker (not product): it
// reads OPENCTI_URL, OPENCTI_TOKEN and WORKER_LOG_LEVEL, exits 1 when the
// platform is unreachable or refuses the token, and exits 0 on SIGTERM.
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
	poll := flag.Duration("poll-interval", 0, "pause between polls of the platform (0: 5s)")
	maxFailures := flag.Int("max-failures", 0, "consecutive failed polls before exiting (0: 3)")
	flag.Parse()

	cfg, err := workerstandin.ConfigFromEnv(os.Getenv)
	if err != nil {
		// Same JSON line format as the rest of the log, so the supervisor's log
		// forwarding shows why the service will not start.
		standinlog.New(os.Stdout, slog.LevelInfo).Error("Invalid configuration", "error", err.Error())
		os.Exit(1)
	}
	cfg.PollInterval, cfg.MaxFailures = *poll, *maxFailures

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := workerstandin.Run(ctx, cfg); err != nil {
		// Run has logged the failure.
		os.Exit(1)
	}
}
