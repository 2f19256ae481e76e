package openctistandin

// The version upgrade of docs/opencti.md §8 on the local stack: 6.9.28 data
// upgraded by a 7.260318.0 stand-in — its migrations one by one, the init lock
// kept alive meanwhile, a start interrupted mid-migration and resumed, a failing
// migration, and the 7.x tokens and schema afterwards. kill -9 of the binary is
// in ../opencti/main_test.go.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/standin/standinlog"
	"github.com/socflow/socflow/internal/standin/workerstandin"
)

// messages are the log's lines, decoded, in order.
func messages(t *testing.T, log string) []logLine {
	t.Helper()
	var out []logLine
	for _, raw := range strings.Split(strings.TrimSpace(log), "\n") {
		var l logLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("log line %q: %v", raw, err)
		}
		out = append(out, l)
	}
	return out
}

// sequenceAfter returns the messages that follow the first one equal to from.
func sequenceAfter(t *testing.T, log, from string) []string {
	t.Helper()
	var out []string
	seen := false
	for _, l := range messages(t, log) {
		if seen {
			out = append(out, l.Message)
		}
		seen = seen || l.Message == from
	}
	if !seen {
		t.Fatalf("no %q in:\n%s", from, log)
	}
	return out
}

// checkSequence compares got's first messages with want (a want ending in "…"
// is a prefix).
func checkSequence(t *testing.T, got, want []string, log string) {
	t.Helper()
	for i, w := range want {
		prefix, isPrefix := strings.CutSuffix(w, "…")
		if i >= len(got) || (isPrefix && !strings.HasPrefix(got[i], prefix)) || (!isPrefix && got[i] != w) {
			t.Fatalf("log line %d after the start of the migrations: want %q\n%s", i, w, log)
		}
	}
}

// existing6 is an existing 6.9.28 platform with a connector user in
// Connectors, stopped: the data §8 upgraded. It returns the user's id and token.
func existing6(t *testing.T, cfg Config) (string, string) {
	t.Helper()
	r := start(cfg, "6.9.28")
	base := r.waitReady(t)
	var added struct {
		UserAdd struct {
			ID       string
			APIToken string `json:"api_token"`
		}
	}
	gqlOK(t, base, testToken, `mutation A($input: UserAddInput!) { userAdd(input: $input) { id api_token } }`,
		map[string]any{"input": map[string]any{"name": "connector-x", "user_email": "x@opencti.local", "password": "p",
			"groups": []string{findGroup(t, base, "Connectors")}}}, &added)
	r.stop(t)
	return added.UserAdd.ID, added.UserAdd.APIToken
}

// stored reads the MigrationStatus and the MigrationReference titles.
func stored(t *testing.T, cfg Config) (migrationStatus, []string) {
	t.Helper()
	b, err := newBackends(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	ctx := context.Background()
	ms, found, err := b.search.readMigrationStatus(ctx)
	if err != nil || !found {
		t.Fatalf("MigrationStatus: found %v, %v", found, err)
	}
	refs, err := b.search.migrationReferences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	titles := make([]string, len(refs))
	for i, r := range refs {
		titles[i] = r.Title
	}
	sort.Strings(titles)
	return ms, titles
}

// meID is the id me answers for token, "" with the error name when refused.
func meID(t *testing.T, base, token string) (string, string) {
	t.Helper()
	r := gqlRaw(t, base, token, `{ me { id } }`, nil)
	if len(r.Errors) > 0 {
		return "", r.Errors[0].Name
	}
	var out struct{ Me struct{ ID string } }
	r.mustData(t, "me", &out)
	return out.Me.ID, ""
}

func titles(files []migrationFile) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.title
	}
	return out
}

