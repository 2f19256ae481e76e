package openctistandin

import (
	"context"
	"fmt"

	graphql "github.com/graph-gophers/graphql-go"
)

// Works: the import jobs a connector opens (workAdd), announces bundles to
// (addExpectations) and closes (toProcessed). OpenCTI keeps them in the
// history index with their counters in Redis; the stand-in keeps everything in
// the document. Without a worker reporting expectations, a work with bundles
// stays in progress, as on a platform whose workers are down.

// workDoc is a stored work.
type workDoc struct {
	InternalID    string   `json:"internal_id"`
	EntityType    string   `json:"entity_type"`
	Name          string   `json:"name"`
	ConnectorID   string   `json:"connector_id"`
	UserID        string   `json:"user_id"`
	Status        string   `json:"status"`
	Timestamp     string   `json:"timestamp"`
	ReceivedTime  *string  `json:"received_time"`
	ProcessedTime *string  `json:"processed_time"`
	CompletedTime *string  `json:"completed_time"`
	Expected      int32    `json:"import_expected_number"`
	Processed     int32    `json:"import_processed_number"`
	Messages      []string `json:"messages"`
	Errors        []string `json:"errors"`
	DraftContext  *string  `json:"draft_context"`
	UpdatedAt     string   `json:"updated_at"`
}

// WorkAdd opens a work for a connector (@auth CONNECTORAPI); its id is
// OpenCTI's "work_<connector id>_<timestamp>".
func (q *queryResolver) WorkAdd(ctx context.Context, args struct {
	ConnectorID  string
	FriendlyName *string
}) (*workResolver, error) {
	u, err := requireCapability(ctx, capConnectorAPI)
	if err != nil {
		return nil, err
	}
	st := q.st
	st.mu.Lock()
	defer st.mu.Unlock()
	// OpenCTI reads a missing connector's id: a TypeError reaches the client.
	c, err := st.loadConnector(ctx, args.ConnectorID, errInternal("Cannot read properties of undefined (reading 'internal_id')"))
	if err != nil {
		return nil, err
	}
	now := nowISO()
	name := ""
	if args.FriendlyName != nil {
		name = *args.FriendlyName
	}
	w := workDoc{InternalID: fmt.Sprintf("work_%s_%s", c.InternalID, now), EntityType: entityWork, Name: name,
		ConnectorID: c.InternalID, UserID: u.doc.InternalID, Status: "wait", Timestamp: now, UpdatedAt: now}
	if err := st.objects.put(ctx, entityWork, w.InternalID, w); err != nil {
		return nil, errDatabase(err)
	}
	return &workResolver{st: st, d: w}, nil
}

// WorkEdit is workEdit(id) (@auth CONNECTORAPI).
func (q *queryResolver) WorkEdit(ctx context.Context, args struct{ ID graphql.ID }) (*workEditResolver, error) {
	if _, err := requireCapability(ctx, capConnectorAPI); err != nil {
		return nil, err
	}
	return &workEditResolver{st: q.st, id: string(args.ID)}, nil
}

type workEditResolver struct {
	st *apiState
	id string
}

// edit loads the work, applies fn and stores it; a work that is gone is "no
// longer alive", the error pycti recognises.
func (e *workEditResolver) edit(ctx context.Context, fn func(w *workDoc)) (*graphql.ID, error) {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	var w workDoc
	found, err := e.st.objects.get(ctx, entityWork, e.id, &w)
	if err != nil {
		return nil, errDatabase(err)
	}
	if !found {
		return nil, errWorkNotAlive()
	}
	fn(&w)
	if w.ProcessedTime != nil && w.Processed >= w.Expected && w.Status != "complete" {
		w.Status, w.CompletedTime = "complete", ptr(nowISO())
	}
	w.UpdatedAt = nowISO()
	if err := e.st.objects.put(ctx, entityWork, w.InternalID, w); err != nil {
		return nil, errDatabase(err)
	}
	id := graphql.ID(w.InternalID)
	return &id, nil
}

// ToReceived marks the work received by the connector.
func (e *workEditResolver) ToReceived(ctx context.Context, args struct{ Message *string }) (*graphql.ID, error) {
	return e.edit(ctx, func(w *workDoc) {
		w.Status, w.ReceivedTime = "progress", ptr(nowISO())
		if args.Message != nil {
			w.Messages = append(w.Messages, *args.Message)
		}
	})
}

// ToProcessed marks the connector's side done; the work completes once every
// expected bundle was processed.
func (e *workEditResolver) ToProcessed(ctx context.Context, args struct {
	Message *string
	InError *bool
}) (*graphql.ID, error) {
	return e.edit(ctx, func(w *workDoc) {
		if w.Status == "wait" {
			w.Status = "progress"
		}
		w.ProcessedTime = ptr(nowISO())
		if args.Message != nil {
			if isTrue(args.InError) {
				w.Errors = append(w.Errors, *args.Message)
			} else {
				w.Messages = append(w.Messages, *args.Message)
			}
		}
	})
}

// Ping keeps the work alive.
func (e *workEditResolver) Ping(ctx context.Context) (*graphql.ID, error) {
	return e.edit(ctx, func(*workDoc) {})
}

// workErrorInput is WorkErrorInput.
type workErrorInput struct {
	Error  *string
	Source *string
}

// ReportExpectation is a worker reporting one processed bundle.
func (e *workEditResolver) ReportExpectation(ctx context.Context, args struct{ Error *workErrorInput }) (*graphql.ID, error) {
	return e.edit(ctx, func(w *workDoc) {
		w.Processed++
		if args.Error != nil && args.Error.Error != nil {
			w.Errors = append(w.Errors, *args.Error.Error)
		}
	})
}

// AddExpectations announces bundles the connector is about to send.
func (e *workEditResolver) AddExpectations(ctx context.Context, args struct{ Expectations *int32 }) (*graphql.ID, error) {
	return e.edit(ctx, func(w *workDoc) {
		if w.Status == "wait" {
			w.Status = "progress"
		}
		if args.Expectations != nil {
			w.Expected += *args.Expectations
		}
	})
}

// AddDraftContext ties the work to a draft.
func (e *workEditResolver) AddDraftContext(ctx context.Context, args struct{ DraftContext *string }) (*graphql.ID, error) {
	return e.edit(ctx, func(w *workDoc) { w.DraftContext = args.DraftContext })
}

type workResolver struct {
	st *apiState
	d  workDoc
}

func (w *workResolver) ID() graphql.ID           { return graphql.ID(w.d.InternalID) }
func (w *workResolver) Name() *string            { return &w.d.Name }
func (w *workResolver) Timestamp() dateTime      { return dateTime(w.d.Timestamp) }
func (w *workResolver) Status() string           { return w.d.Status }
func (w *workResolver) ReceivedTime() *dateTime  { return (*dateTime)(w.d.ReceivedTime) }
func (w *workResolver) ProcessedTime() *dateTime { return (*dateTime)(w.d.ProcessedTime) }
func (w *workResolver) CompletedTime() *dateTime { return (*dateTime)(w.d.CompletedTime) }

// Connector is the work's connector, null when it is gone.
func (w *workResolver) Connector(ctx context.Context) (*connectorResolver, error) {
	var c connectorDoc
	found, err := w.st.objects.get(ctx, entityConnector, w.d.ConnectorID, &c)
	if err != nil || !found {
		return nil, err
	}
	return &connectorResolver{st: w.st, d: c}, nil
}
