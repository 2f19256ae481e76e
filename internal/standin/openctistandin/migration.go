package openctistandin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// Migrations as OpenCTI's opencti-platform/opencti-graphql/src/database/
// migration.js runs them (the `migrate` library over the migration files of the
// build), with the log lines of its source word for word:
//
//   - load: "[MIGRATION] Read N migrations from the database", N the
//     MigrationReference documents recorded so far (never deleted);
//   - the files to run are those whose timestamp is after MigrationStatus.lastRun:
//     "[MIGRATION] M migrations will be executed", or "[MIGRATION] Platform
//     already up to date, nothing to migrate";
//   - each of them that already has a reference of the same title is announced
//     with "[MIGRATION] Replaying migration <file>";
//   - each runs, then is saved: lastRun patched, then its MigrationReference
//     created, then "[MIGRATION] Saving current configuration, <file>" (a save
//     that fails logs "Error handling migration" and the run goes on);
//   - a migration that fails stops the run: "Migration up error", nothing rolled
//     back, the error rejected up to platformInit;
//   - then "[MIGRATION] Migration process completed", platformVersion patched,
//     "[MIGRATION] Platform version updated to X".
//
// Because lastRun is patched before the reference is written, a kill leaves at
// worst a migration counted done without its reference; the next start runs only
// the files after lastRun. "Replaying" appears when a file after lastRun already
// has a reference: data whose MigrationStatus was put back (restored alone, or
// patched by hand) while its references stayed. That is the one way the source
// allows §8's restart to read 7 references, run 3 migrations of a 5-migration
// upgrade and replay them; a plain kill and resume reads 2 and runs 3 without
// replaying (both are tested).

// DefaultMigrations is how many migrations a version change runs when
// Config.Migrations is not set: the 5 of §8's 6.9.28 -> 7.260318.0 upgrade.
const DefaultMigrations = 5

// ErrMigrationFailed marks a start stopped by a failing migration (see
// Config.FailMigration); the migrations before it stay recorded.
var ErrMigrationFailed = errors.New("migration failed")

// legacyTokenMigration is the 7.x migration that turns every user's api_token
// into an HMAC under api_tokens (§8); the last of a 6.x -> 7.x upgrade.
const legacyTokenMigration = "legacy_token_migration"

// migrationNames name the other migrations of a version change. OpenCTI's real
// file names differ from release to release; these only give each file of the
// stand-in's builds a stable, readable name.
var migrationNames = []string{
	"entity_settings_attributes", "capabilities_refresh", "decay_rules_update", "connector_queue_details",
	"playbook_components", "notifier_templates", "internal_files_index", "background_tasks_cleanup",
}

// migrationFile is one file of a build's migrations directory.
type migrationFile struct {
	title     string // "<timestamp>-<name>.js"
	timestamp int64  // epoch ms, the title's prefix
	name      string
}

// plannedMigrations are the n migration files a build of version to has after
// the newest of a build of version from, the last one at to's own newest
// migration time; none when to is not newer. They depend on the two versions
// only, so a start that resumes an interrupted upgrade finds the same files.
func plannedMigrations(from, to string, n int) []migrationFile {
	lo, hi := migrationMillis(from), migrationMillis(to)
	if hi <= lo || n <= 0 {
		return nil
	}
	if int64(n) > hi-lo {
		n = int(hi - lo)
	}
	crossesTo7 := majorOf(from) < 7 && majorOf(to) >= 7
	out := make([]migrationFile, n)
	for i := range out {
		ts := lo + (hi-lo)*int64(i+1)/int64(n)
		name := migrationNames[i%len(migrationNames)]
		if crossesTo7 && i == n-1 {
			name = legacyTokenMigration
		}
		out[i] = migrationFile{title: fmt.Sprintf("%d-%s.js", ts, name), timestamp: ts, name: name}
	}
	return out
}