// TestStackUpgradeRunsEachMigration is §8's upgrade at the real pace of its
// migrations (-migration-step-delay default): after the silent refresh, the
// migrations of 6.9.28 -> 7.260318.0 one by one, each recorded; the connector
// user's token then works by its HMAC under the key of the upgrade, a 6.x
// query of api_token fails validation, a 6.9.28 worker fails every poll while a
// 7.x worker consumes; under another key only APP__ADMIN__TOKEN works.
func TestStackUpgradeRunsEachMigration(t *testing.T) {
	cfg := stackConfig(t)
	requireAnalysisCommon(t, cfg)
	userID, token := existing6(t, cfg)

	cfg.Timings.Migration, cfg.Timings.MigrationStep = 300*time.Millisecond, RealTimings().MigrationStep
	began := time.Now()
	r := start(cfg, v7)
	base := r.waitReady(t)
	if d := time.Since(began); d < cfg.Timings.Migration+DefaultMigrations*cfg.Timings.MigrationStep {
		t.Errorf("upgrade ready after %s, faster than its refresh and migrations", d)
	}
	plan := plannedMigrations("6.9.28", v7, DefaultMigrations)
	want := []string{"[MIGRATION] Read 0 migrations from the database", "[MIGRATION] 5 migrations will be executed"}
	for _, f := range plan {
		want = append(want, "[MIGRATION] Saving current configuration, "+f.title)
	}
	want = append(want, "[MIGRATION] Migration process completed", "[MIGRATION] Platform version updated to "+v7,
		"[INIT] Platform initialization done", "[OPENCTI] API ready on port …")
	// Nothing between the detection and the first migration line: the refresh is silent.
	checkSequence(t, sequenceAfter(t, r.log.String(), "[INIT] Existing platform detected, initialization..."), want, r.log.String())
	if !strings.HasSuffix(plan[4].title, "-legacy_token_migration.js") {
		t.Errorf("last migration %s", plan[4].title)
	}
	ms, refs := stored(t, cfg)
	if ms.LastRun != plan[4].title || ms.PlatformVersion != v7 || strings.Join(refs, ",") != strings.Join(titles(plan), ",") {
		t.Errorf("after the upgrade: MigrationStatus %+v, references %v", ms, refs)
	}

	// Tokens under the key of the upgrade.
	if id, name := meID(t, base, token); id != userID {
		t.Errorf("connector user's 6.x token after the upgrade: id %q, error %s", id, name)
	}
	if id, _ := meID(t, base, testToken); id != adminUserID {
		t.Errorf("APP__ADMIN__TOKEN after the upgrade: %q", id)
	}
	b, _ := newBackends(cfg)
	defer b.close()
	var u userDoc
	if ok, err := newSearchObjects(b.search).get(context.Background(), entityUser, userID, &u); !ok || err != nil {
		t.Fatalf("user %s: %v %v", userID, ok, err)
	}
	if u.APIToken != "" || len(u.APITokens) != 1 || u.APITokens[0].Hash != tokenHash(cfg.tokenKeyFor(v7), token) {
		t.Errorf("stored user after the legacy_token_migration: %+v", u)
	}
	if e := gqlRaw(t, base, testToken, `{ me { id api_token } }`, nil).Errors; len(e) != 1 || e[0].Name != "GRAPHQL_VALIDATION_FAILED" ||
		!strings.HasPrefix(e[0].Message, `Cannot query field "api_token" on type "MeUser".`) {
		t.Errorf("6.x me query on 7.x: %+v", e)
	}

	// Workers: 6.9.28 fails every poll and consumes nothing; 7.x consumes.
	old := runWorker(t, base, "6.9.28", `Cannot query field \"api_token\" on type \"User\".`, 3)
	if strings.Contains(old, "Worker consuming queue") || !strings.Contains(old, `"name":"GRAPHQL_VALIDATION_FAILED"`) {
		t.Errorf("6.9.28 worker against 7.x:\n%s", old)
	}
	runWorker(t, base, v7, "Worker consuming queue", 1)
	r.stop(t)

	// Another key: every token breaks but the admin's, set again at boot.
	cfg.EncryptionKey = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("another key of 32 bytes or more!", 2)))
	again := start(cfg, v7)
	base = again.waitReady(t)
	checkSequence(t, sequenceAfter(t, again.log.String(), "[INIT] Existing platform detected, initialization..."),
		[]string{"[MIGRATION] Read 5 migrations from the database", "[MIGRATION] Platform already up to date, nothing to migrate",
			"[MIGRATION] Migration process completed", "[MIGRATION] Platform version updated to " + v7}, again.log.String())
	if _, name := meID(t, base, token); name != "AUTH_REQUIRED" {
		t.Errorf("connector user's token under another key: %q, want AUTH_REQUIRED", name)
	}
	if id, _ := meID(t, base, testToken); id != adminUserID {
		t.Errorf("APP__ADMIN__TOKEN under another key: %q", id)
	}
	again.stop(t)
}

