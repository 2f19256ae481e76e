package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/opencti"
)

// Timeouts and retries, one set per kind of side effect, each with its reason.
var (
	// quickOptions: local secret store and S3 bucket calls are short; retry transient
	// faults a few minutes, then fail with the reason.
	quickOptions = workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 5 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 20 * time.Second},
	}

	// probeOptions: a probe polls for activities.DefaultProbeWindow and heartbeats on
	// every failed attempt; the heartbeat timeout lets a crashed worker's probe be
	// retried within seconds instead of at StartToClose when no worker restarts on its
	// journal (one that does fails it at once: package inflight).
	probeOptions = workflow.ActivityOptions{
		StartToCloseTimeout: activities.DefaultProbeWindow + 30*time.Second,
		HeartbeatTimeout:    20 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second},
	}

	// pebbleOptions: one Pebble call is bounded by activities.PebbleCallTimeout and a
	// start waits for its change; a Pebble that stays unreachable for 10 minutes is
	// reported rather than waited on forever.
	pebbleOptions = workflow.ActivityOptions{
		StartToCloseTimeout:    2*activities.PebbleCallTimeout + 10*time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	}

	// restartOptions: RestartPebbleServices waits for Pebble's restart change: SIGTERM,
	// SIGKILL after the kill-delay (the platform's 30 s), a start Pebble confirms after
	// a second, so an attempt gets the kill-delay plus two minutes. It heartbeats the
	// change ID every PebbleCallTimeout/3, so a lost worker is noticed within the
	// heartbeat timeout, and the server's retry of the same activity reads the change
	// ID back and waits for that change instead of restarting a second time; that is
	// why it runs with server retries, not through tracker.runStep.
	restartOptions = workflow.ActivityOptions{
		StartToCloseTimeout:    opencti.PlatformKillDelay + 2*time.Minute,
		HeartbeatTimeout:       activities.PebbleCallTimeout,
		ScheduleToCloseTimeout: 15 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	}

	// graphqlOptions: GraphQL calls answer in milliseconds once the platform is healthy.
	graphqlOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 6},
	}
)

// How long the deploy waits before it gives up with the last reason it recorded.
const (
	// DependencyWaitLimit bounds the wait for OpenSearch, RabbitMQ, Redis and S3.
	DependencyWaitLimit = 30 * time.Minute
	// PlatformHealthLimit bounds the wait for the platform: a first boot takes minutes,
	// a migration of a large platform hours; past this a human should look.
	PlatformHealthLimit = 6 * time.Hour
)
