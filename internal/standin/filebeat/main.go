// Command filebeat is a test stand-in for filebeat as Wazuh ships it (not product):
// it runs with filebeat's command line and filebeat.yml, tails the Wazuh alerts file
// and ships it to the indexer with filebeat's behaviour on failure; see package
// filebeatstandin. Timings default to the real ones; FILEBEAT_STANDIN_* environment
// variables shorten them for tests, since Pebble starts it with a fixed command.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/socflow/socflow/internal/standin/filebeatstandin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := filebeatstandin.Main(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