// tokenKeyFor is cfg's token key as a binary of version would use it.
func (c Config) tokenKeyFor(version string) []byte {
	c.Version = version
	return c.tokenKey()
}

// runWorker runs the worker stand-in of a version against base with the admin
// token until its log holds want n times, and returns the log.
func runWorker(t *testing.T, base, version, want string, n int) string {
	t.Helper()
	var out standinlog.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- workerstandin.Run(ctx, workerstandin.Config{URL: base, Token: testToken, Version: version,
			PollInterval: 50 * time.Millisecond, Stdout: &out})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker %s: %v", version, err)
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); strings.Count(out.String(), want) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("worker %s: fewer than %d × %q in 20s:\n%s", version, n, want, out.String())
		}
	}
	return out.String()
}

// TestStackMigrationsKeepTheLockAndRecordEachStep watches an upgrade whose
// migrations outlast the lock's TTL three times: the lock child keeps extending
// platform_init_lock throughout, and lastRun advances migration by migration,
// each with its MigrationReference right after.
func TestStackMigrationsKeepTheLockAndRecordEachStep(t *testing.T) {
	cfg := stackConfig(t)
	requireAnalysisCommon(t, cfg)
	existing6(t, cfg)
	cfg.Timings.Migration, cfg.Timings.MigrationStep = 0, 700*time.Millisecond
	cfg.Timings.LockTTL, cfg.Timings.LockLinger = time.Second, time.Second
	plan := titles(plannedMigrations("6.9.28", v7, DefaultMigrations))

	b, _ := newBackends(cfg)
	defer b.close()
	key := cfg.Redis.Namespace + ":{locks}:platform_init_lock"
	r := start(cfg, v7)
	r.waitLog(t, "[MIGRATION] 5 migrations will be executed")
	var seen []string
	minTTL := time.Hour
	for !strings.Contains(r.log.String(), "[MIGRATION] Migration process completed") {
		ctx := context.Background()
		ttl, err := b.redis.client.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 {
			r.cancel()
			t.Fatalf("platform_init_lock gone during the migrations (PTTL %s, %v):\n%s", ttl, err, r.log.String())
		}
		minTTL = min(minTTL, ttl)
		ms, refs := stored(t, cfg)
		if n := len(seen); n == 0 || seen[n-1] != ms.LastRun {
			seen = append(seen, ms.LastRun)
			// The reference follows lastRun: at most one save in between.
			if done := indexOf(plan, ms.LastRun) + 1; len(refs) != done && len(refs) != done-1 {
				t.Errorf("lastRun %s with %d references", ms.LastRun, len(refs))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.waitReady(t)
	t.Logf("lastRun seen: %v; lowest lock TTL %s", seen, minTTL)
	var steps []string
	for _, s := range seen {
		if indexOf(plan, s) >= 0 {
			steps = append(steps, s)
		}
	}
	if len(steps) < 3 || !isSubsequence(steps, plan) {
		t.Errorf("lastRun went %v, want ≥ 3 steps through %v", seen, plan)
	}
	if n, _ := b.redis.client.Exists(context.Background(), key).Result(); n != 0 {
		t.Error("init lock still held after the upgrade")
	}
	r.stop(t)
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// isSubsequence reports whether sub's items appear in list in order.
func isSubsequence(sub, list []string) bool {
	i := 0
	for _, v := range list {
		if i < len(sub) && sub[i] == v {
			i++
		}
	}
	return i == len(sub)
}

// TestStackInterruptedUpgradeResumesAndReplays reproduces §8's restart numbers.
// The upgrade ran once (5 references); the MigrationStatus alone was put back
// to 6.9.28 (as a restore of that one document would) while the references
// stayed; the upgrade runs again — "Read 5", all 5 replayed — and is stopped
// after its second migration (7 references). A start within the lock's TTL
// fails with LOCK_ERROR; after it, the start reads 7 references, runs the 3
// migrations after lastRun, replays them, and completes.
func TestStackInterruptedUpgradeResumesAndReplays(t *testing.T) {
	cfg := stackConfig(t)
	requireAnalysisCommon(t, cfg)
	_, token := existing6(t, cfg)
	cfg.Timings.Migration, cfg.Timings.MigrationStep = 0, 300*time.Millisecond
	cfg.Timings.LockTTL, cfg.Timings.LockLinger, cfg.Timings.LockRetry = 2*time.Second, time.Second, time.Second
	plan := plannedMigrations("6.9.28", v7, DefaultMigrations)

	first := start(cfg, v7)
	first.waitReady(t)
	first.stop(t)
	ms, _ := stored(t, cfg)
	ms.LastRun, ms.PlatformVersion = migrationTime("6.9.28")+"-init", "6.9.28"
	b, _ := newBackends(cfg)
	defer b.close()
	if err := b.search.putDoc(context.Background(), b.search.internalObjects(), ms.InternalID, ms); err != nil {
		t.Fatal(err)
	}

	second := start(cfg, v7)
	second.waitLog(t, "[MIGRATION] Saving current configuration, "+plan[1].title)
	second.cancel()
	if err := second.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped mid-migration: %v", err)
	}
	want := []string{"[MIGRATION] Read 5 migrations from the database", "[MIGRATION] 5 migrations will be executed"}
	for _, f := range plan {
		want = append(want, "[MIGRATION] Replaying migration "+f.title)
	}
	checkSequence(t, sequenceAfter(t, second.log.String(), "[INIT] Existing platform detected, initialization..."), want, second.log.String())
	if ms, refs := stored(t, cfg); len(refs) != 7 || ms.LastRun != plan[1].title || ms.PlatformVersion != "6.9.28" {
		t.Fatalf("after the interruption: %+v, %d references", ms, len(refs))
	}

	locked := start(cfg, v7)
	err := locked.wait(t)
	line := lastLine(t, locked.log.String())
	if !errors.Is(err, ErrLockHeld) || line.Message != "[OPENCTI] Platform default initialization failed" || line.Errors[0].Name != LockErrorName {
		t.Fatalf("start within the lock's TTL: %v\n%s", err, locked.log.String())
	}

	key := cfg.Redis.Namespace + ":{locks}:platform_init_lock"
	for deadline := time.Now().Add(cfg.Timings.LockLinger + cfg.Timings.LockTTL + 5*time.Second); ; time.Sleep(100 * time.Millisecond) {
		if n, _ := b.redis.client.Exists(context.Background(), key).Result(); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the interrupted start's lock never expired")
		}
	}
	resumed := start(cfg, v7)
	base := resumed.waitReady(t)
	want = []string{"[MIGRATION] Read 7 migrations from the database", "[MIGRATION] 3 migrations will be executed"}
	for _, f := range plan[2:] {
		want = append(want, "[MIGRATION] Replaying migration "+f.title)
	}
	for _, f := range plan[2:] {
		want = append(want, "[MIGRATION] Saving current configuration, "+f.title)
	}
	want = append(want, "[MIGRATION] Migration process completed", "[MIGRATION] Platform version updated to "+v7)
	checkSequence(t, sequenceAfter(t, resumed.log.String(), "[INIT] Existing platform detected, initialization..."), want, resumed.log.String())
	if _, refs := stored(t, cfg); len(refs) != 10 {
		t.Errorf("%d references after the resume, want 10", len(refs))
	}
	if _, name := meID(t, base, token); name != "" {
		t.Errorf("connector token after a replayed legacy_token_migration: %s", name)
	}
	resumed.stop(t)
}

// TestStackFailingMigrationStopsTheStart: -fail-migration 3 fails the third
// migration as a throwing migration does — "Migration up error", the lock
// released in platformInit's finally, "[OPENCTI] Platform default initialization
// failed" with the cause — and leaves the first two recorded and the version
// unchanged: nothing is rolled back. The next start without the failure runs
// the remaining three.
func TestStackFailingMigrationStopsTheStart(t *testing.T) {
	cfg := stackConfig(t)
	requireAnalysisCommon(t, cfg)
	userID, token := existing6(t, cfg)
	cfg.Timings.Migration, cfg.Timings.MigrationStep, cfg.FailMigration = 0, 50*time.Millisecond, "3"
	plan := plannedMigrations("6.9.28", v7, DefaultMigrations)

	r := start(cfg, v7)
	err := r.wait(t)
	if !errors.Is(err, ErrMigrationFailed) || !strings.Contains(err.Error(), plan[2].title) {
		t.Fatalf("err = %v, want the third migration's failure\n%s", err, r.log.String())
	}
	got := sequenceAfter(t, r.log.String(), "[INIT] Existing platform detected, initialization...")
	checkSequence(t, got, []string{"[MIGRATION] Read 0 migrations from the database", "[MIGRATION] 5 migrations will be executed",
		"[MIGRATION] Saving current configuration, " + plan[0].title, "[MIGRATION] Saving current configuration, " + plan[1].title,
		"Migration up error", "[INIT] Platform initialization done", "[OPENCTI] Platform default initialization failed"}, r.log.String())
	if len(got) != 7 {
		t.Errorf("lines after the failure: %v", got[7:])
	}
	for _, l := range messages(t, r.log.String()) {
		if (l.Message == "Migration up error" || l.Message == "[OPENCTI] Platform default initialization failed") &&
			(l.Level != "error" || len(l.Errors) != 1 || l.Errors[0].Name != "Error" || !strings.Contains(l.Errors[0].Message, plan[2].title)) {
			t.Errorf("error line %+v", l)
		}
	}
	b, _ := newBackends(cfg)
	defer b.close()
	if n, _ := b.redis.client.Exists(context.Background(), cfg.Redis.Namespace+":{locks}:platform_init_lock").Result(); n != 0 {
		t.Error("init lock held after a failed migration: OpenCTI's finally releases it")
	}
	ms, refs := stored(t, cfg)
	if ms.LastRun != plan[1].title || ms.PlatformVersion != "6.9.28" || len(refs) != 2 {
		t.Errorf("after the failure: %+v, references %v", ms, refs)
	}
	var u userDoc
	_, _ = newSearchObjects(b.search).get(context.Background(), entityUser, userID, &u)
	if u.APIToken != token {
		t.Error("the legacy_token_migration ran although an earlier migration failed")
	}

	cfg.FailMigration = ""
	again := start(cfg, v7)
	again.waitReady(t)
	checkSequence(t, sequenceAfter(t, again.log.String(), "[INIT] Existing platform detected, initialization..."),
		[]string{"[MIGRATION] Read 2 migrations from the database", "[MIGRATION] 3 migrations will be executed",
			"[MIGRATION] Saving current configuration, " + plan[2].title}, again.log.String())
	again.stop(t)
}
