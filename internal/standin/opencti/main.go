// Command opencti is a test stand-in for the OpenCTI platform (not product): it
// reads OpenCTI's environment, checks the real dependencies, initialises or
// migrates, and serves /health and a slice of GraphQL. The version and the
// first-boot timing are flags because a real image has them baked in.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/socflow/socflow/internal/standin/openctistandin"
	"github.com/socflow/socflow/internal/standin/standinlog"
)

func main() {
	version := flag.String("version", openctistandin.DefaultVersion, "OpenCTI version this binary pretends to be")
	initDelay := flag.Duration("init-delay", 0, "least duration of a first boot")
	indexDelay := flag.Duration("index-delay", 0, "pause between index creations on first boot")
	lockWait := flag.Duration("lock-wait", 0, "how long to wait for platform_init_lock (0: 30s)")
	flag.Parse()

	cfg, err := openctistandin.ConfigFromEnv(os.Getenv)
	if err != nil {
		// Same JSON line format as the rest of the log, so the supervisor's log
		// forwarding shows why the service will not start.
		standinlog.New(os.Stdout, slog.LevelInfo).Error("Invalid configuration", "error", err.Error())
		os.Exit(1)
	}
	cfg.Version, cfg.InitDelay, cfg.IndexDelay, cfg.LockWait = *version, *initDelay, *indexDelay, *lockWait

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err = openctistandin.Run(ctx, cfg)
	if err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() != nil) {
		// Run has logged the failure in OpenCTI's format.
		os.Exit(1)
	}
}
