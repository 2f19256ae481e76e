package openctistandin

// End-to-end tests of Run against the local stack's real OpenSearch, MinIO,
// RabbitMQ and Redis (deploy/local/stack env). Each test uses its own index
// prefix and bucket and removes them; the two RabbitMQ exchanges are shared,
// durable and left in place, as every OpenCTI on the broker would declare them.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/standin/standinlog"
)

// stackConfig builds a Config from the stack's SOCFLOW_* variables through
// ConfigFromEnv, so the env contract is exercised too.
func stackConfig(t *testing.T) Config {
	t.Helper()
	// Get brings the stack up when the environment does not describe it (and exports
	// its settings), so these tests never silently skip.
	osURL := stacktest.Get(t).OpenSearchURL
	s3, err := url.Parse(os.Getenv("SOCFLOW_S3_ENDPOINT"))
	if err != nil || s3.Hostname() == "" {
		t.Fatalf("cannot parse SOCFLOW_S3_ENDPOINT=%q", os.Getenv("SOCFLOW_S3_ENDPOINT"))
	}
	s3Port := s3.Port()
	if s3Port == "" {
		s3Port = map[string]string{"https": "443"}[s3.Scheme]
		if s3Port == "" {
			s3Port = "80"
		}
	}
	id := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	env := map[string]string{
		"APP__PORT": "0", "APP__BASE_URL": "http://127.0.0.1/", "APP__BASE_PATH": "/opencti",
		"APP__ADMIN__EMAIL": "admin@opencti.local", "APP__ADMIN__PASSWORD": "secret", "APP__ADMIN__TOKEN": testToken,
		"APP__HEALTH_ACCESS_KEY": "health-key",
		"APP__ENCRYPTION_KEY":    base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"REDIS__HOSTNAME":        os.Getenv("SOCFLOW_REDIS_HOST"), "REDIS__PORT": os.Getenv("SOCFLOW_REDIS_PORT"),
		"REDIS__PASSWORD":    os.Getenv("SOCFLOW_REDIS_PASSWORD"),
		"RABBITMQ__HOSTNAME": os.Getenv("SOCFLOW_RABBITMQ_HOST"), "RABBITMQ__PORT": os.Getenv("SOCFLOW_RABBITMQ_PORT"),
		"RABBITMQ__PORT_MANAGEMENT": os.Getenv("SOCFLOW_RABBITMQ_MANAGEMENT_PORT"),
		"RABBITMQ__USERNAME":        os.Getenv("SOCFLOW_RABBITMQ_USER"), "RABBITMQ__PASSWORD": os.Getenv("SOCFLOW_RABBITMQ_PASSWORD"),
		"RABBITMQ__VHOST":         os.Getenv("SOCFLOW_RABBITMQ_VHOST"),
		"ELASTICSEARCH__URL":      osURL,
		"ELASTICSEARCH__USERNAME": os.Getenv("SOCFLOW_OPENSEARCH_USER"), "ELASTICSEARCH__PASSWORD": os.Getenv("SOCFLOW_OPENSEARCH_PASSWORD"),
		"ELASTICSEARCH__INDEX_PREFIX": "standin-test-" + id,
		"MINIO__ENDPOINT":             s3.Hostname(), "MINIO__PORT": s3Port, "MINIO__USE_SSL": fmt.Sprint(s3.Scheme == "https"),
		"MINIO__ACCESS_KEY": os.Getenv("SOCFLOW_S3_ACCESS_KEY"), "MINIO__SECRET_KEY": os.Getenv("SOCFLOW_S3_SECRET_KEY"),
		"MINIO__BUCKET_NAME": "standin-test-" + id, "MINIO__BUCKET_REGION": os.Getenv("SOCFLOW_S3_REGION"),
	}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("cannot build config from the stack env: %v", err)
	}
	t.Cleanup(func() { wipe(t, cfg) })
	return cfg
}

// wipe deletes the test's indices and bucket, so runs do not accumulate state.
func wipe(t *testing.T, cfg Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := newBackends(cfg)
	if err != nil {
		t.Errorf("cannot clean up: %v", err)
		return
	}
	defer b.close()
	ignore := true
	if _, err := b.search.client.Indices.Delete(ctx, opensearchapi.IndicesDeleteReq{
		Indices: b.search.indexNames(), Params: opensearchapi.IndicesDeleteParams{IgnoreUnavailable: &ignore},
	}); err != nil {
		t.Errorf("cannot delete test indices: %v", err)
	}
	if ok, _ := b.s3.client.BucketExists(ctx, b.s3.bucket); ok {
		if err := b.s3.client.RemoveBucket(ctx, b.s3.bucket); err != nil {
			t.Errorf("cannot delete test bucket: %v", err)
		}
	}
}

// running is a Run in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	ready  chan string
	log    *standinlog.SyncBuffer
}

func start(cfg Config, version string) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), ready: make(chan string, 1), log: &standinlog.SyncBuffer{}}
	cfg.Version, cfg.Stdout = version, r.log
	cfg.OnReady = func(u string) { r.ready <- u }
	go func() { r.done <- Run(ctx, cfg) }()
	return r
}

// waitReady returns the base URL, failing the test if Run ends first.
func (r *running) waitReady(t *testing.T) string {
	t.Helper()
	select {
	case u := <-r.ready:
		return u
	case err := <-r.done:
		t.Fatalf("Run ended before ready: %v\n%s", err, r.log.String())
	case <-time.After(90 * time.Second):
		r.cancel()
		t.Fatalf("Run not ready after 90s:\n%s", r.log.String())
	}
	return ""
}

