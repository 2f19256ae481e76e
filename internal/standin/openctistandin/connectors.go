package openctistandin

import (
	"context"
	"strings"
	"time"

	graphql "github.com/graph-gophers/graphql-go"
)

// Connectors: registration, pings, listing and deletion as OpenCTI 6.9 does
// them. A connector is an internal object whose id is the CONNECTOR_ID the
// connector registers with; registration (and every ping) declares its
// listen_<id> and push_<id> queues in RabbitMQ, deletion removes them.

// connectorQueues is what the API needs from the broker for connectors.
type connectorQueues interface {
	// register declares the exchanges and the connector's two queues with their bindings.
	register(ctx context.Context, id, name, connectorType string, scope []string) error
	// unregister deletes the connector's two queues.
	unregister(ctx context.Context, id string) error
	// purge empties the connector's two queues (resetStateConnector).
	purge(ctx context.Context, id string) error
	// details are the push queue's message count and bytes, 0 when unknown.
	details(ctx context.Context, id string) (messages, bytes float64)
}

// connectorAliveWindow is how recent a registration or ping must be for a
// connector to be active (OpenCTI: updated within the last 5 minutes).
const connectorAliveWindow = 5 * time.Minute

// connectorDoc is a stored connector.
type connectorDoc struct {
	InternalID           string             `json:"internal_id"`
	StandardID           string             `json:"standard_id"`
	EntityType           string             `json:"entity_type"`
	ParentTypes          []string           `json:"parent_types"`
	Name                 string             `json:"name"`
	ConnectorType        string             `json:"connector_type"`
	ConnectorScope       *string            `json:"connector_scope"`
	Auto                 *bool              `json:"auto"`
	AutoUpdate           *bool              `json:"auto_update"`
	OnlyContextual       *bool              `json:"only_contextual"`
	PlaybookCompatible   bool               `json:"playbook_compatible"`
	EnrichmentResolution *string            `json:"enrichment_resolution"`
	ListenCallbackURI    *string            `json:"listen_callback_uri"`
	ConnectorUserID      string             `json:"connector_user_id"`
	ConnectorState       *string            `json:"connector_state"`
	ConnectorStateReset  bool               `json:"connector_state_reset"`
	ConnectorInfo        *connectorInfoData `json:"connector_info"`
	BuiltIn              bool               `json:"built_in"`
	Active               bool               `json:"active"`
	CreatedAt            string             `json:"created_at"`
	UpdatedAt            string             `json:"updated_at"`
	// internal marks the platform's own queues (connectorsForWorker only).
	internal bool
}

// connectorInfoData is ConnectorInfoInput as stored.
type connectorInfoData struct {
	RunAndTerminate   *bool    `json:"run_and_terminate"`
	Buffering         *bool    `json:"buffering"`
	QueueThreshold    *float64 `json:"queue_threshold"`
	QueueMessagesSize *float64 `json:"queue_messages_size"`
	NextRunDatetime   *string  `json:"next_run_datetime"`
	LastRunDatetime   *string  `json:"last_run_datetime"`
}

// builtInConnectors are the platform's own connectors that connectors lists
// beside the registered ones (never in connectorsForWorker).
var builtInConnectors = []connectorDoc{
	{InternalID: "d336676c-4ee5-4257-96ff-b2a86688d4af", Name: "ImportCsv", ConnectorType: "INTERNAL_IMPORT_FILE",
		ConnectorScope: ptr("text/csv"), Auto: ptr(false), BuiltIn: true, Active: true},
	{InternalID: "c194e700-afb6-4c4e-ad1b-d4a00590e735", Name: "[DRAFT] Draft validation", ConnectorType: "INTERNAL_IMPORT_FILE",
		ConnectorScope: ptr("text/json"), Auto: ptr(false), BuiltIn: true, Active: true},
}

func ptr[T any](v T) *T { return &v }

// registerConnectorInput is RegisterConnectorInput as pycti sends it.
type registerConnectorInput struct {
	ID                   graphql.ID
	Name                 string
	Type                 string
	Scope                *[]*string
	Auto                 *bool
	AutoUpdate           *bool
	EnrichmentResolution *string
	OnlyContextual       *bool
	PlaybookCompatible   *bool
	ListenCallbackURI    *string
}

