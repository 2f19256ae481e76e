package workflows

import (
	"testing"
	"time"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
)

// TestDriftReadsFromTheSpecToTheContainer: a dry-run apply says what it would do to
// the container; drift says what was done to it by hand, the other way round.
func TestDriftReadsFromTheSpecToTheContainer(t *testing.T) {
	d := driftOf(activities.PebbleLayerChanges{
		Changed: []layer.Change{{Kind: layer.Changed, Service: "worker-0", Fields: []string{"environment"},
			Env: []layer.EnvChange{{Key: "WORKER_LOG_LEVEL", Kind: layer.Changed, Old: "debug", New: "info"}, {Key: "EXTRA", Kind: layer.Removed, Old: "x"}}}},
		Added:   []string{"worker-2"},
		Removed: []string{"sidecar"},
	})
	want := "worker-0: environment (WORKER_LOG_LEVEL info -> debug; EXTRA  -> x); worker-2 removed; sidecar added"
	if got := describeDrift(d); got != want {
		t.Errorf("drift = %q\nwant    %q", got, want)
	}
}

// TestHealBucket: the bucket starts full, spends one token a heal and earns one back
// every RefillEvery, never above Burst.
func TestHealBucket(t *testing.T) {
	w := &instance{}
	pol := HealPolicy{Burst: 3, RefillEvery: time.Minute}.withDefaults()
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	w.refill(t0, pol)
	if w.st.Heals.Tokens != 3 {
		t.Fatalf("a new bucket holds %v, want 3", w.st.Heals.Tokens)
	}
	w.st.Heals.Tokens -= 3
	w.refill(t0.Add(90*time.Second), pol)
	if got := w.st.Heals.Tokens; got != 1.5 {
		t.Errorf("after 90 s: %v tokens, want 1.5", got)
	}
	w.refill(t0.Add(time.Hour), pol)
	if got := w.st.Heals.Tokens; got != 3 {
		t.Errorf("after an hour: %v tokens, want the burst, 3", got)
	}
	if p := (HealPolicy{}).withDefaults(); p.Burst != DefaultHealBurst || p.Limit != DefaultHealLimit || p.Window != DefaultHealWindow || p.RefillEvery != DefaultHealRefillEvery {
		t.Errorf("default policy %+v", p)
	}
}

// TestHealthStatus: escalations block, naming each; otherwise what is down makes the
// instance wait, with its reason and since when; nothing down, no health status.
func TestHealthStatus(t *testing.T) {
	since := time.Date(2026, 11, 30, 10, 42, 7, 0, time.UTC)
	w := &instance{}
	if _, ok := w.healthStatus(); ok {
		t.Error("an instance never checked has a health status")
	}
	w.st.Health = &HealthReport{Components: []ComponentHealth{{Name: "redis", Health: HealthDown, Reason: "dial tcp: connection refused"}, {Name: "s3", Health: HealthOK}}}
	w.st.DownSince = map[string]time.Time{"redis": since}
	s, ok := w.healthStatus()
	if !ok || s.Kind != StatusWaiting || s.Message != "redis: dial tcp: connection refused since 10:42:07" {
		t.Errorf("redis down: %+v", s)
	}
	w.st.Heals.Escalated = map[string]string{"worker-1": "worker-1 restarted 5 times in 10m0s: service error"}
	if s, ok := w.healthStatus(); !ok || s.Kind != StatusBlocked || s.Step != stepHealth {
		t.Errorf("escalated: %+v", s)
	}
}
