package openctistandin

// End-to-end tests of Run against the local stack's real OpenSearch, MinIO,
// RabbitMQ and Redis (deploy/local/stack env). Each test uses its own index
// prefix, bucket, Redis namespace and queue prefix and removes them, so tests
// (and other users of the stack) never share the init lock or the queues.

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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/internal/standin/standinlog"
)

// fastTimings are the real steps, shortened for tests.
func fastTimings() Timings {
	return Timings{Init: 2 * time.Second, Migration: 100 * time.Millisecond, LockRetry: 2 * time.Second,
		LockTTL: 3 * time.Second, LockLinger: 2 * time.Second, Stop: 200 * time.Millisecond, HealthTimeout: 2 * time.Second}
}

// stackEnv is OpenCTI's environment for the stack, with per-test names.
func stackEnv(t *testing.T) map[string]string {
	t.Helper()
	st := stacktest.Get(t)
	s3, err := url.Parse(st.S3Endpoint)
	if err != nil || s3.Hostname() == "" {
		t.Fatalf("cannot parse the S3 endpoint %q", st.S3Endpoint)
	}
	id := "sti" + strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	return map[string]string{
		"APP__PORT": "0", "APP__BASE_URL": "http://127.0.0.1/", "APP__BASE_PATH": "/opencti",
		"APP__ADMIN__EMAIL": "admin@opencti.local", "APP__ADMIN__PASSWORD": "secret", "APP__ADMIN__TOKEN": testToken,
		"APP__HEALTH_ACCESS_KEY": "health-key",
		"APP__ENCRYPTION_KEY":    base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"REDIS__HOSTNAME":        st.RedisHost, "REDIS__PORT": strconv.Itoa(st.RedisPort), "REDIS__PASSWORD": st.RedisPassword,
		"REDIS__NAMESPACE":   id,
		"RABBITMQ__HOSTNAME": st.RabbitMQHost, "RABBITMQ__PORT": strconv.Itoa(st.RabbitMQPort),
		"RABBITMQ__PORT_MANAGEMENT": strconv.Itoa(st.RabbitMQMgmtPort),
		"RABBITMQ__USERNAME":        st.RabbitMQUser, "RABBITMQ__PASSWORD": st.RabbitMQPassword, "RABBITMQ__VHOST": st.RabbitMQVHost,
		"RABBITMQ__QUEUE_PREFIX":      id,
		"ELASTICSEARCH__URL":          st.OpenSearchURL,
		"ELASTICSEARCH__INDEX_PREFIX": id, "ELASTICSEARCH__NUMBER_OF_REPLICAS": "0",
		"MINIO__ENDPOINT": s3.Hostname(), "MINIO__PORT": s3.Port(), "MINIO__USE_SSL": fmt.Sprint(s3.Scheme == "https"),
		"MINIO__ACCESS_KEY": st.S3AccessKey, "MINIO__SECRET_KEY": st.S3SecretKey,
		"MINIO__BUCKET_NAME": id, "MINIO__BUCKET_REGION": st.S3Region,
		"SMTP__HOSTNAME": "127.0.0.1", "SMTP__PORT": "1",
	}
}

// stackConfig builds a Config through ConfigFromEnv, so the env contract is exercised too.
func stackConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := ConfigFromEnv(envOf(stackEnv(t)))
	if err != nil {
		t.Fatalf("cannot build config from the stack env: %v", err)
	}
	cfg.Timings, cfg.Dir = fastTimings(), t.TempDir()
	t.Cleanup(func() { wipe(t, cfg) })
	return cfg
}