// RegisterConnector is @auth(for: [CONNECTORAPI]): queues first (so a broker
// that refuses fails the registration), then the connector is created, or
// updated when the id is known; its user becomes the caller.
func (q *queryResolver) RegisterConnector(ctx context.Context, args struct {
	Input *registerConnectorInput
}) (*connectorResolver, error) {
	u, err := requireCapability(ctx, capConnectorAPI)
	if err != nil {
		return nil, err
	}
	if args.Input == nil {
		return nil, errFunctional("Missing connector registration input", nil)
	}
	in := args.Input
	scope := values(in.Scope)
	st := q.st
	st.mu.Lock()
	defer st.mu.Unlock()
	id := string(in.ID)
	var c connectorDoc
	found, err := st.objects.get(ctx, entityConnector, id, &c)
	if err != nil {
		return nil, errDatabase(err)
	}
	if err := st.queues.register(ctx, id, in.Name, in.Type, scope); err != nil {
		return nil, errDatabase(err)
	}
	now := nowISO()
	if !found {
		c = connectorDoc{InternalID: id, StandardID: standardID("connector", id), EntityType: entityConnector,
			ParentTypes: internalObjectParentTypes, CreatedAt: now}
	}
	c.Name, c.ConnectorType, c.ConnectorScope = in.Name, in.Type, nil
	if len(scope) > 0 {
		c.ConnectorScope = ptr(strings.Join(scope, ","))
	}
	c.Auto, c.AutoUpdate, c.OnlyContextual, c.EnrichmentResolution = in.Auto, in.AutoUpdate, in.OnlyContextual, in.EnrichmentResolution
	c.PlaybookCompatible = isTrue(in.PlaybookCompatible)
	c.ListenCallbackURI, c.ConnectorUserID, c.BuiltIn, c.UpdatedAt = in.ListenCallbackURI, u.doc.InternalID, false, now
	if err := st.objects.put(ctx, entityConnector, id, c); err != nil {
		return nil, errDatabase(err)
	}
	return &connectorResolver{st: st, d: c}, nil
}

// connectorInfoInput is ConnectorInfoInput.
type connectorInfoInput struct {
	RunAndTerminate   *bool
	Buffering         *bool
	QueueThreshold    *float64
	QueueMessagesSize *float64
	NextRunDatetime   *dateTime
	LastRunDatetime   *dateTime
}

// PingConnector is @auth(for: [CONNECTORAPI]): the queues are declared again
// (a broker that lost them gets them back), then updated_at and the state move
// — unless a state reset is pending, which the ping only acknowledges.
func (q *queryResolver) PingConnector(ctx context.Context, args struct {
	ID            graphql.ID
	State         *string
	ConnectorInfo *connectorInfoInput
}) (*connectorResolver, error) {
	if _, err := requireCapability(ctx, capConnectorAPI); err != nil {
		return nil, err
	}
	st := q.st
	st.mu.Lock()
	defer st.mu.Unlock()
	id := string(args.ID)
	c, err := st.loadConnector(ctx, id, errFunctional("No connector found with the specified ID", map[string]any{"id": id}))
	if err != nil {
		return nil, err
	}
	if err := st.queues.register(ctx, id, c.Name, c.ConnectorType, c.scopes()); err != nil {
		return nil, errDatabase(err)
	}
	if c.ConnectorStateReset {
		c.ConnectorStateReset = false
	} else {
		c.UpdatedAt, c.ConnectorState = nowISO(), args.State
	}
	if in := args.ConnectorInfo; in != nil {
		c.ConnectorInfo = &connectorInfoData{RunAndTerminate: in.RunAndTerminate, Buffering: in.Buffering,
			QueueThreshold: in.QueueThreshold, QueueMessagesSize: in.QueueMessagesSize,
			NextRunDatetime: (*string)(in.NextRunDatetime), LastRunDatetime: (*string)(in.LastRunDatetime)}
	}
	if err := st.objects.put(ctx, entityConnector, id, c); err != nil {
		return nil, errDatabase(err)
	}
	return &connectorResolver{st: st, d: c}, nil
}

