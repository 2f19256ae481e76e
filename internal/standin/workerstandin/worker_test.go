package workerstandin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/standin/standinlog"
)

const token = "6f7c1e52-8a3b-4c9d-9e0f-1a2b3c4d5e6f"

// platform answers me like OpenCTI: the user for the right token, AUTH_REQUIRED
// otherwise, and 503 while down is set.
func platform(down *atomic.Bool) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/base/graphql" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+token {
			io.WriteString(w, `{"errors":[{"message":"You must be logged in to do this.","extensions":{"code":"AUTH_REQUIRED"}}],"data":null}`)
			return
		}
		io.WriteString(w, `{"data":{"me":{"id":"88ec0c6a-13ce-5e39-b486-354fe4a7084f","name":"admin"}}}`)
	}))
}

func testConfig(url, tok string, out io.Writer) Config {
	return Config{URL: url, Token: tok, PollInterval: 20 * time.Millisecond, Stdout: out, LogLevel: slog.LevelDebug}
}

func TestRunFailsWhenPlatformUnreachable(t *testing.T) {
	srv := platform(new(atomic.Bool))
	url := srv.URL
	srv.Close()
	var out standinlog.SyncBuffer
	err := Run(context.Background(), testConfig(url+"/base", token, &out))
	if err == nil || !strings.Contains(out.String(), "OpenCTI API is not reachable") {
		t.Fatalf("err = %v, log:\n%s", err, out.String())
	}
}

func TestRunFailsOnRejectedToken(t *testing.T) {
	srv := platform(new(atomic.Bool))
	defer srv.Close()
	var out standinlog.SyncBuffer
	err := Run(context.Background(), testConfig(srv.URL+"/base/", "wrong", &out))
	if !errors.Is(err, ErrTokenRejected) || !strings.Contains(out.String(), "token is invalid") {
		t.Fatalf("err = %v, log:\n%s", err, out.String())
	}
}

func TestRunExitsAfterThreeFailedPolls(t *testing.T) {
	down := new(atomic.Bool)
	srv := platform(down)
	defer srv.Close()
	var out standinlog.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), testConfig(srv.URL+"/base", token, &out)) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "Polled OpenCTI") {
		if time.Now().After(deadline) {
			t.Fatalf("no successful poll:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	down.Store(true)
	select {
	case err := <-done:
		if err == nil || strings.Count(out.String(), "Cannot poll OpenCTI") != 3 {
			t.Fatalf("err = %v, log:\n%s", err, out.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("worker did not exit after failed polls")
	}
}

func TestRunStopsCleanlyOnCancel(t *testing.T) {
	srv := platform(new(atomic.Bool))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out standinlog.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, testConfig(srv.URL+"/base", token, &out)) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("err = %v, want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("worker did not stop")
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"OPENCTI_URL": "http://127.0.0.1:8080", "OPENCTI_TOKEN": token, "WORKER_LOG_LEVEL": "debug"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || cfg.URL != env["OPENCTI_URL"] || cfg.Token != token || cfg.LogLevel != slog.LevelDebug {
		t.Fatalf("cfg = %+v, err = %v", cfg, err)
	}
	for _, bad := range []map[string]string{
		{"OPENCTI_TOKEN": token},
		{"OPENCTI_URL": "127.0.0.1:8080", "OPENCTI_TOKEN": token},
		{"OPENCTI_URL": "http://x"},
		{"OPENCTI_URL": "http://x", "OPENCTI_TOKEN": token, "WORKER_LOG_LEVEL": "chatty"},
	} {
		if _, err := ConfigFromEnv(func(k string) string { return bad[k] }); err == nil || !strings.HasPrefix(err.Error(), "cannot ") {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
}
