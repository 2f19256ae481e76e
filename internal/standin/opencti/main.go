// Command opencti is a test stand-in for the OpenCTI platform (not product): it
// reads OpenCTI's environment, checks the real dependencies in OpenCTI's order,
// takes the init lock through a forked child, initialises or migrates the real
// OpenSearch, and serves /health, GraphQL and metrics. Flags carry what a real
// image has baked in: the version, its migrations (-migrations, and
// -fail-migration to make one fail) and the timings, whose defaults are the real
// platform's (openctistandin.RealTimings); tests shorten them.
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
	if len(os.Args) > 1 && os.Args[1] == openctistandin.ChildLockArg {
		os.Exit(openctistandin.RunLockChild(os.Args[2:], os.Getenv, os.Stdin, os.NewFile(3, "lock-replies")))
	}
	version := flag.String("version", openctistandin.DefaultVersion, "OpenCTI version this binary pretends to be")
	python := flag.String("python", "python3", "Python interpreter that must run (APP__PYTHON_EXECUTION_VENV overrides)")
	migrations := flag.Int("migrations", openctistandin.DefaultMigrations, "how many migrations a version change runs (5 in the real 6.9.28 -> 7.260318.0)")
	failMigration := flag.String("fail-migration", "", "migration that fails when it runs: its 1-based position in the version change or part of its file name")
	hangMigration := flag.String("hang-migration", "", "migration at which the platform freezes (its lock child stopped, SIGTERM unhandled): its 1-based position or part of its file name")
	timings := openctistandin.AddFlags(flag.CommandLine)
	flag.Parse()

	cfg, err := openctistandin.ConfigFromEnv(os.Getenv)
	if err != nil {
		// Same JSON line format as the rest of the log, so the supervisor's log
		// forwarding shows why the service will not start.
		standinlog.New(os.Stdout, slog.LevelInfo).Error("Invalid configuration", "error", err.Error())
		os.Exit(1)
	}
	cfg.Version, cfg.Timings, cfg.Python = *version, *timings, *python
	cfg.Migrations, cfg.FailMigration, cfg.HangMigration = *migrations, *failMigration, *hangMigration

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err = openctistandin.Run(ctx, cfg)
	if err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() != nil) {
		// Run has logged the failure in OpenCTI's format (or printed it, before logging started).
		os.Exit(1)
	}
}
