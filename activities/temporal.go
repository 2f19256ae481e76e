package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// Schedule is a Temporal Schedule that starts one workflow at a fixed interval, as
// socflow's instances schedule their health checks: overlap SKIP (a check still running
// makes the next one skip), a catch-up window of one interval (a server that was down
// runs one late check, not a burst).
type Schedule struct {
	// ID is the schedule's ID.
	ID string `json:"id"`
	// Every is the interval.
	Every time.Duration `json:"every"`
	// Workflow is the workflow type it starts, with ID (a timestamp is appended) and Arg.
	Workflow   string `json:"workflow"`
	WorkflowID string `json:"workflowId"`
	Arg        any    `json:"arg"`
	// TaskQueue is where the started workflows run.
	TaskQueue string `json:"taskQueue"`
	// Note is the schedule's note, shown by `temporal schedule describe`.
	Note string `json:"note,omitempty"`
	// SearchAttributes are keyword attributes set on every started workflow, by name.
	SearchAttributes map[string]string `json:"searchAttributes,omitempty"`
}

// EnsureSchedule creates the schedule, or sets the interval, action and note of the one
// of that ID (its pause state is left as the operator set it): idempotent. It reports
// whether it created it.
func EnsureSchedule(ctx context.Context, c client.Client, s Schedule) (bool, error) {
	if s.Every <= 0 {
		return false, temporal.NewNonRetryableApplicationError(fmt.Sprintf("schedule %s: every must be positive (got %s)", s.ID, s.Every), ErrTypeInvalidInput, nil)
	}
	var attrs []temporal.SearchAttributeUpdate
	for k, v := range s.SearchAttributes {
		attrs = append(attrs, temporal.NewSearchAttributeKeyKeyword(k).ValueSet(v))
	}
	action := &client.ScheduleWorkflowAction{ID: s.WorkflowID, Workflow: s.Workflow, Args: []any{s.Arg}, TaskQueue: s.TaskQueue,
		WorkflowExecutionTimeout: 10 * time.Minute, TypedSearchAttributes: temporal.NewSearchAttributes(attrs...)}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: s.Every}}}
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{ID: s.ID, Spec: spec, Action: action, Note: s.Note,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: max(s.Every, 10*time.Second)})
	if err == nil {
		return true, nil
	}
	var exists *serviceerror.WorkflowExecutionAlreadyStarted
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) && !errors.As(err, &exists) {
		return false, fmt.Errorf("cannot create schedule %s: %w", s.ID, err)
	}
	err = c.ScheduleClient().GetHandle(ctx, s.ID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			sc := in.Description.Schedule
			sc.Spec, sc.Action = &spec, action
			if sc.Policy != nil {
				sc.Policy.Overlap, sc.Policy.CatchupWindow = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, max(s.Every, 10*time.Second)
			}
			return &client.ScheduleUpdate{Schedule: &sc}, nil
		},
	})
	if err != nil {
		return false, fmt.Errorf("cannot update schedule %s: %w", s.ID, err)
	}
	return false, nil
}

// DeleteSchedule deletes the schedule; one already gone is not an error.
func DeleteSchedule(ctx context.Context, c client.Client, id string) error {
	err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx)
	var nf *serviceerror.NotFound
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("cannot delete schedule %s: %w", id, err)
	}
	return nil
}

// EnsureScheduleResult says whether the schedule was created.
type EnsureScheduleResult struct {
	// Created is false when the schedule existed and was updated.
	Created bool `json:"created"`
}

// EnsureInstanceSchedule creates or updates an instance's schedule (EnsureSchedule)
// through the worker's Temporal client.
func (a *Activities) EnsureInstanceSchedule(ctx context.Context, s Schedule) (EnsureScheduleResult, error) {
	if a.Temporal == nil {
		return EnsureScheduleResult{}, temporal.NewNonRetryableApplicationError("this worker has no Temporal client for schedules", ErrTypeBadConfig, nil)
	}
	created, err := EnsureSchedule(ctx, a.Temporal, s)
	return EnsureScheduleResult{Created: created}, err
}

// QueryWorkflowInput names a workflow and the query to ask it.
type QueryWorkflowInput struct {
	// WorkflowID is the workflow's ID (its running run is asked).
	WorkflowID string `json:"workflowId"`
	// Query is the query's name.
	Query string `json:"query"`
}

// QueryWorkflow asks a running workflow a query and returns its answer as JSON: a
// workflow cannot query another itself, and a query writes nothing to any history.
func (a *Activities) QueryWorkflow(ctx context.Context, in QueryWorkflowInput) (json.RawMessage, error) {
	if a.Temporal == nil {
		return nil, temporal.NewNonRetryableApplicationError("this worker has no Temporal client to query with", ErrTypeInvalidInput, nil)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	defer cancel()
	v, err := a.Temporal.QueryWorkflow(ctx, in.WorkflowID, "", in.Query)
	if err != nil {
		return nil, fmt.Errorf("cannot query %s of %s: %w", in.Query, in.WorkflowID, err)
	}
	var raw json.RawMessage
	if err := v.Get(&raw); err != nil {
		return nil, fmt.Errorf("cannot read the %s answer of %s: %w", in.Query, in.WorkflowID, err)
	}
	return raw, nil
}
