// Command worker is a test stand-in for the OpenCTI worker (not product): it
// reads OPENCTI_URL, OPENCTI_TOKEN and WORKER_LOG_LEVEL, never exits while the
// platform is unreachable (it retries every -poll-interval, 60 s like the real
// worker), consumes the push queues the platform advertises, and exits 0 on SIGTERM.
// -version (default 6.9.28) is the OpenCTI release it is built for: against a
// platform of another major its queries fail validation at every poll.
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
	flag.Parse()

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
