// Command wazuh is a test stand-in for the Wazuh manager 4.11 (not product),
// installed as <home>/bin/wazuh-control: it is the control script and, started
// under a daemon's name, each of the manager's daemons. Timings come from the
// WAZUH_STANDIN_* environment (wazuhstandin.Timings), real figures by default.
package main

import (
	"os"

	"github.com/socflow/socflow/internal/standin/wazuhstandin"
)

func main() {
	os.Exit(wazuhstandin.Main(os.Args, os.Stdout, os.Stderr))
}
