package workerapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
)

// HealthCheckTimeout bounds readiness's call to Temporal: a kubelet probe times out
// after a few seconds, and an answer that comes later is no answer.
const HealthCheckTimeout = 3 * time.Second

// TemporalChecker is the part of client.Client readiness needs, a seam for tests.
type TemporalChecker interface {
	CheckHealth(ctx context.Context, request *client.CheckHealthRequest) (*client.CheckHealthResponse, error)
}

// Health answers an orchestrator's probes for one worker: /healthz (live: the process
// serves HTTP) and /readyz (ready: the worker has started polling and its Temporal
// frontend answers). Kubernetes restarts a worker whose liveness fails and takes one
// that is not ready out of rollouts, so a worker that cannot reach Temporal is held
// back without being killed. The zero value is usable; Run marks it started.
type Health struct {
	temporal atomic.Pointer[TemporalChecker]
}

// started records that the worker polls its task queue through c (nil: stopped).
func (h *Health) started(c TemporalChecker) {
	if h == nil {
		return
	}
	if c == nil {
		h.temporal.Store(nil)
		return
	}
	h.temporal.Store(&c)
}

// Ready reports nil once the worker has started and Temporal answers, else why not.
func (h *Health) Ready(ctx context.Context) error {
	p := h.temporal.Load()
	if p == nil {
		return errors.New("the worker has not started polling (or has stopped)")
	}
	ctx, cancel := context.WithTimeout(ctx, HealthCheckTimeout)
	defer cancel()
	if _, err := (*p).CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("cannot reach temporal: %w", err)
	}
	return nil
}

// Handler serves /healthz and /readyz with a one-line text body that says why.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := h.Ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// ServeHealth serves h's probes on addr until the returned closer is called; it
// listens before returning, so a bad address fails the worker at start.
func ServeHealth(addr string, h *Health, logger *slog.Logger) (func() error, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot serve health probes on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && logger != nil {
			logger.Warn("health probe server stopped", "error", err)
		}
	}()
	return srv.Close, nil
}
