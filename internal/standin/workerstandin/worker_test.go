package workerstandin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/standin/openctistandin"
	"github.com/socflow/socflow/internal/standin/standinlog"
)

const token = "6f7c1e52-8a3b-4c9d-9e0f-1a2b3c4d5e6f"

// platform answers like OpenCTI 6.x: AUTH_REQUIRED for a wrong token, about,
// and one connector whose advertised RabbitMQ refuses connections; 503 while down.
func platform(down *atomic.Bool) *httptest.Server { return platformOf(6, down) }

// validationFailed is OpenCTI's answer to a query naming a field its schema lacks.
func validationFailed(field string) string {
	return `{"errors":[{"message":"Cannot query field \"` + field + `\" on type \"User\".","name":"GRAPHQL_VALIDATION_FAILED",` +
		`"locations":[{"line":1,"column":60}],"extensions":{"code":"GRAPHQL_VALIDATION_FAILED","data":{"http_status":400,"genre":"TECHNICAL"}}}],"data":null}`
}

// platformOf is platform for a major version: 6.x has User.api_token, 7.x has
// User.api_tokens instead, and each refuses the other's field.
func platformOf(major int, down *atomic.Bool) *httptest.Server {
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
			io.WriteString(w, `{"errors":[{"message":"You must be logged in to do this.","name":"AUTH_REQUIRED","extensions":{"code":"AUTH_REQUIRED","data":{"http_status":401,"genre":"BUSINESS"}}}],"data":null}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		switch {
		case major >= 7 && strings.Contains(string(body), "api_token "):
			io.WriteString(w, validationFailed("api_token"))
			return
		case major < 7 && strings.Contains(string(body), "api_tokens"):
			io.WriteString(w, validationFailed("api_tokens"))
			return
		}
		if strings.Contains(string(body), "connectorsForWorker") {
			io.WriteString(w, `{"data":{"connectorsForWorker":[{"id":"sync","config":{"connection":{"host":"127.0.0.1","vhost":"/","use_ssl":false,"port":1,"user":"u","pass":"p"},"push":"push_sync"}}]}}`)
			return
		}
		io.WriteString(w, `{"data":{"about":{"version":"6.9.3"}}}`)
	}))
}

func testConfig(url, tok string, out io.Writer) Config {
	return Config{URL: url, Token: tok, PollInterval: 20 * time.Millisecond, Stdout: out, LogLevel: slog.LevelDebug}
}

// runUntil runs the worker until the log shows want n times, then stops it and
// checks it returned nil: the worker never exits on its own.
func runUntil(t *testing.T, cfg Config, out *standinlog.SyncBuffer, want string, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), want) < n {
		select {
		case err := <-done:
			t.Fatalf("worker exited (%v) before %d × %q:\n%s", err, n, want, out.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("fewer than %d × %q:\n%s", n, want, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
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

func TestRunRetriesWhilePlatformUnreachable(t *testing.T) {
	srv := platform(new(atomic.Bool))
	url := srv.URL
	srv.Close()
	var out standinlog.SyncBuffer
	runUntil(t, testConfig(url+"/base", token, &out), &out, "OpenCTI API is not reachable", 3)
}

func TestRunRetriesOnRejectedToken(t *testing.T) {
	srv := platform(new(atomic.Bool))
	defer srv.Close()
	var out standinlog.SyncBuffer
	runUntil(t, testConfig(srv.URL+"/base/", "wrong", &out), &out, "token is invalid", 3)
}

func TestRunSurvivesPlatformGoingAway(t *testing.T) {
	down := new(atomic.Bool)
	srv := platform(down)
	defer srv.Close()
	var out standinlog.SyncBuffer
	cfg := testConfig(srv.URL+"/base", token, &out)
	go func() {
		for !strings.Contains(out.String(), "Polled OpenCTI") {
			time.Sleep(5 * time.Millisecond)
		}
		down.Store(true)
	}()
	runUntil(t, cfg, &out, "OpenCTI API is not reachable", 3)
}

func TestRunConnectsToAdvertisedRabbitMQ(t *testing.T) {
	srv := platform(new(atomic.Bool))
	defer srv.Close()
	var out standinlog.SyncBuffer
	// The advertised RabbitMQ (127.0.0.1:1) refuses: the worker says so and retries.
	runUntil(t, testConfig(srv.URL+"/base", token, &out), &out, "cannot connect to rabbitmq 127.0.0.1:1 advertised by the platform", 2)
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"OPENCTI_URL": "http://127.0.0.1:8080", "OPENCTI_TOKEN": token, "WORKER_LOG_LEVEL": "debug"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || cfg.URL != env["OPENCTI_URL"] || cfg.Token != token || cfg.LogLevel != slog.LevelDebug {
		t.Fatalf("cfg = %+v, err = %v", cfg, err)
	}
	if got := (Config{}).withDefaults().PollInterval; got != 60*time.Second {
		t.Errorf("default poll interval = %s, want the real worker's 60s", got)
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

// TestOlderWorkerFailsEveryPollAgainst7x is §8's 6.9.28 worker against 7.x: its
// connectorsForWorker asks the connector user's api_token, which 7.x removed, so
// every poll fails validation and is logged; it stays alive and never reaches
// the advertised RabbitMQ, i.e. consumes nothing.
func TestOlderWorkerFailsEveryPollAgainst7x(t *testing.T) {
	srv := platformOf(7, new(atomic.Bool))
	defer srv.Close()
	var out standinlog.SyncBuffer
	cfg := testConfig(srv.URL+"/base", token, &out)
	runUntil(t, cfg, &out, `"message":"Cannot query field \"api_token\" on type \"User\"."`, 3)
	log := out.String()
	if strings.Count(log, `"name":"GRAPHQL_VALIDATION_FAILED"`) < 3 || strings.Contains(log, "advertised by the platform") ||
		strings.Contains(log, "Worker consuming queue") || !strings.Contains(log, `"version":"6.9.28"`) {
		t.Errorf("log:\n%s", log)
	}
}

// TestSameMajorWorkerPolls: a 7.x worker against 7.x, and a 6.x one against
// 6.x, get their connectors and go on to the advertised RabbitMQ; a 7.x worker
// against 6.x fails like the older one against 7.x, on api_tokens.
func TestSameMajorWorkerPolls(t *testing.T) {
	for _, tc := range []struct {
		worker   string
		platform int
		want     string
	}{
		{"7.260318.0", 7, "cannot connect to rabbitmq 127.0.0.1:1 advertised by the platform"},
		{"6.9.28", 6, "cannot connect to rabbitmq 127.0.0.1:1 advertised by the platform"},
		{"7.260318.0", 6, `"message":"Cannot query field \"api_tokens\" on type \"User\"."`},
	} {
		t.Run(fmt.Sprintf("%s on %d.x", tc.worker, tc.platform), func(t *testing.T) {
			srv := platformOf(tc.platform, new(atomic.Bool))
			defer srv.Close()
			var out standinlog.SyncBuffer
			cfg := testConfig(srv.URL+"/base", token, &out)
			cfg.Version = tc.worker
			runUntil(t, cfg, &out, tc.want, 2)
		})
	}
}

func TestWorkerVersionDefaultsToThePlatformStandins(t *testing.T) {
	if got := (Config{}).withDefaults().Version; got != openctistandin.DefaultVersion || DefaultVersion != "6.9.28" {
		t.Errorf("default worker version = %q, platform stand-in's = %q", got, openctistandin.DefaultVersion)
	}
	var out standinlog.SyncBuffer
	err := Run(context.Background(), Config{URL: "http://127.0.0.1:1", Token: token, Version: "latest", Stdout: &out})
	if err == nil || !strings.Contains(out.String(), "Invalid configuration") {
		t.Errorf("version latest: err = %v, log %s", err, out.String())
	}
}