// ResetStateConnector empties the state and the queues; the next ping only
// acknowledges the reset, so the connector picks up the empty state.
func (q *queryResolver) ResetStateConnector(ctx context.Context, args struct{ ID graphql.ID }) (*connectorResolver, error) {
	if _, err := requireCapability(ctx, capModulesManage); err != nil {
		return nil, err
	}
	st := q.st
	st.mu.Lock()
	defer st.mu.Unlock()
	id := string(args.ID)
	c, err := st.loadConnector(ctx, id, errFunctional("Cant find element to update", map[string]any{"id": id, "type": entityConnector}))
	if err != nil {
		return nil, err
	}
	c.ConnectorState, c.ConnectorStateReset = ptr(""), true
	if err := st.objects.put(ctx, entityConnector, id, c); err != nil {
		return nil, errDatabase(err)
	}
	if err := st.queues.purge(ctx, id); err != nil {
		return nil, errDatabase(err)
	}
	return &connectorResolver{st: st, d: c}, nil
}

// DeleteConnector is OpenCTI's connectorDelete: the connector's works go
// first (an unknown connector fails there with ALREADY_DELETED_ERROR), then
// its queues, then the connector.
func (q *queryResolver) DeleteConnector(ctx context.Context, args struct{ ID graphql.ID }) (*graphql.ID, error) {
	if _, err := requireCapability(ctx, capModulesManage); err != nil {
		return nil, err
	}
	st := q.st
	st.mu.Lock()
	defer st.mu.Unlock()
	id := string(args.ID)
	if _, err := st.loadConnector(ctx, id, errAlreadyDeleted(map[string]any{"connectorId": id})); err != nil {
		return nil, err
	}
	works, err := listAs[workDoc](ctx, st.objects, entityWork)
	if err != nil {
		return nil, errDatabase(err)
	}
	for _, w := range works {
		if w.ConnectorID == id {
			if _, err := st.objects.remove(ctx, entityWork, w.InternalID); err != nil {
				return nil, errDatabase(err)
			}
		}
	}
	if err := st.queues.unregister(ctx, id); err != nil {
		return nil, errDatabase(err)
	}
	if _, err := st.objects.remove(ctx, entityConnector, id); err != nil {
		return nil, errDatabase(err)
	}
	out := graphql.ID(id)
	return &out, nil
}

// loadConnector reads connector id for a mutation, the caller holding st.mu;
// missing is the error that mutation answers when there is none, since OpenCTI's
// differ from one mutation to the next and pycti and socflow match on them.
func (st *apiState) loadConnector(ctx context.Context, id string, missing error) (connectorDoc, error) {
	var c connectorDoc
	found, err := st.objects.get(ctx, entityConnector, id, &c)
	if err != nil {
		return c, errDatabase(err)
	}
	if !found {
		return c, missing
	}
	return c, nil
}

// Connectors lists the registered connectors and the built-in ones.
func (q *queryResolver) Connectors(ctx context.Context) (*[]*connectorResolver, error) {
	if _, err := requireCapability(ctx, capModules, capConnectorAPI); err != nil {
		return nil, err
	}
	cs, err := listAs[connectorDoc](ctx, q.st.objects, entityConnector)
	if err != nil {
		return nil, errDatabase(err)
	}
	out := make([]*connectorResolver, 0, len(cs)+len(builtInConnectors))
	for _, c := range append(cs, builtInConnectors...) {
		out = append(out, &connectorResolver{st: q.st, d: c})
	}
	return &out, nil
}

// Connector is connector(id): null when there is none.
func (q *queryResolver) Connector(ctx context.Context, args struct{ ID string }) (*connectorResolver, error) {
	if _, err := requireCapability(ctx, capModules, capConnectorAPI); err != nil {
		return nil, err
	}
	for _, b := range builtInConnectors {
		if b.InternalID == args.ID {
			return &connectorResolver{st: q.st, d: b}, nil
		}
	}
	var c connectorDoc
	found, err := q.st.objects.get(ctx, entityConnector, args.ID, &c)
	if err != nil {
		return nil, errDatabase(err)
	}
	if !found {
		return nil, nil
	}
	return &connectorResolver{st: q.st, d: c}, nil
}

