// Command starter drives socflow from a terminal: `deploy -f instance.yaml` deploys an
// instance through its OpenCTIInstance workflow (or applies the difference to one that
// exists) and prints its progress live; `plan -f` previews that difference; `status
// NAME` shows where an instance stands; `config set`, `relate`, `unrelate`, `rotate` and
// `connector add|remove` change it (`connector list` lists its connectors); `input -f instance.yaml` prints the JSON input that tctl and temporal
// accept verbatim; `replay-check` replays the running workflows against this build
// before it is rolled out.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  starter deploy -f instance.yaml [-detach] [-health-every 1m]
                                              deploy the instance (workflow opencti/NAME, Update-With-Start;
                                              a new instance schedules its health checks, 0: none);
                                              on one that exists: preview, then apply the difference; print progress
  starter plan -f instance.yaml               preview what deploy -f would change on the running instance
  starter status NAME                         the instance's status, config, missing integrations, recent changes
                                              (and its deploy's phase and dependencies); exit 1 when blocked or failed
  starter config set NAME key=value...        SetConfig: workers, logLevel, publicURL, basePath, adminEmail
  starter relate NAME INTEGRATION key=value...  SetIntegration: an integration's section (or -f integrations.yaml)
  starter unrelate NAME INTEGRATION           RemoveIntegration: blocks the instance until it returns
  starter rotate NAME SECRET                  RotateSecret: e.g. opencti.adminToken (new value), integrations.redis.password (re-read)
  starter upgrade NAME VERSION [--check]      Upgrade: pre-flight, stop, migrate, verify, start (platformCommand=…,
                                              workerCommand=…, connector.NAME=… for the target's commands)
  starter connector add NAME -f connector.yaml  AddConnector: one entry of the spec's connectors (same name: replaced)
  starter connector remove NAME CONNECTOR     RemoveConnector: service stopped, registration deleted, user deactivated
                                              changes print the preview, send the Update (--signal: its Signal twin;
                                              --request-id ID: repeatable), print what changed and was restarted,
                                              exit 1 with the reason
  starter connector list NAME                 the connectors: state, service, registration, last ping
  starter health [--json]                     every instance's last health (ok, degraded, down), worst first
  starter health check NAME [--json]          run one HealthCheck now: dependencies, platform, workers, connectors,
                                              drift; what it healed; exit 1 unless ok
  starter health schedule NAME [--every 1m]   create or change the instance's health schedule (health-NAME)
  starter health pause|resume|trigger|delete NAME   manage that schedule
  starter input -f instance.yaml              the workflow input JSON for tctl / temporal
  starter wazuh deploy -f wazuh.yaml [-detach]   deploy a Wazuh server cluster (workflow wazuh-deploy-NAME), print progress
  starter wazuh input -f wazuh.yaml           DeployWazuh's input JSON for tctl / temporal
  starter wazuh status NAME                   the Wazuh deploy's phase, status and last reason; exit 1 when blocked
  starter wazuh health -f wazuh.yaml [--json] run one HealthCheck of the deployed instance; exit 1 unless ok
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
	case "plan":
		err = cmdPlan(ctx, os.Args[2:], os.Stdout)
	case "config":
		err = cmdConfig(ctx, os.Args[2:], os.Stdout)
	case "relate":
		err = cmdRelate(ctx, os.Args[2:], os.Stdout)
	case "unrelate":
		err = cmdUnrelate(ctx, os.Args[2:], os.Stdout)
	case "rotate":
		err = cmdRotate(ctx, os.Args[2:], os.Stdout)
	case "upgrade":
		err = cmdUpgrade(ctx, os.Args[2:], os.Stdout)
	case "connector":
		err = cmdConnector(ctx, os.Args[2:], os.Stdout)
	case "status":
		err = cmdStatus(ctx, os.Args[2:], os.Stdout)
	case "wazuh":
		err = cmdWazuh(ctx, os.Args[2:], os.Stdout)
	case "health":
		err = cmdHealth(ctx, os.Args[2:], os.Stdout)
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