// wait returns Run's result.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(90 * time.Second):
		r.cancel()
		t.Fatalf("Run did not end after 90s:\n%s", r.log.String())
	}
	return nil
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := r.wait(t); err != nil {
		t.Errorf("graceful stop returned %v", err)
	}
}

func aboutVersion(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(`{"query":"{ about { version } }"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct{ About struct{ Version string } }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Data.About.Version
}

func TestStackFirstBootUpgradeAndDowngrade(t *testing.T) {
	cfg := stackConfig(t)
	cfg.IndexDelay = 50 * time.Millisecond

	first := start(cfg, "6.10.0")
	base := first.waitReady(t)
	resp, err := http.Get(base + "/health?health_access_key=health-key")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health = %d, want 200", resp.StatusCode)
	}
	if v := aboutVersion(t, base); v != "6.10.0" {
		t.Errorf("about.version = %q", v)
	}
	for _, want := range []string{"[OPENCTI] Starting platform (version 6.10.0)", "[INIT] New platform detected", "[OPENCTI] API ready on port"} {
		if !strings.Contains(first.log.String(), want) {
			t.Errorf("first boot log lacks %q:\n%s", want, first.log.String())
		}
	}
	first.stop(t)

	older := start(cfg, "6.9.3")
	if err := older.wait(t); !errors.Is(err, ErrDataTooRecent) || !strings.Contains(older.log.String(), "Your platform data are too recent to start on this version") {
		t.Fatalf("older version: err = %v, log:\n%s", err, older.log.String())
	}

	newer := start(cfg, "7.260224.0")
	base = newer.waitReady(t)
	if v := aboutVersion(t, base); v != "7.260224.0" || !strings.Contains(newer.log.String(), "[MIGRATION] Migrating platform from 6.10.0 to 7.260224.0") {
		t.Errorf("upgrade: about.version = %q, log:\n%s", v, newer.log.String())
	}
	newer.stop(t)

	same := start(cfg, "7.260224.0")
	same.waitReady(t)
	if !strings.Contains(same.log.String(), "no migration needed") {
		t.Errorf("restart on same version, log:\n%s", same.log.String())
	}
	same.stop(t)
}

func TestStackInterruptedFirstBootStaysBroken(t *testing.T) {
	cfg := stackConfig(t)
	cfg.IndexDelay, cfg.InitDelay = 500*time.Millisecond, 10*time.Second

	first := start(cfg, "6.9.3")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(first.log.String(), "[INIT] Index created") {
		if time.Now().After(deadline) {
			first.cancel()
			t.Fatalf("no index created within 60s:\n%s", first.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	first.cancel()
	if err := first.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted first boot: err = %v, want context.Canceled", err)
	}

	again := start(cfg, "6.9.3")
	err := again.wait(t)
	if !errors.Is(err, ErrIndexAlreadyExists) || !strings.Contains(err.Error(), "resource_already_exists_exception") {
		t.Fatalf("restart after interrupted init: err = %v, want index already exists", err)
	}
	if !strings.Contains(again.log.String(), "index already exists") {
		t.Errorf("log does not say index already exists:\n%s", again.log.String())
	}
}

func TestStackWrongCredentialsNameTheDependency(t *testing.T) {
	base := stackConfig(t)
	for _, tc := range []struct {
		dependency string
		spoil      func(*Config)
	}{
		{"RabbitMQ", func(c *Config) { c.RabbitMQ.Password = "wrong-password" }},
		{"Redis", func(c *Config) { c.Redis.Password = "wrong-password" }},
		{"File Storage", func(c *Config) { c.S3.SecretKey = "wrong-secret-key" }},
		{"Search engine", func(c *Config) { c.Search.URLs = []string{"http://127.0.0.1:1"} }},
	} {
		t.Run(tc.dependency, func(t *testing.T) {
			cfg := base
			tc.spoil(&cfg)
			r := start(cfg, "6.9.3")
			err := r.wait(t)
			var de *DependencyError
			if !errors.As(err, &de) || de.Dependency != tc.dependency {
				t.Fatalf("err = %v, want a DependencyError naming %s", err, tc.dependency)
			}
			for _, want := range []string{tc.dependency + " seems down", "System dependencies check failed"} {
				if !strings.Contains(r.log.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, r.log.String())
				}
			}
		})
	}
}

func TestStackTwoNodesInitialiseOnce(t *testing.T) {
	cfg := stackConfig(t)
	cfg.InitDelay = time.Second
	a, b := start(cfg, "6.9.3"), start(cfg, "6.9.3")
	a.waitReady(t)
	b.waitReady(t)
	firstBoots := strings.Count(a.log.String()+b.log.String(), "[INIT] New platform detected")
	existing := strings.Count(a.log.String()+b.log.String(), "[INIT] Existing platform detected")
	if firstBoots != 1 || existing != 1 {
		t.Errorf("first boots = %d, existing = %d; want 1 and 1 (the init lock serialises nodes)\nA:\n%s\nB:\n%s",
			firstBoots, existing, a.log.String(), b.log.String())
	}
	a.stop(t)
	b.stop(t)
}

func TestStackInitLockHeldElsewhere(t *testing.T) {
	cfg := stackConfig(t)
	b, err := newBackends(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	ctx := context.Background()
	// A short TTL: the key is shared with anything else using the stack's Redis.
	ok, err := b.redis.client.SetNX(ctx, initLockKey, "held-by-test", 4*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skip("platform_init_lock is held by another user of the stack")
	}
	defer releaseScript.Run(ctx, b.redis.client, []string{initLockKey}, "held-by-test")
	cfg.LockWait = time.Second
	r := start(cfg, "6.9.3")
	if err := r.wait(t); !errors.Is(err, ErrLockHeld) {
		t.Fatalf("err = %v, want ErrLockHeld\n%s", err, r.log.String())
	}
}