// wipe deletes everything a test platform leaves: indices, templates, bucket,
// queues, exchanges and Redis keys under its names.
func wipe(t *testing.T, cfg Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := newBackends(cfg)
	if err != nil {
		t.Errorf("cannot clean up: %v", err)
		return
	}
	defer b.close()
	p := cfg.Search.IndexPrefix
	for _, path := range []string{"/" + p + "_*?expand_wildcards=all", "/_index_template/" + p + "_*", "/_component_template/" + p + "-core-settings",
		"/_plugins/_ism/policies/" + p + "-ism-policy"} {
		_, _, _ = b.search.do(ctx, http.MethodDelete, path, nil)
	}
	if ok, _ := b.s3.client.BucketExists(ctx, b.s3.bucket); ok {
		_ = b.s3.client.RemoveBucket(ctx, b.s3.bucket)
	}
	if conn, err := b.rabbit.dial(ctx); err == nil {
		if ch, err := conn.Channel(); err == nil {
			for _, q := range internalQueues() {
				_, _ = ch.QueueDelete(b.rabbit.pushQueue(q.id), false, false, false)
				_, _ = ch.QueueDelete(b.rabbit.listenQueue(q.id), false, false, false)
			}
			_ = ch.ExchangeDelete(b.rabbit.prefixed(connectorExchange), false, false)
			_ = ch.ExchangeDelete(b.rabbit.prefixed(workerExchange), false, false)
		}
		conn.Close()
	}
	if keys, err := b.redis.client.Keys(ctx, cfg.Redis.Namespace+":*").Result(); err == nil && len(keys) > 0 {
		b.redis.client.Del(ctx, keys...)
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
		t.Errorf("clean stop returned %v", err)
	}
	if !strings.Contains(r.log.String(), "[OPENCTI] Platform stopped ") {
		t.Errorf("stop log lacks \"[OPENCTI] Platform stopped <n> ms\":\n%s", r.log.String())
	}
}

