package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/internal/workerapp"
)

// replayCheckOptions selects the running workflows `starter replay-check` replays.
type replayCheckOptions struct {
	// TaskQueue is the queue the build is about to serve (default
	// workerapp.TaskQueueFromEnv()): its running workflows are the ones the new workers
	// take over.
	TaskQueue string
	// Query narrows the selection with a further visibility clause, e.g.
	// `SocflowInstance = "demo"` (default: none).
	Query string
}

// errWouldBreak is returned when at least one running workflow would not replay.
var errWouldBreak = errors.New("running workflows would break on this build: do not roll it out (guard the change with workflow.GetVersion; README, \"Changing a workflow safely\")")

func cmdReplayCheck(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("replay-check", flag.ContinueOnError)
	var o replayCheckOptions
	fs.StringVar(&o.TaskQueue, "task-queue", workerapp.TaskQueueFromEnv(), "task queue whose running workflows to check")
	fs.StringVar(&o.Query, "query", "", "extra visibility clause, e.g. 'SocflowInstance = \"demo\"'")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := workerapp.Dial(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	return replayCheck(ctx, c, out, o)
}

// replayCheck replays the history of every running workflow on the task queue against
// this build's workflow code, registered as its worker registers it, and prints one line
// per workflow: "ok" or "WOULD BREAK: reason". It returns errWouldBreak if any would
// break, so a rollout can be stopped before its workers stall running deploys.
func replayCheck(ctx context.Context, c client.Client, out io.Writer, o replayCheckOptions) error {
	if o.TaskQueue == "" {
		o.TaskQueue = workerapp.TaskQueueFromEnv()
	}
	replayer, err := workerapp.NewReplayer()
	if err != nil {
		return fmt.Errorf("cannot create the replayer: %w", err)
	}
	query := fmt.Sprintf("ExecutionStatus = 'Running' AND TaskQueue = %s", quote(o.TaskQueue))
	if o.Query != "" {
		query += " AND (" + o.Query + ")"
	}
	// The SDK logs a non-determinism at error level; the line printed below says it once.
	logger := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	checked, broken := 0, 0
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return fmt.Errorf("cannot list running workflows (%s): %w", query, err)
		}
		for _, wf := range resp.GetExecutions() {
			id, runID, typ := wf.GetExecution().GetWorkflowId(), wf.GetExecution().GetRunId(), wf.GetType().GetName()
			checked++
			verdict, err := replayOne(ctx, c, replayer, logger, id, runID, typ)
			if err != nil {
				broken++
				verdict = "WOULD BREAK: " + strings.Join(strings.Fields(err.Error()), " ")
			}
			fmt.Fprintf(out, "%s (%s, run %s): %s\n", id, typ, runID, verdict)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	fmt.Fprintf(out, "%d running workflow(s) on task queue %s checked, %d would break\n", checked, o.TaskQueue, broken)
	if broken > 0 {
		return errWouldBreak
	}
	return nil
}

// replayOne replays one running workflow: its verdict ("ok", with a note when there
// was little to replay), or why this build would break it.
func replayOne(ctx context.Context, c client.Client, replayer worker.WorkflowReplayer, logger log.Logger, id, runID, typ string) (string, error) {
	if !slices.Contains(workerapp.WorkflowTypes(), typ) {
		return "", fmt.Errorf("this build registers no workflow type %s (it registers %s)", typ, strings.Join(workerapp.WorkflowTypes(), ", "))
	}
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return "", fmt.Errorf("cannot fetch its history to check it: %w", err)
		}
		events = append(events, e)
	}
	if !slices.ContainsFunc(events, func(e *historypb.HistoryEvent) bool {
		return e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
	}) {
		return "ok (no workflow task completed yet: nothing to replay)", nil
	}
	err := replayer.ReplayWorkflowHistoryWithOptions(logger, &historypb.History{Events: events},
		worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id, RunID: runID}})
	if err != nil {
		return "", err
	}
	return "ok", nil
}

// quote makes s a visibility query string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