// ConnectorsForWorker is what a worker polls (@auth CONNECTORAPI): the
// platform's internal queues and every registered connector, each with the
// RabbitMQ connection the platform advertises (host and credentials as
// configured, so they must resolve from the workers) and its queues.
func (q *queryResolver) ConnectorsForWorker(ctx context.Context) (*[]*connectorResolver, error) {
	if _, err := requireCapability(ctx, capConnectorAPI); err != nil {
		return nil, err
	}
	var out []*connectorResolver
	for _, iq := range internalQueues() {
		out = append(out, &connectorResolver{st: q.st, d: connectorDoc{InternalID: iq.id, Name: iq.name,
			ConnectorType: "INTERNAL", ConnectorScope: ptr(iq.scope), Active: true, internal: true}})
	}
	cs, err := listAs[connectorDoc](ctx, q.st.objects, entityConnector)
	if err != nil {
		return nil, errDatabase(err)
	}
	for _, c := range cs {
		out = append(out, &connectorResolver{st: q.st, d: c})
	}
	return &out, nil
}

// scopes splits the stored scope as OpenCTI does.
func (c connectorDoc) scopes() []string {
	if c.ConnectorScope == nil || *c.ConnectorScope == "" {
		return []string{}
	}
	return strings.Split(*c.ConnectorScope, ",")
}

type connectorResolver struct {
	st *apiState
	d  connectorDoc
}

func (c *connectorResolver) ID() graphql.ID                { return graphql.ID(c.d.InternalID) }
func (c *connectorResolver) Name() string                  { return c.d.Name }
func (c *connectorResolver) Auto() *bool                   { return c.d.Auto }
func (c *connectorResolver) AutoUpdate() *bool             { return c.d.AutoUpdate }
func (c *connectorResolver) OnlyContextual() *bool         { return c.d.OnlyContextual }
func (c *connectorResolver) PlaybookCompatible() *bool     { return &c.d.PlaybookCompatible }
func (c *connectorResolver) EnrichmentResolution() *string { return c.d.EnrichmentResolution }
func (c *connectorResolver) ConnectorType() *string        { return &c.d.ConnectorType }
func (c *connectorResolver) ConnectorState() *string       { return c.d.ConnectorState }
func (c *connectorResolver) ConnectorPriorityGroup() *string {
	return nil
}
func (c *connectorResolver) BuiltIn() *bool           { return &c.d.BuiltIn }
func (c *connectorResolver) CreatedAt() *dateTime     { return optDate(c.d.CreatedAt) }
func (c *connectorResolver) UpdatedAt() *dateTime     { return optDate(c.d.UpdatedAt) }
func (c *connectorResolver) Config() *connectorConfig { return &connectorConfig{c} }

// ConnectorScope is the stored comma-joined scope as a list.
func (c *connectorResolver) ConnectorScope() *[]string {
	s := c.d.scopes()
	return &s
}

// Active is OpenCTI's completeConnector: a built-in connector's configured
// state, else whether it registered or pinged within the last 5 minutes.
func (c *connectorResolver) Active() *bool {
	if c.d.BuiltIn || c.d.internal {
		return &c.d.Active
	}
	t, err := time.Parse(time.RFC3339Nano, c.d.UpdatedAt)
	alive := err == nil && time.Since(t) < connectorAliveWindow
	return &alive
}

// ConnectorUserID is the user the connector registered with.
func (c *connectorResolver) ConnectorUserID() *graphql.ID {
	if c.d.ConnectorUserID == "" {
		return nil
	}
	id := graphql.ID(c.d.ConnectorUserID)
	return &id
}

// ConnectorUser is that user, null when it is gone.
func (c *connectorResolver) ConnectorUser(ctx context.Context) (*userResolver, error) {
	if c.d.ConnectorUserID == "" {
		return nil, nil
	}
	u, ok, err := c.st.findUser(ctx, c.d.ConnectorUserID)
	if err != nil || !ok {
		return nil, err
	}
	return &userResolver{st: c.st, d: u}, nil
}

// ConnectorQueueDetails reads the push queue from RabbitMQ's management API.
func (c *connectorResolver) ConnectorQueueDetails(ctx context.Context) *queueDetailsResolver {
	n, size := c.st.queues.details(ctx, c.d.InternalID)
	return &queueDetailsResolver{n, size}
}