// waitLog waits for a log line containing s.
func (r *running) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(r.log.String(), s) {
		if time.Now().After(deadline) {
			r.cancel()
			t.Fatalf("no %q within 60s:\n%s", s, r.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gql(t *testing.T, base, query string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(`{"query":`+strconv.Quote(query)+`}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func aboutVersion(t *testing.T, base string) string {
	t.Helper()
	out := gql(t, base, "{ about { version } }")
	data, _ := out["data"].(map[string]any)
	about, _ := data["about"].(map[string]any)
	v, _ := about["version"].(string)
	return v
}

// hasModule reports whether the stack's OpenSearch loaded a module: without
// analysis-common OpenCTI's first boot fails.
func hasModule(t *testing.T, cfg Config, name string) bool {
	t.Helper()
	b, err := newBackends(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	status, body, err := b.search.do(context.Background(), http.MethodGet, "/_nodes/plugins", nil)
	if err := mustOK(status, body, err); err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(body, []byte(`"name":"`+name+`"`))
}

// requireAnalysisCommon skips a test of a successful first boot when the
// stack's OpenSearch cannot give one; TestStackFirstBootWithoutAnalysisCommon
// covers that case.
func requireAnalysisCommon(t *testing.T, cfg Config) {
	t.Helper()
	if !hasModule(t, cfg, "analysis-common") {
		t.Skip("the stack's OpenSearch lacks analysis-common: a real first boot fails there (see TestStackFirstBootWithoutAnalysisCommon)")
	}
}

// TestStackFirstBootWithoutAnalysisCommon boots on the stack's opensearch-bare
// (the distribution as published, transport module only).
func TestStackFirstBootWithoutAnalysisCommon(t *testing.T) {
	cfg := stackConfig(t)
	bare := os.Getenv("SOCFLOW_OPENSEARCH_BARE_URL")
	if bare == "" {
		t.Skip("the stack has no opensearch-bare (SOCFLOW_OPENSEARCH_BARE_URL)")
	}
	stacktest.Service(t, "start", "opensearch-bare")
	cfg.Search.URLs = []string{bare}
	t.Cleanup(func() { wipe(t, cfg) })
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if resp, err := http.Get(bare); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("opensearch-bare not answering at %s after 90s", bare)
		}
	}
	if hasModule(t, cfg, "analysis-common") {
		t.Fatal("opensearch-bare has analysis-common")
	}
	r := start(cfg, "6.9.3")
	err := r.wait(t)
	var e *Error
	if !errors.As(err, &e) || e.Name != DatabaseErrorName || e.Message != "Creating component template fail" ||
		!strings.Contains(err.Error(), "asciifolding") {
		t.Fatalf("err = %v, want DATABASE_ERROR Creating component template fail (asciifolding)\n%s", err, r.log.String())
	}
	line := lastLine(t, r.log.String())
	if line.Message != "[OPENCTI] Platform default initialization failed" || line.Errors[0].Name != DatabaseErrorName ||
		!strings.Contains(r.log.String(), "[INIT] Platform initialization done") {
		t.Errorf("log:\n%s", r.log.String())
	}
}

func TestStackFirstBootUpgradeAndDowngrade(t *testing.T) {
	cfg := stackConfig(t)
	requireAnalysisCommon(t, cfg)

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
	for _, want := range []string{"[OPENCTI] Starting platform (version 6.10.0)", "[LOCKING] Locking fork process started",
		"[INIT] Starting platform initialization", "[INIT] New platform detected, initialization...",
		"[INIT] Creating migration structure", "[INIT] Platform initialization done", "[OPENCTI] API ready on port"} {
		if !strings.Contains(first.log.String(), want) {
			t.Errorf("first boot log lacks %q:\n%s", want, first.log.String())
		}
	}
	checkSchema(t, cfg)
	checkQueues(t, cfg)
	checkLockReleased(t, cfg)
	first.stop(t)

	older := start(cfg, "6.9.3")
	err = older.wait(t)
	var e *Error
	if !errors.Is(err, ErrDataTooRecent) || !errors.As(err, &e) || e.Name != UnsupportedErrorName ||
		lastLine(t, older.log.String()).Errors[0].Attributes["currentVersion"] != "6.10.0" {
		t.Fatalf("older version: err = %v, log:\n%s", err, older.log.String())
	}

	newer := start(cfg, "7.260224.0")
	base = newer.waitReady(t)
	if v := aboutVersion(t, base); v != "7.260224.0" || !strings.Contains(newer.log.String(), "Platform version updated to 7.260224.0") {
		t.Errorf("upgrade: about.version = %q, log:\n%s", v, newer.log.String())
	}
	newer.stop(t)

	same := start(cfg, "7.260224.0")
	same.waitReady(t)
	if !strings.Contains(same.log.String(), "[INIT] Existing platform detected, initialization...") {
		t.Errorf("restart on same version, log:\n%s", same.log.String())
	}
	same.stop(t)
}

// checkSchema finds OpenCTI's 14 rollover indices with their write aliases,
// 14 index templates, the component template and the MigrationStatus.
func checkSchema(t *testing.T, cfg Config) {
	t.Helper()
	b, _ := newBackends(cfg)
	defer b.close()
	ctx := context.Background()
	p := cfg.Search.IndexPrefix
	status, body, err := b.search.do(ctx, http.MethodGet, "/_alias/"+p+"_*", nil)
	if err := mustOK(status, body, err); err != nil {
		t.Fatal(err)
	}
	var aliases map[string]struct {
		Aliases map[string]any `json:"aliases"`
	}
	_ = json.Unmarshal(body, &aliases)
	for _, name := range indexNames {
		if _, ok := aliases[p+"_"+name+"-000001"].Aliases[p+"_"+name]; !ok {
			t.Errorf("index %s_%s-000001 with alias missing", p, name)
		}
	}
	if len(aliases) != 14 {
		t.Errorf("%d indices, want 14", len(aliases))
	}
	status, body, err = b.search.do(ctx, http.MethodGet, "/_index_template/"+p+"_*", nil)
	if err := mustOK(status, body, err); err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		IndexTemplates []any `json:"index_templates"`
	}
	_ = json.Unmarshal(body, &tpl)
	if len(tpl.IndexTemplates) != 14 {
		t.Errorf("%d index templates, want 14", len(tpl.IndexTemplates))
	}
	if status, _, _ := b.search.do(ctx, http.MethodGet, "/_component_template/"+p+"-core-settings", nil); status != 200 {
		t.Errorf("component template: status %d", status)
	}
	ms, found, err := b.search.readMigrationStatus(ctx)
	if err != nil || !found || !strings.HasSuffix(ms.LastRun, "-init") || ms.PlatformVersion == "" {
		t.Errorf("MigrationStatus = %+v found=%v err=%v", ms, found, err)
	}
}

// checkQueues finds the internal queues under the RabbitMQ prefix.
func checkQueues(t *testing.T, cfg Config) {
	t.Helper()
	b, _ := newBackends(cfg)
	defer b.close()
	conn, err := b.rabbit.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"push_background-task-0", "listen_background-task-3", "push_sync", "push_playbook"} {
		ch, _ := conn.Channel()
		if _, err := ch.QueueDeclarePassive(cfg.RabbitMQ.QueuePrefix+"_"+q, true, false, false, false, nil); err != nil {
			t.Errorf("queue %s_%s: %v", cfg.RabbitMQ.QueuePrefix, q, err)
		}
	}
}

// checkLockReleased: a successful init releases the lock and ends its child.
func checkLockReleased(t *testing.T, cfg Config) {
	t.Helper()
	b, _ := newBackends(cfg)
	defer b.close()
	if n, _ := b.redis.client.Exists(context.Background(), cfg.Redis.Namespace+":{locks}:platform_init_lock").Result(); n != 0 {
		t.Error("init lock still held after a successful init")
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(lockChildren(t, cfg.Redis.Namespace)) != 0 {
		if time.Now().After(deadline) {
			t.Error("lock child still running after a successful init")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockChildren finds the lock children of a namespace by their argv and environment.
func lockChildren(t *testing.T, namespace string) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if bytes.Contains(cmdline, []byte(ChildLockArg)) && bytes.Contains(env, []byte("REDIS__NAMESPACE="+namespace+"\x00")) &&
			!bytes.Contains(stat, []byte(") Z ")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestStackInterruptedFirstBootStaysBroken(t *testing.T) {
	cfg := stackConfig(t)
	requireAnalysisCommon(t, cfg)
	cfg.Timings.Init = 20 * time.Second // schema over 2 s: time to interrupt it

	first := start(cfg, "6.9.3")
	deadline := time.Now().Add(60 * time.Second)
	b, _ := newBackends(cfg)
	defer b.close()
	for {
		if ok, _ := b.search.indexExists(context.Background(), b.search.internalObjects()); ok {
			break
		}
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
	// The killed node's lock child keeps the lock for LockLinger+LockTTL.
	time.Sleep(cfg.Timings.LockLinger + cfg.Timings.LockTTL)

	again := start(cfg, "6.9.3")
	err := again.wait(t)
	var e *Error
	if !errors.Is(err, ErrIndexAlreadyExists) || !errors.As(err, &e) || e.Name != ConfigurationErrorName ||
		!strings.HasPrefix(e.Message, "Fail initialize schema, index already exists") {
		t.Fatalf("restart after interrupted init: err = %v, want CONFIGURATION_ERROR index already exists\n%s", err, again.log.String())
	}
}

func TestStackKillAfterMigrationStatusBootsAsExisting(t *testing.T) {
	cfg := stackConfig(t)
	requireAnalysisCommon(t, cfg)
	cfg.Timings.Init = 20 * time.Second
	first := start(cfg, "6.9.3")
	first.waitLog(t, "[INIT] Creating migration structure")
	time.Sleep(500 * time.Millisecond)
	first.cancel()
	first.wait(t)
	time.Sleep(cfg.Timings.LockLinger + cfg.Timings.LockTTL)

	cfg.Timings.Init = 2 * time.Second
	again := start(cfg, "6.9.3")
	again.waitReady(t)
	if !strings.Contains(again.log.String(), "[INIT] Existing platform detected") {
		t.Errorf("half-initialised platform did not boot as existing:\n%s", again.log.String())
	}
	again.stop(t)
}

func TestStackDependencyFailuresNameTheDependency(t *testing.T) {
	base := stackConfig(t)
	for _, tc := range []struct {
		dependency, errName, message string
		spoil                        func(*Config)
	}{
		{"RabbitMQ", DatabaseErrorName, "RabbitMQ seems down", func(c *Config) { c.RabbitMQ.Password = "wrong-password" }},
		{"Redis", DatabaseErrorName, "Redis seems down", func(c *Config) { c.Redis.Password = "wrong-password" }},
		{"File storage", "SignatureDoesNotMatch", "", func(c *Config) { c.S3.SecretKey = "wrong-secret-key" }},
		{"Search engine", ConfigurationErrorName, "Search engine seems down", func(c *Config) { c.Search.URLs = []string{"http://127.0.0.1:1"} }},
	} {
		t.Run(tc.dependency, func(t *testing.T) {
			cfg := base
			tc.spoil(&cfg)
			cfg.Timings.Start = 300 * time.Millisecond
			began := time.Now()
			r := start(cfg, "6.9.3")
			err := r.wait(t)
			var de *DependencyError
			if !errors.As(err, &de) || de.Dependency != tc.dependency {
				t.Fatalf("err = %v, want a DependencyError naming %s", err, tc.dependency)
			}
			if time.Since(began) < cfg.Timings.Start {
				t.Errorf("failed after %s, before the start delay", time.Since(began))
			}
			line := lastLine(t, r.log.String())
			if line.Message != "[OPENCTI] System dependencies check failed" || len(line.Errors) == 0 || line.Errors[0].Name != tc.errName ||
				(tc.message != "" && line.Errors[0].Message != tc.message) {
				t.Errorf("error line = %+v\n%s", line, r.log.String())
			}
			if strings.Count(r.log.String(), `"level":"error"`) != 1 {
				t.Errorf("want exactly one error line:\n%s", r.log.String())
			}
		})
	}
}

func TestStackWrongManagementPortStillStarts(t *testing.T) {
	cfg := stackConfig(t)
	requireAnalysisCommon(t, cfg)
	cfg.RabbitMQ.PortManagement = 1
	r := start(cfg, "6.9.3")
	base := r.waitReady(t)
	out := gql(t, base, "{ about { dependencies { name version } } }")
	if !strings.Contains(fmt.Sprint(out), "RabbitMQ version:Disconnected") {
		t.Errorf("about = %v, want RabbitMQ Disconnected", out)
	}
	r.stop(t)
}

func TestStackInitLockHeldElsewhere(t *testing.T) {
	cfg := stackConfig(t)
	b, err := newBackends(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	key := cfg.Redis.Namespace + ":{locks}:platform_init_lock"
	if err := b.redis.client.Set(context.Background(), key, "held-by-test", 30*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	r := start(cfg, "6.9.3")
	err = r.wait(t)
	var e *Error
	if !errors.Is(err, ErrLockHeld) || !errors.As(err, &e) || e.Name != LockErrorName ||
		e.Message != "Platform cant get the lock for initialization (can be due to other instance currently migrating/initializing)" {
		t.Fatalf("err = %v, want LOCK_ERROR\n%s", err, r.log.String())
	}
	if time.Since(began) < cfg.Timings.LockRetry {
		t.Errorf("gave up after %s, before the %s retry", time.Since(began), cfg.Timings.LockRetry)
	}
	if strings.Contains(r.log.String(), "[INIT] Platform initialization done") {
		t.Errorf("no lock, so no \"initialization done\":\n%s", r.log.String())
	}
}

func TestStackKilledMidInitLeavesTheLockToItsChild(t *testing.T) {
	cfg := stackConfig(t)
	cfg.Timings.Init = time.Minute
	cfg.Timings.LockTTL, cfg.Timings.LockLinger = 2*time.Second, 3*time.Second
	r := start(cfg, "6.9.3")
	r.waitLog(t, "[INIT] Starting platform initialization")
	r.cancel()
	began := time.Now()
	if err := r.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("stop mid-init took %s, want ≈ 0.1 s", d)
	}
	b, _ := newBackends(cfg)
	defer b.close()
	key := cfg.Redis.Namespace + ":{locks}:platform_init_lock"
	pids := lockChildren(t, cfg.Redis.Namespace)
	if len(pids) != 1 {
		t.Fatalf("lock children = %v, want one surviving its parent", pids)
	}
	// SIGTERM to the child changes nothing.
	_ = syscallKill(pids[0])
	time.Sleep(cfg.Timings.LockTTL + 500*time.Millisecond)
	if n, _ := b.redis.client.Exists(context.Background(), key).Result(); n != 1 {
		t.Error("lock gone before the child's linger ended: the child must keep extending it")
	}
	time.Sleep(cfg.Timings.LockLinger + cfg.Timings.LockTTL)
	if n, _ := b.redis.client.Exists(context.Background(), key).Result(); n != 0 {
		t.Error("lock still there a TTL after the child's linger")
	}
	if pids := lockChildren(t, cfg.Redis.Namespace); len(pids) != 0 {
		t.Errorf("lock child %v still running after its linger", pids)
	}
}

func TestStackInvalidTokenFailsLateEveryBoot(t *testing.T) {
	cfg := stackConfig(t)
	requireAnalysisCommon(t, cfg)
	cfg.AdminToken = "not-a-uuid"
	for i, want := range []string{"[INIT] New platform detected", "[INIT] Existing platform detected"} {
		r := start(cfg, "6.9.3")
		err := r.wait(t)
		var e *Error
		if !errors.As(err, &e) || e.Name != ConfigurationErrorName || e.Message != "Token must be a valid UUID" || !strings.Contains(r.log.String(), want) {
			t.Fatalf("boot %d: err = %v\n%s", i+1, err, r.log.String())
		}
	}
}

// TestStackWorkerConsumesAdvertisedQueues runs the worker stand-in's protocol
// against a real stand-in platform: the advertised connection reaches RabbitMQ.
func TestStackQueuesAreConsumable(t *testing.T) {
	cfg := stackConfig(t)
	requireAnalysisCommon(t, cfg)
	r := start(cfg, "6.9.3")
	base := r.waitReady(t)
	out := gql(t, base, "{ connectorsForWorker { id config { connection { host port user pass vhost use_ssl } push } } }")
	raw, _ := json.Marshal(out["data"])
	var data struct {
		ConnectorsForWorker []struct {
			Config struct {
				Connection struct {
					Host, User, Pass, Vhost string
					Port                    int
				}
				Push string
			}
		}
	}
	_ = json.Unmarshal(raw, &data)
	if len(data.ConnectorsForWorker) != 6 {
		t.Fatalf("connectorsForWorker = %s", raw)
	}
	c := data.ConnectorsForWorker[0].Config
	conn, err := amqp.DialConfig(amqp.URI{Scheme: "amqp", Host: c.Connection.Host, Port: c.Connection.Port,
		Username: c.Connection.User, Password: c.Connection.Pass, Vhost: c.Connection.Vhost}.String(), amqp.Config{Vhost: c.Connection.Vhost})
	if err != nil {
		t.Fatalf("cannot connect with the advertised settings: %v", err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if _, err := ch.QueueDeclarePassive(c.Push, true, false, false, false, nil); err != nil {
		t.Errorf("advertised queue %s: %v", c.Push, err)
	}
	r.stop(t)
}
