// Command wazuh-exporter is a test stand-in for the Wazuh server rock's Prometheus
// exporter (not product): configured by the same environment, serving the same
// metrics and failing the same ways; see package wazuhexporter.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/socflow/socflow/internal/standin/wazuhexporter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := wazuhexporter.Main(ctx, os.LookupEnv, os.Stderr)
	stop()
	os.Exit(code)
}