// majorOf is a version's first component, 0 when it does not parse.
func majorOf(version string) int {
	v, err := parseVersion(version)
	if err != nil {
		return 0
	}
	return v[0]
}

// migrationTime is the newest migration of a build, as the epoch-ms prefix of
// its migration file: a fresh init stores it in lastRun with "-init".
func migrationTime(version string) string {
	return strconv.FormatInt(migrationMillis(version), 10)
}

// migrationMillis is monotonic in the version so that upgrades have migrations
// to run. A 7.x date release (7.YYMMDD.P) uses its date, like the real files of
// that release; other versions a synthetic time that stays below 2026 for 6.x.
func migrationMillis(version string) int64 {
	v, err := parseVersion(version)
	if err != nil || len(v) == 0 {
		return 1_700_000_000_000
	}
	if len(v) > 1 && v[0] >= 7 && v[1] >= 100000 && v[1] <= 999999 {
		if d, err := time.Parse("060102", fmt.Sprintf("%06d", v[1])); err == nil {
			t := d.UnixMilli()
			if len(v) > 2 {
				t += int64(v[2]) * 10_000
			}
			return t
		}
	}
	t := int64(1_700_000_000_000) + int64(v[0])*10_000_000_000
	if len(v) > 1 {
		t += int64(v[1]) * 10_000_000
	}
	if len(v) > 2 {
		t += int64(v[2]) * 10_000
	}
	return t
}

// lastRunMillis is the time of MigrationStatus.lastRun ("<ms>-<name>.js" or
// "<ms>-init"); ok is false when it does not parse, which in node is NaN: no
// file is "after" it, so nothing runs.
func lastRunMillis(lastRun string) (int64, bool) {
	head, _, _ := strings.Cut(lastRun, "-")
	ms, err := strconv.ParseInt(head, 10, 64)
	return ms, err == nil
}

// migrationReference is a MigrationReference document: one per applied
// migration, never removed.
type migrationReference struct {
	InternalID  string   `json:"internal_id"`
	StandardID  string   `json:"standard_id"`
	EntityType  string   `json:"entity_type"`
	ParentTypes []string `json:"parent_types"`
	Title       string   `json:"title"`
	Timestamp   int64    `json:"timestamp"`
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
}

// entityMigrationReference is the entity type of migrationReference.
const entityMigrationReference = "MigrationReference"

// migrationReferences loads every MigrationReference of the platform.
func (s *searchBackend) migrationReferences(ctx context.Context) ([]migrationReference, error) {
	raw, err := s.entitySources(ctx, s.internalObjects(), entityMigrationReference, maxListedObjects, nil)
	if err != nil {
		return nil, err
	}
	out := make([]migrationReference, 0, len(raw))
	for _, r := range raw {
		var ref migrationReference
		if err := json.Unmarshal(r, &ref); err != nil {
			return nil, fmt.Errorf("cannot decode a MigrationReference: %w", err)
		}
		out = append(out, ref)
	}
	return out, nil
}

