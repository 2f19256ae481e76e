package workflows

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ChangeLog is the part of an instance's state every app's entity workflow keeps: its
// status, the changes queued, applied and rejected, and its run count. An app's state
// embeds it (so its JSON fields sit where OpenCTIInstance's state always had them) and
// carries it whole over Continue-As-New.
type ChangeLog struct {
	// Status is the shared status model.
	Status Status `json:"status"`
	// LastReason is the latest reason something did not go as asked.
	LastReason string `json:"lastReason,omitempty"`
	// Results are the results of applied (or failed) changes by request ID, and
	// ResultOrder their IDs in order, oldest first (bounded).
	Results map[string]ChangeResult `json:"results,omitempty"`
	// ResultOrder lists Results' IDs, oldest first.
	ResultOrder []string `json:"resultOrder,omitempty"`
	// Queue holds accepted changes not applied yet, in arrival order.
	Queue []QueuedChange `json:"queue,omitempty"`
	// Recent are the latest outcomes, oldest first (bounded), for the status.
	Recent []ChangeOutcome `json:"recent,omitempty"`
	// Signals counts change signals, to name those sent without a request ID.
	Signals int `json:"signals,omitempty"`
	// Runs counts the runs of this instance's workflow (1 + Continue-As-News).
	Runs int `json:"runs,omitempty"`
}

// entity is the machinery every app's instance workflow shares: each change is both an
// Update (validated before anything is recorded) and its Signal twin (validated when
// taken in, a bad one reported in the status), queued once per request ID, applied one
// at a time by the app's main loop and recorded; health check requests wait on their
// own channel; Continue-As-New happens only when nothing is left unanswered.
type entity struct {
	// app names the app in the instance's metrics (set by announce).
	app    string
	log    *ChangeLog
	tr     tracker
	logger log.Logger
	// names are the app's change names, in the order signals delivered together are taken.
	names []string
	// signals are the change signals' channels, by change name. They are taken by the
	// main loop only (receiveSignals), never by a goroutine blocked on Receive: a value
	// handed to such a goroutine is invisible to the drain before Continue-As-New and
	// would be lost with the run.
	signals map[string]workflow.ReceiveChannel
	// health is CheckHealthSignal's channel, taken by the main loop only.
	health workflow.ReceiveChannel
	// continueAfter continues as new once the history holds this many events (0: when
	// the server suggests it).
	continueAfter int
	// check decodes a change and validates it against the spec the queue would leave.
	check func(name string, raw []byte) error
	// replyTo tells a change's sender its result when the request names one (nil: never).
	replyTo func(ctx workflow.Context, name string, raw []byte, res ChangeResult)
	// show publishes the app's status (the Web UI's details).
	show func(ctx workflow.Context)
}

// open readies the entity for this run of the instance's workflow: it counts the run,
// keys the status to the SocflowStatus search attribute and registers the changes'
// Update handlers and Signal channels.
func (e *entity) open(ctx workflow.Context, instance string) error {
	e.log.Runs++
	if e.log.Results == nil {
		e.log.Results = map[string]ChangeResult{}
	}
	e.logger = log.With(workflow.GetLogger(ctx), "instance", instance)
	e.tr = tracker{st: &e.log.Status, lastReason: &e.log.LastReason, keyed: true, upserted: e.log.Status.Kind, publish: e.show, logger: e.logger}
	return e.register(ctx)
}

// announce publishes the status and sets the instance's search attributes (instance,
// app, status), so the instance is findable however it was started.
func (e *entity) announce(ctx workflow.Context, instance, app string) error {
	e.app = app
	e.tr.gaugeApp, e.tr.gaugeInstance = app, instance
	recordInstanceStatus(ctx, app, instance, e.log.Status.Kind)
	e.show(ctx)
	return workflow.UpsertTypedSearchAttributes(ctx, SearchAttrInstance.ValueSet(instance), SearchAttrApp.ValueSet(app),
		SearchAttrStatus.ValueSet(string(e.log.Status.Kind)))
}

// register sets up the Update handlers of every change name with their validators, the
// Signal twins' channels and the health channel.
func (e *entity) register(ctx workflow.Context) error {
	e.signals = map[string]workflow.ReceiveChannel{}
	for _, name := range e.names {
		err := workflow.SetUpdateHandlerWithOptions(ctx, name,
			func(ctx workflow.Context, raw json.RawMessage) (ChangeResult, error) {
				return e.onUpdate(ctx, name, raw)
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, raw json.RawMessage) error {
				return e.check(name, raw)
			}})
		if err != nil {
			return fmt.Errorf("cannot register the %s update: %w", name, err)
		}
		e.signals[name] = workflow.GetSignalChannel(ctx, name)
	}
	e.health = workflow.GetSignalChannel(ctx, CheckHealthSignal)
	return nil
}

