package workerapp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
)

type fakeTemporal struct{ err error }

func (f fakeTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, f.err
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestHealthProbes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		temporal  TemporalChecker // nil: not started
		readyCode int
		readyBody string
	}{
		{"not started", nil, http.StatusServiceUnavailable, "not ready: the worker has not started polling"},
		{"started, temporal answers", fakeTemporal{}, http.StatusOK, "ready"},
		{"started, temporal down", fakeTemporal{err: errors.New("connection refused")}, http.StatusServiceUnavailable, "not ready: cannot reach temporal: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Health{}
			h.started(tc.temporal)
			if code, body := get(t, h.Handler(), "/healthz"); code != http.StatusOK || body != "ok\n" {
				t.Errorf("/healthz = %d %q, want 200 ok: liveness must not depend on Temporal", code, body)
			}
			code, body := get(t, h.Handler(), "/readyz")
			if code != tc.readyCode || !strings.HasPrefix(body, tc.readyBody) {
				t.Errorf("/readyz = %d %q, want %d %q…", code, body, tc.readyCode, tc.readyBody)
			}
		})
	}
}

func TestHealthNotReadyAfterStop(t *testing.T) {
	h := &Health{}
	h.started(fakeTemporal{})
	h.started(nil)
	if err := h.Ready(context.Background()); err == nil {
		t.Fatal("a stopped worker reported ready")
	}
	var none *Health
	none.started(fakeTemporal{}) // a nil Health (no probes) is a no-op, not a panic
}

func TestServeHealthRefusesABadAddress(t *testing.T) {
	if _, err := ServeHealth("127.0.0.1:-1", &Health{}, nil); err == nil || !strings.Contains(err.Error(), "cannot serve health probes") {
		t.Fatalf("ServeHealth(bad addr) = %v, want an error naming the probes", err)
	}
	closer, err := ServeHealth("127.0.0.1:0", &Health{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := closer(); err != nil {
		t.Fatal(err)
	}
}