// applyMigration is OpenCTI's applyMigration on an existing platform (see the
// top of this file); ms is the MigrationStatus read at the start of init.
func (in *initializer) applyMigration(ctx context.Context, ms migrationStatus) error {
	s := in.b.search
	refs, err := s.migrationReferences(ctx)
	if err != nil {
		return newError(DatabaseErrorName, "[MIGRATION] Error applying migration", err, nil, nil)
	}
	in.log.Info(fmt.Sprintf("[MIGRATION] Read %d migrations from the database", len(refs)))
	applied := make(map[string]bool, len(refs))
	for _, r := range refs {
		applied[r.Title] = true
	}
	files := plannedMigrations(ms.PlatformVersion, in.cfg.Version, in.cfg.Migrations)
	var toApply []migrationFile
	if last, ok := lastRunMillis(ms.LastRun); ok {
		for _, f := range files {
			if f.timestamp > last {
				toApply = append(toApply, f)
			}
		}
	}
	if len(toApply) > 0 {
		in.log.Info(fmt.Sprintf("[MIGRATION] %d migrations will be executed", len(toApply)))
	} else {
		in.log.Info("[MIGRATION] Platform already up to date, nothing to migrate")
	}
	for _, f := range toApply {
		if applied[f.title] {
			in.log.Info("[MIGRATION] Replaying migration " + f.title)
		}
	}
	for _, f := range toApply {
		if err := in.runMigration(ctx, f, files); err != nil {
			if ctx.Err() == nil {
				logFailure(in.log, "Migration up error", err)
			}
			return err
		}
		if err := in.saveMigration(ctx, &ms, f); err != nil {
			if ctx.Err() != nil {
				return err
			}
			// migrationStorage.save catches and goes on with the next migration.
			logFailure(in.log, "Error handling migration", err)
		}
	}
	in.log.Info("[MIGRATION] Migration process completed")
	ms.PlatformVersion, ms.UpdatedAt = in.cfg.Version, nowISO()
	if err := s.putDoc(ctx, s.internalObjects(), ms.InternalID, ms); err != nil {
		return err
	}
	in.log.Info("[MIGRATION] Platform version updated to " + in.cfg.Version)
	return nil
}

// runMigration is one migration's up: MigrationStep long, then its work (the
// legacy token migration rewrites the users); it fails when Config.FailMigration
// names it, by position among files or by part of its title.
func (in *initializer) runMigration(ctx context.Context, f migrationFile, files []migrationFile) error {
	if err := sleepCtx(ctx, in.cfg.Timings.MigrationStep); err != nil {
		return err
	}
	if names(in.cfg.HangMigration, f, files) {
		in.freeze()
	}
	if names(in.cfg.FailMigration, f, files) {
		// A migration's up throws a plain Error in node: name "Error".
		return fmt.Errorf("%w: %s (injected by -fail-migration)", ErrMigrationFailed, f.title)
	}
	if f.name == legacyTokenMigration {
		return migrateLegacyTokens(ctx, newSearchObjects(in.b.search), in.cfg.tokenKey())
	}
	return nil
}

// names reports whether want (a 1-based position among files or a part of a file's
// title, as -fail-migration and -hang-migration take it) names f.
func names(want string, f migrationFile, files []migrationFile) bool {
	want = strings.TrimSpace(want)
	if want == "" {
		return false
	}
	if n, err := strconv.Atoi(want); err == nil {
		return n >= 1 && n <= len(files) && files[n-1].title == f.title
	}
	return strings.Contains(f.title, want)
}

// freeze is a platform frozen mid-migration: its lock child is stopped (SIGSTOP), so
// the init lock is no longer refreshed, and this process never goes on nor handles
// SIGTERM; Pebble's SIGKILL to the process group ends both.
func (in *initializer) freeze() {
	if in.child != nil && in.child.cmd.Process != nil {
		_ = in.child.cmd.Process.Signal(syscall.SIGSTOP)
	}
	select {}
}

// saveMigration is migrationStorage.save: lastRun first, then the reference.
func (in *initializer) saveMigration(ctx context.Context, ms *migrationStatus, f migrationFile) error {
	s := in.b.search
	ms.LastRun, ms.UpdatedAt = f.title, nowISO()
	if err := s.putDoc(ctx, s.internalObjects(), ms.InternalID, *ms); err != nil {
		return err
	}
	id, now := uuid.NewString(), nowISO()
	ref := migrationReference{InternalID: id, StandardID: "internal-object--" + id, EntityType: entityMigrationReference,
		ParentTypes: internalObjectParentTypes, Title: f.title, Timestamp: f.timestamp, CreatedAt: now, UpdatedAt: now}
	if err := s.putDoc(ctx, s.internalObjects(), id, ref); err != nil {
		return err
	}
	in.log.Info("[MIGRATION] Saving current configuration, " + f.title)
	return nil
}