// busy reports work the main loop has not taken in or done: a change signal, a
// queued change or a health check request.
func (e *entity) busy() bool {
	return e.signalled() || len(e.log.Queue) > 0 || e.health.Len() > 0
}

// readyToContinue waits until every update handler has returned its result, so that
// Continue-As-New loses no change and leaves none unanswered; it reports false when
// new work arrived meanwhile, which the main loop takes first.
func (e *entity) readyToContinue(ctx workflow.Context) (bool, error) {
	err := workflow.Await(ctx, func() bool { return e.busy() || workflow.AllHandlersFinished(ctx) })
	if err != nil {
		return false, err
	}
	return !e.busy(), nil
}

// healthRequests takes in every health check request delivered so far.
func (e *entity) healthRequests() []CheckHealthRequest {
	var reqs []CheckHealthRequest
	for {
		var r CheckHealthRequest
		if !e.health.ReceiveAsync(&r) {
			return reqs
		}
		reqs = append(reqs, r)
	}
}

// receiveSignals takes in every change signal delivered so far: in arrival order
// for each name, names in the app's order (the SDK does not tell which of two
// signals of different names delivered in one workflow task came first).
func (e *entity) receiveSignals(ctx workflow.Context) {
	for _, name := range e.names {
		for {
			var raw json.RawMessage
			if !e.signals[name].ReceiveAsync(&raw) {
				break
			}
			e.onSignal(ctx, name, raw)
		}
	}
}

// signalled reports a change signal delivered and not taken in yet.
func (e *entity) signalled() bool {
	for _, name := range e.names {
		if e.signals[name].Len() > 0 {
			return true
		}
	}
	return false
}

// continueWanted reports whether the history should be continued as new: the server
// suggests it, or the test threshold of the input is reached.
func (e *entity) continueWanted(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() ||
		e.continueAfter > 0 && info.GetCurrentHistoryLength() >= e.continueAfter
}

// onUpdate queues a validated change (once per request ID) and returns its result
// when the main loop has applied it; a repeated request ID returns the first result.
func (e *entity) onUpdate(ctx workflow.Context, name string, raw json.RawMessage) (ChangeResult, error) {
	id := requestIDOf(raw)
	if id == "" {
		id = workflow.GetCurrentUpdateInfo(ctx).ID
	}
	if _, done := e.log.Results[id]; !done && !e.queued(id) {
		e.enqueue(ctx, QueuedChange{ID: id, Via: "update", Kind: name, Request: raw})
	}
	if err := workflow.Await(ctx, func() bool { _, done := e.log.Results[id]; return done }); err != nil {
		return ChangeResult{}, err
	}
	res := e.log.Results[id]
	if res.Error != "" {
		return res, temporal.NewNonRetryableApplicationError(res.Error, "ChangeFailed", nil)
	}
	return res, nil
}

// onSignal is the Signal twin of onUpdate: it decodes and validates the input itself
// (a signal cannot be rejected), reports a bad one in the status and the log, and
// queues a good one once per request ID.
func (e *entity) onSignal(ctx workflow.Context, name string, raw json.RawMessage) {
	e.log.Signals++
	id := requestIDOf(raw)
	if err := e.check(name, raw); err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", "; ")
		e.logger.Warn("change signal rejected", "change", name, "requestId", id, "error", msg)
		e.log.LastReason = name + " signal rejected: " + msg
		e.outcome(ChangeOutcome{RequestID: id, Kind: name, Via: "signal", State: "rejected", Summary: msg})
		e.countChange(ctx, name, "rejected")
		e.show(ctx)
		e.reply(ctx, name, raw, ChangeResult{RequestID: id, Kind: name, Error: msg})
		return
	}
	if id == "" {
		id = fmt.Sprintf("signal-%d", e.log.Signals)
	}
	if res, done := e.log.Results[id]; done || e.queued(id) {
		e.logger.Info("change signal repeats a request; ignored", "change", name, "requestId", id)
		if done {
			e.reply(ctx, name, raw, res)
		}
		return
	}
	e.enqueue(ctx, QueuedChange{ID: id, Via: "signal", Kind: name, Request: raw})
}

// reply tells a change's sender its result, if the app replies to any.
func (e *entity) reply(ctx workflow.Context, name string, raw []byte, res ChangeResult) {
	if e.replyTo != nil {
		e.replyTo(ctx, name, raw, res)
	}
}

