package openctistandin

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPlannedMigrations(t *testing.T) {
	files := plannedMigrations("6.9.28", v7, DefaultMigrations)
	if len(files) != 5 {
		t.Fatalf("%d migrations from 6.9.28 to %s, want 5", len(files), v7)
	}
	prev := migrationMillis("6.9.28")
	for i, f := range files {
		if f.timestamp <= prev || f.title != fmt.Sprintf("%d-%s.js", f.timestamp, f.name) {
			t.Errorf("file %d = %+v after %d", i, f, prev)
		}
		prev = f.timestamp
	}
	if last := files[4]; last.name != legacyTokenMigration || fmt.Sprint(last.timestamp) != migrationTime(v7) {
		t.Errorf("last migration = %+v, want the legacy_token_migration at %s", last, migrationTime(v7))
	}
	// 2026-03-18, the release's date, as the real files of that release.
	if got := time.UnixMilli(files[4].timestamp).UTC().Format(time.DateOnly); got != "2026-03-18" {
		t.Errorf("7.260318.0's newest migration is dated %s", got)
	}
	again := plannedMigrations("6.9.28", v7, DefaultMigrations)
	for i := range files {
		if again[i] != files[i] {
			t.Errorf("the files of one upgrade differ between two starts: %+v vs %+v", files[i], again[i])
		}
	}
	for _, tc := range []struct {
		from, to string
		n        int
		legacy   bool
	}{
		{"7.260224.0", v7, 5, false},
		{"6.9.3", "6.9.28", 3, false},
		{"6.9.28", "6.9.28", 0, false},
		{v7, "6.9.28", 0, false},
		{"6.10.0", "7.260224.0", 5, true},
	} {
		got := plannedMigrations(tc.from, tc.to, tc.n)
		if len(got) != tc.n || (tc.n > 0 && (got[tc.n-1].name == legacyTokenMigration) != tc.legacy) {
			t.Errorf("%s -> %s: %+v", tc.from, tc.to, got)
		}
	}
}

func TestLastRunMillis(t *testing.T) {
	for lastRun, want := range map[string]int64{"1760090280000-init": 1760090280000, "1773792000000-legacy_token_migration.js": 1773792000000} {
		if got, ok := lastRunMillis(lastRun); !ok || got != want {
			t.Errorf("lastRunMillis(%q) = %d, %v", lastRun, got, ok)
		}
	}
	if _, ok := lastRunMillis("garbage"); ok {
		t.Error("garbage lastRun parsed")
	}
}

func TestFailMigrationByPositionOrName(t *testing.T) {
	files := plannedMigrations("6.9.28", v7, 5)
	for _, tc := range []struct {
		fail string
		want int // index failing, -1 none
	}{{"", -1}, {"3", 2}, {"5", 4}, {"6", -1}, {"0", -1}, {"legacy_token_migration", 4}, {files[1].title, 1}, {"no-such", -1}} {
		for i, f := range files {
			if got := names(tc.fail, f, files); got != (i == tc.want) {
				t.Errorf("-fail-migration %q: migration %d failing = %v", tc.fail, i+1, got)
			}
		}
	}
}

// TestMigrationTimingsAreTheRealOnes pins the defaults to §8's 38 s upgrade on a
// small dataset: 4 s start, 5 s lock child, 21 s silent refresh (30 s silent
// from start), 5 migrations of 200 ms, 7 s to the port.
func TestMigrationTimingsAreTheRealOnes(t *testing.T) {
	r := RealTimings()
	if r.MigrationStep != 200*time.Millisecond || DefaultMigrations != 5 ||
		r.Start+r.Fork+r.Migration+DefaultMigrations*r.MigrationStep+r.Ready != 38*time.Second ||
		r.Start+r.Fork+r.Migration != 30*time.Second {
		t.Errorf("real timings %+v do not add up to §8's upgrade", r)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	got := AddFlags(fs)
	if err := fs.Parse(nil); err != nil || *got != r {
		t.Errorf("flag defaults %+v, want %+v", *got, r)
	}
	if f := fs.Lookup("migration-step-delay"); f == nil || !strings.Contains(f.Usage, "migration") {
		t.Error("no -migration-step-delay flag")
	}
	if (Config{}).withDefaults().Migrations != DefaultMigrations {
		t.Error("Config.Migrations does not default to 5")
	}
}
