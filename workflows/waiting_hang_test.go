package workflows

import (
	"testing"
	"time"

	"github.com/socflow/socflow/activities"
)

// TestHangWatch: a migration is alive while its lines move or its init lock is
// refreshed; with neither, the quiet time grows; a round that is not migrating
// starts the watch over.
func TestHangWatch(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	signs := func(progress string, ttl, read int) *activities.MigrationSigns {
		return &activities.MigrationSigns{Progress: progress, LockTTL: time.Duration(ttl) * time.Second, ReadAt: at(read)}
	}
	var h hangWatch
	for i, step := range []struct {
		now   int
		signs *activities.MigrationSigns
		quiet int
	}{
		{0, signs("migrating: 1 of 5", 60, 0), 0},
		{20, signs("migrating: 1 of 5", 55, 20), 0},   // refreshed: 55 > 60-20
		{40, signs("migrating: 1 of 5", 35, 40), 20},  // decayed, not refreshed
		{50, signs("migrating: 2 of 5", 25, 50), 0},   // a new line
		{80, signs("migrating: 2 of 5", 0, 80), 30},   // lock expired, no line
		{100, signs("migrating: 2 of 5", 0, 100), 50}, // still nothing
		{110, nil, 0}, // not migrating any more
		{120, signs("migrating: 2 of 5", 0, 120), 0}, // a new watch
	} {
		if got := h.observe(at(step.now), step.signs); got != time.Duration(step.quiet)*time.Second {
			t.Errorf("step %d (t=%ds): quiet %s, want %ds", i, step.now, got, step.quiet)
		}
	}
}