// ConnectorInfo is what the last ping reported.
func (c *connectorResolver) ConnectorInfo() *connectorInfoResolver {
	if c.d.ConnectorInfo == nil {
		return nil
	}
	return &connectorInfoResolver{*c.d.ConnectorInfo}
}

type queueDetailsResolver struct{ messages, size float64 }

func (q *queueDetailsResolver) MessagesNumber() float64 { return q.messages }
func (q *queueDetailsResolver) MessagesSize() float64   { return q.size }

type connectorInfoResolver struct{ i connectorInfoData }

func (i *connectorInfoResolver) RunAndTerminate() *bool      { return i.i.RunAndTerminate }
func (i *connectorInfoResolver) Buffering() *bool            { return i.i.Buffering }
func (i *connectorInfoResolver) QueueThreshold() *float64    { return i.i.QueueThreshold }
func (i *connectorInfoResolver) QueueMessagesSize() *float64 { return i.i.QueueMessagesSize }
func (i *connectorInfoResolver) NextRunDatetime() *dateTime  { return (*dateTime)(i.i.NextRunDatetime) }
func (i *connectorInfoResolver) LastRunDatetime() *dateTime  { return (*dateTime)(i.i.LastRunDatetime) }

// connectorConfig is OpenCTI's connectorConfig(id): the broker and file
// storage as the platform is configured, and the connector's queue names,
// routing keys and exchanges, all under RABBITMQ__QUEUE_PREFIX.
type connectorConfig struct{ c *connectorResolver }

func (c *connectorConfig) rabbit() *rabbitBackend { return c.c.st.rabbit }
func (c *connectorConfig) id() string             { return c.c.d.InternalID }

func (c *connectorConfig) Connection() *rabbitConnection { return &rabbitConnection{c.rabbit().cfg} }
func (c *connectorConfig) S3() *s3Connection             { return &s3Connection{c.c.st.s3} }
func (c *connectorConfig) Listen() string                { return c.rabbit().listenQueue(c.id()) }
func (c *connectorConfig) ListenRouting() *string        { return ptr(c.rabbit().listenRouting(c.id())) }
func (c *connectorConfig) ListenExchange() string        { return c.rabbit().prefixed(connectorExchange) }
func (c *connectorConfig) ListenCallbackURI() *string    { return c.c.d.ListenCallbackURI }
func (c *connectorConfig) Push() string                  { return c.rabbit().pushQueue(c.id()) }
func (c *connectorConfig) PushRouting() *string          { return ptr(c.rabbit().pushRouting(c.id())) }
func (c *connectorConfig) PushExchange() string          { return c.rabbit().prefixed(workerExchange) }
func (c *connectorConfig) DeadLetterRouting() *string {
	return ptr(c.rabbit().listenRouting("too-large-bundle"))
}

type rabbitConnection struct{ cfg RabbitMQConfig }

func (r *rabbitConnection) Host() string  { return r.cfg.Hostname }
func (r *rabbitConnection) Vhost() string { return r.cfg.VHost }
func (r *rabbitConnection) UseSsl() bool  { return r.cfg.UseSSL }
func (r *rabbitConnection) Port() int32   { return int32(r.cfg.Port) }
func (r *rabbitConnection) User() string  { return r.cfg.Username }
func (r *rabbitConnection) Pass() string  { return r.cfg.Password }

// s3Connection is OpenCTI's s3ConnectionConfig: MINIO__* as configured.
type s3Connection struct{ cfg S3Config }

func (s *s3Connection) Endpoint() string     { return s.cfg.Endpoint }
func (s *s3Connection) Port() int32          { return int32(s.cfg.Port) }
func (s *s3Connection) UseSsl() bool         { return s.cfg.UseSSL }
func (s *s3Connection) BucketName() string   { return s.cfg.BucketName }
func (s *s3Connection) BucketRegion() string { return s.cfg.BucketRegion }
func (s *s3Connection) AccessKey() string    { return s.cfg.AccessKey }
func (s *s3Connection) SecretKey() string    { return s.cfg.SecretKey }
