package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"
)

// Read is the outcome of one read of a health check: its result, or why there is none,
// and how long it took.
type Read[T any] struct {
	// Name is the component the read is about (redis, platform, node-2/plan, …).
	Name string `json:"name"`
	// Took is the read's latency.
	Took time.Duration `json:"took"`
	// Result is what the read returned (zero when Error is set).
	Result T `json:"result,omitzero"`
	// Error is why the read failed, as the operator should read it.
	Error string `json:"error,omitempty"`
}

// Named is one read to make: the component's name and the input of the single read.
type Named[T any] struct {
	// Name is the component the read is about.
	Name string `json:"name"`
	// Input is the read's input.
	Input T `json:"input"`
}

// ProbeCall is one dependency probe to run, exactly one of its inputs set: the
// workflow's own list of probes (and their inputs) is the one the deploy waits on.
type ProbeCall struct {
	// Name is the dependency (opensearch, rabbitmq, redis, s3).
	Name string `json:"name"`
	// OpenSearch, RabbitMQ, Redis and S3 are the probe's input; one is set.
	OpenSearch *ProbeOpenSearchInput `json:"opensearch,omitempty"`
	RabbitMQ   *ProbeRabbitMQInput   `json:"rabbitmq,omitempty"`
	Redis      *ProbeRedisInput      `json:"redis,omitempty"`
	S3         *ProbeS3Input         `json:"s3,omitempty"`
}

// NewProbeCall wraps a probe activity's input into a ProbeCall; any other input is a
// programming error.
func NewProbeCall(name string, in any) ProbeCall {
	c := ProbeCall{Name: name}
	switch in := in.(type) {
	case ProbeOpenSearchInput:
		c.OpenSearch = &in
	case ProbeRabbitMQInput:
		c.RabbitMQ = &in
	case ProbeRedisInput:
		c.Redis = &in
	case ProbeS3Input:
		c.S3 = &in
	default:
		panic(fmt.Sprintf("NewProbeCall: %T is no probe input", in))
	}
	return c
}

// run runs the probe the call holds.
func (c ProbeCall) run(ctx context.Context, a *Activities) (ProbeResult, error) {
	switch {
	case c.OpenSearch != nil:
		return a.ProbeOpenSearch(ctx, *c.OpenSearch)
	case c.RabbitMQ != nil:
		return a.ProbeRabbitMQ(ctx, *c.RabbitMQ)
	case c.Redis != nil:
		return a.ProbeRedis(ctx, *c.Redis)
	case c.S3 != nil:
		return a.ProbeS3(ctx, *c.S3)
	}
	return ProbeResult{}, permanent(ErrTypeInvalidInput, fmt.Errorf("probe %s: no input", c.Name))
}

// ReadOpenCTIHealthInput is every read of one health check of an OpenCTI instance.
type ReadOpenCTIHealthInput struct {
	// Probes are the dependency probes.
	Probes []ProbeCall `json:"probes"`
	// Platforms are the /health reads, the first node's first.
	Platforms []Named[CheckOpenCTIHealthInput] `json:"platforms"`
	// Services reads the workers' services.
	Services ReadPebbleServicesInput `json:"services"`
	// Plans are the dry-run applies that compare each container's plan with the spec's;
	// the activity forces DryRun, so a health check never pushes.
	Plans []Named[ApplyOpenCTIPlanInput] `json:"plans"`
}

// ReadOpenCTIHealthResult is each read's outcome, in the input's order.
type ReadOpenCTIHealthResult struct {
	// Probes are the dependency probes' outcomes.
	Probes []Read[ProbeResult] `json:"probes"`
	// Platforms are the /health reads' outcomes.
	Platforms []Read[CheckOpenCTIHealthResult] `json:"platforms"`
	// Services is the workers' services' read.
	Services Read[ReadPebbleServicesResult] `json:"services"`
	// Plans are the dry-run applies' outcomes.
	Plans []Read[ApplyOpenCTIPlanResult] `json:"plans"`
}

// ReadOpenCTIHealth makes every read of a health check at once, each bounded by its
// own call timeout, and returns each outcome: one activity (run as a local activity)
// instead of one per read, so a check of a fleet costs Temporal one marker, not a
// round trip per component. A read that fails is reported in its outcome, never as
// the activity's error: the next check is the retry.
func (a *Activities) ReadOpenCTIHealth(ctx context.Context, in ReadOpenCTIHealthInput) (ReadOpenCTIHealthResult, error) {
	out := ReadOpenCTIHealthResult{
		Probes:    make([]Read[ProbeResult], len(in.Probes)),
		Platforms: make([]Read[CheckOpenCTIHealthResult], len(in.Platforms)),
		Plans:     make([]Read[ApplyOpenCTIPlanResult], len(in.Plans)),
	}
	var wg sync.WaitGroup
	for i, p := range in.Probes {
		wg.Go(func() {
			out.Probes[i] = timedRead(ctx, p.Name, func(ctx context.Context) (ProbeResult, error) { return p.run(ctx, a) })
		})
	}
	for i, p := range in.Platforms {
		wg.Go(func() {
			out.Platforms[i] = timedRead(ctx, p.Name, func(ctx context.Context) (CheckOpenCTIHealthResult, error) {
				return a.CheckOpenCTIHealth(ctx, p.Input)
			})
		})
	}
	wg.Go(func() {
		out.Services = timedRead(ctx, "workers", func(ctx context.Context) (ReadPebbleServicesResult, error) {
			return a.ReadPebbleServices(ctx, in.Services)
		})
	})
	for i, p := range in.Plans {
		p.Input.DryRun = true
		wg.Go(func() {
			out.Plans[i] = timedRead(ctx, p.Name, func(ctx context.Context) (ApplyOpenCTIPlanResult, error) {
				res, err := a.ApplyOpenCTIPlan(ctx, p.Input)
				// Drift is what differs: the rest (services, digests, the unchanged)
				// would only swell every check's history.
				return ApplyOpenCTIPlanResult{PebbleLayerChanges: PebbleLayerChanges{Added: res.Added, Removed: res.Removed, Changed: res.Changed},
					FileDrift: res.FileDrift}, err
			})
		})
	}
	wg.Wait()
	return out, nil
}

// timedRead runs one read and times it; a failure becomes the outcome's Error.
func timedRead[T any](ctx context.Context, name string, read func(context.Context) (T, error)) Read[T] {
	start := time.Now()
	res, err := read(ctx)
	r := Read[T]{Name: name, Took: time.Since(start), Result: res}
	if err != nil {
		var zero T
		r.Result, r.Error = zero, ErrorText(err)
	}
	return r
}

// ErrorText is an error as an operator reads it: an ApplicationError's message
// without the SDK's type suffix.
func ErrorText(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}
