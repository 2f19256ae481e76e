// Command starter drives socflow from a terminal: `deploy -f instance.yaml` starts (or
// attaches to) an instance's deploy and prints its progress live; `status NAME` shows
// where a deploy stands; `config set NAME key=value…` changes an instance's config
// through its OpenCTIInstance workflow; `input -f instance.yaml` prints the JSON input
// that tctl and temporal accept verbatim; `replay-check` replays the running workflows against this
// build before it is rolled out.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  starter deploy -f instance.yaml [-detach]   start or attach to the deploy, print progress
  starter status NAME                         phase, dependencies, last reason of NAME's deploy
  starter config set NAME key=value... [--signal] [--request-id ID]
                                              change an instance (workflow opencti/NAME): workers, logLevel;
                                              sends the SetConfig Update (--signal: its Signal twin),
                                              prints what changed and was restarted, exit 1 with the reason
  starter input -f instance.yaml              the workflow input JSON for tctl / temporal
  starter replay-check [-task-queue Q] [-query CLAUSE]
                                              before a rollout: replay every running workflow on
                                              the queue against this build; exit 1 if any would break
  starter codec-server [-addr 127.0.0.1:8089] [-origins URL,...]
                                              serve /encode and /decode for the Web UI and
                                              temporal --codec-endpoint (SOCFLOW_CODEC_KEYS, SOCFLOW_CODEC_TOKEN)
Temporal settings come from TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_* (envconfig);
payloads are encrypted with the key ring in SOCFLOW_CODEC_KEYS.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "deploy":
		err = cmdDeploy(ctx, os.Args[2:], os.Stdout)
	case "config":
		err = cmdConfig(ctx, os.Args[2:], os.Stdout)
	case "status":
		err = cmdStatus(ctx, os.Args[2:], os.Stdout)
	case "input":
		err = cmdInput(os.Args[2:], os.Stdout)
	case "replay-check":
		err = cmdReplayCheck(ctx, os.Args[2:], os.Stdout)
	case "codec-server":
		err = cmdCodecServer(ctx, os.Args[2:], os.Stdout)
	case "-h", "--help", "help":
		fmt.Println(usage)
		return
	default:
		err = fmt.Errorf("unknown command %q\n%s", os.Args[1], usage)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