func (e *entity) queued(id string) bool {
	for _, c := range e.log.Queue {
		if c.ID == id {
			return true
		}
	}
	return false
}

func (e *entity) enqueue(ctx workflow.Context, c QueuedChange) {
	e.log.Queue = append(e.log.Queue, c)
	e.logger.Info("change accepted", "requestId", c.ID, "via", c.Via, "pending", len(e.log.Queue))
	e.show(ctx)
}

// record keeps a change's result for deduplication (the oldest beyond keptResults are
// forgotten) and lists its outcome in the status.
func (e *entity) record(c QueuedChange, res ChangeResult) {
	e.log.Results[c.ID] = res
	e.log.ResultOrder = append(e.log.ResultOrder, c.ID)
	if n := len(e.log.ResultOrder) - keptResults; n > 0 {
		for _, id := range e.log.ResultOrder[:n] {
			delete(e.log.Results, id)
		}
		e.log.ResultOrder = e.log.ResultOrder[n:]
	}
	o := ChangeOutcome{RequestID: c.ID, Kind: res.Kind, Via: c.Via, State: "applied", Summary: res.describe()}
	if res.Error != "" {
		o.State, o.Summary = "failed", res.Summary+": "+res.Error
	}
	e.outcome(o)
}

// failed records a change that could not be applied and blocks the instance: the
// reason, then fix (what the operator sends next).
func (e *entity) failed(ctx workflow.Context, c QueuedChange, res ChangeResult, err error, fix string) {
	res.Error = operatorReason(err)
	e.log.LastReason = c.ID + ": " + res.Error
	e.logger.Error("change failed", "requestId", c.ID, "error", res.Error)
	e.record(c, res)
	e.countChange(ctx, c.kind(), "failed")
	e.tr.set(ctx, Status{Kind: StatusBlocked, Step: e.log.Status.Step, Message: fmt.Sprintf(
		"change %s (%s) failed: %s; %s", c.ID, res.Summary, res.Error, fix)})
}

// applied records an applied change and settles the status.
func (e *entity) applied(ctx workflow.Context, c QueuedChange, res ChangeResult, settled Status) {
	e.logger.Info("change applied", "requestId", c.ID, "result", res.describe())
	e.record(c, res)
	outcome := "applied"
	if res.Error != "" {
		outcome = "failed"
	}
	e.countChange(ctx, c.kind(), outcome)
	e.tr.set(ctx, settled)
}

// countChange counts a change's outcome in MetricChanges.
func (e *entity) countChange(ctx workflow.Context, kind, outcome string) {
	countMetric(ctx, MetricChanges, map[string]string{MetricTagApp: e.app, MetricTagKind: kind, MetricTagOutcome: outcome})
}

func (e *entity) outcome(o ChangeOutcome) {
	e.log.Recent = append(e.log.Recent, o)
	if n := len(e.log.Recent) - keptOutcomes; n > 0 {
		e.log.Recent = e.log.Recent[n:]
	}
}

// followChild waits for a child workflow that tells its progress (DeployProgressSignal):
// the entity's status shows the child's step, attempt and last error under label and
// step, and change signals sent meanwhile are taken in (validated, a bad one reported
// at once) and wait in the queue until the child has finished.
func (e *entity) followChild(ctx workflow.Context, child workflow.ChildWorkflowFuture, label, step string) {
	done := false
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(child, func(workflow.Future) { done = true })
	progress := workflow.GetSignalChannel(ctx, DeployProgressSignal)
	sel.AddReceive(progress, func(ch workflow.ReceiveChannel, _ bool) {
		var s Status
		ch.Receive(ctx, &s)
		if !done && s.Kind != StatusActive {
			s.Message = label + ": " + s.Message
			s.Step = step + "/" + s.Step
			e.tr.set(ctx, s)
		}
	})
	for _, name := range e.names {
		sel.AddReceive(e.signals[name], func(workflow.ReceiveChannel, bool) { e.receiveSignals(ctx) })
	}
	for !done {
		sel.Select(ctx)
	}
	var stale Status
	for progress.ReceiveAsync(&stale) {
		// Progress sent just before the child ended says nothing now.
	}
}

// publishLog adds the pending count and the latest outcomes to the Web UI's details.
func (e *entity) publishLog(lines []string) []string {
	lines = append(lines, fmt.Sprintf("pending changes: %d", len(e.log.Queue)))
	for _, o := range e.log.Recent {
		lines = append(lines, fmt.Sprintf("- %s `%s` (%s): %s", o.State, o.RequestID, o.Via, o.Summary))
	}
	return lines
}
