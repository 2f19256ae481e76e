// Command worker runs socflow's Temporal worker: it polls the socflow task queue and runs
// the deploy workflows and their activities. Connection settings come from the standard
// Temporal environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*, profiles).
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/client"

	"github.com/socflow/socflow/internal/workerapp"
)

func main() {
	metricsAddr := flag.String("metrics", envOr("SOCFLOW_METRICS_ADDR", "127.0.0.1:9464"), "address of the Prometheus /metrics endpoint for SDK metrics (empty: off)")
	healthAddr := flag.String("health", os.Getenv("SOCFLOW_HEALTH_ADDR"), "address of the /healthz and /readyz probes, e.g. :8081 in a pod (empty: off)")
	flag.Parse()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger, *metricsAddr, *healthAddr); err != nil {
		logger.Error("worker failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger, metricsAddr, healthAddr string) error {
	cfg := workerapp.FromEnv()
	cfg.Logger = logger
	if healthAddr != "" {
		// Before Dial, so the probes answer (not ready) while the connection is made.
		cfg.Health = &workerapp.Health{}
		closeHealth, err := workerapp.ServeHealth(healthAddr, cfg.Health, logger)
		if err != nil {
			return err
		}
		defer closeHealth()
		logger.Info("serving health probes", "url", "http://"+healthAddr+"/readyz")
	}
	var handler client.MetricsHandler // nil: no metrics
	if metricsAddr != "" {
		h, closer, err := workerapp.PrometheusMetrics(metricsAddr, logger)
		if err != nil {
			return err
		}
		handler = h
		defer closer()
		logger.Info("serving SDK metrics", "url", "http://"+metricsAddr+"/metrics")
	}
	c, err := workerapp.Dial(ctx, logger, handler)
	if err != nil {
		return err
	}
	defer c.Close()
	return workerapp.Run(ctx, cfg, c)
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}
