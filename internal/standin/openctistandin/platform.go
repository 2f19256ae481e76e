package openctistandin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// adminUserID is OpenCTI's fixed internal id of the built-in admin user
// (OPENCTI_ADMIN_UUID), so tooling that knows it finds the same id here.
const adminUserID = "88ec0c6a-13ce-5e39-b486-354fe4a7084f"

// Shares of Timings.Init at which a first boot passes its steps: the schema is
// created over the first 10 %, the admin user (and token check) comes at 36 %,
// which with the real figures is ≈ 40 s after the process started.
const (
	schemaShare = 0.10
	adminShare  = 0.36
)

// platformState is what the API needs from initialisation.
type platformState struct {
	settingsID string
	platformID string
}

// initializer is the lock-protected part of start-up, OpenCTI's platformInit.
type initializer struct {
	cfg    Config
	log    *slog.Logger
	b      *backends
	engine string // "opensearch - 2.19.3"
	// child is the init lock's child process, which a frozen platform stops too.
	child *lockChild
}

// run decides between first boot and existing platform from the MigrationStatus
// document alone, as OpenCTI's isExistingPlatform does.
func (in *initializer) run(ctx context.Context) (platformState, error) {
	in.log.Info("[INIT] Starting platform initialization")
	ms, found, err := in.b.search.readMigrationStatus(ctx)
	if err != nil {
		return platformState{}, err
	}
	if !found {
		return in.firstBoot(ctx)
	}
	return in.existing(ctx, ms)
}

// firstBoot follows OpenCTI's order: queues, bucket, schema, then the
// MigrationStatus right after the schema (so a kill after that point leaves a
// half-initialised platform that later boots as existing), data, admin user.
func (in *initializer) firstBoot(ctx context.Context) (platformState, error) {
	start := time.Now()
	init := in.cfg.Timings.Init
	in.log.Info("[INIT] New platform detected, initialization...")
	if err := in.b.rabbit.initializeQueues(ctx); err != nil {
		return platformState{}, err
	}
	if err := in.b.s3.ensureBucket(ctx); err != nil {
		return platformState{}, err
	}
	if err := in.initializeSchema(ctx, time.Duration(float64(init)*schemaShare)); err != nil {
		return platformState{}, err
	}
	in.log.Info("[INIT] Creating migration structure")
	now := nowISO()
	id := uuid.NewString()
	ms := migrationStatus{InternalID: id, StandardID: "internal-object--" + id, EntityType: "MigrationStatus",
		ParentTypes: internalObjectParentTypes, PlatformVersion: in.cfg.Version,
		LastRun: migrationTime(in.cfg.Version) + "-init", CreatedAt: now, UpdatedAt: now}
	if err := in.b.search.putDoc(ctx, in.b.search.internalObjects(), ms.InternalID, ms); err != nil {
		return platformState{}, err
	}
	// initializeData: the long, silent part of a first boot.
	if err := sleepCtx(ctx, time.Duration(float64(init)*adminShare)-time.Since(start)); err != nil {
		return platformState{}, err
	}
	if err := checkAdminToken(in.cfg.AdminToken); err != nil {
		return platformState{}, err
	}
	st, err := in.writeEntities(ctx)
	if err != nil {
		return platformState{}, err
	}
	if err := sleepCtx(ctx, init-time.Since(start)); err != nil {
		return platformState{}, err
	}
	return st, nil
}

// initializeSchema is OpenCTI's: refuse indices of an earlier attempt, then the
// component template, the ISM policy, and per index its template and its
// rollover index with alias, spread over d.
func (in *initializer) initializeSchema(ctx context.Context, d time.Duration) error {
	s := in.b.search
	exists, err := s.indexExists(ctx, s.internalObjects())
	if err != nil {
		return err
	}
	if exists {
		return errIndexExists(nil)
	}
	if err := s.createCoreSettings(ctx); err != nil {
		return err
	}
	ism, err := in.lifecyclePolicy(ctx)
	if err != nil {
		return err
	}
	step := d / time.Duration(len(indexNames))
	for _, name := range indexNames {
		if err := sleepCtx(ctx, step); err != nil {
			return err
		}
		if err := s.putIndexTemplate(ctx, name, ism); err != nil {
			return err
		}
		if err := s.createIndex(ctx, name); err != nil {
			return err
		}
	}
	in.log.Info("[INIT] Search engine indexes loaded")
	return nil
}

// lifecyclePolicy installs the ISM policy on OpenSearch. Without the
// index-management plugin the real platform fails ("Creating lifecycle policy
// fail"); the plugin cannot be installed on the local stack, so the stand-in
// skips it (and the templates' rollover alias setting, which the plugin
// defines) with a warning — its one documented kindness. It reports whether
// the policy is in place.
func (in *initializer) lifecyclePolicy(ctx context.Context) (bool, error) {
	if !isOpenSearch(in.engine) {
		in.log.Warn("[SEARCH] Elasticsearch ILM policy is not implemented by the stand-in, skipping")
		return false, nil
	}
	ok, err := in.b.search.hasISM(ctx)
	if err != nil {
		return false, newError(DatabaseErrorName, "Creating lifecycle policy fail", err, nil, nil)
	}
	if !ok {
		in.log.Warn("[SEARCH] index-management plugin missing, skipping the ISM policy (stand-in only: OpenCTI fails with \"Creating lifecycle policy fail\")",
			"policy", in.b.search.ismPolicy())
		return false, nil
	}
	return true, in.b.search.createISMPolicy(ctx)
}

// existing is OpenCTI's existing-platform path: refresh the mappings (rewriting
// every template, even on a refused downgrade), the queues, then refuse data
// that is too recent, check the admin token and apply the migrations — on every
// boot, as OpenCTI does, so a boot on the same version logs that nothing is to
// migrate.
func (in *initializer) existing(ctx context.Context, ms migrationStatus) (platformState, error) {
	in.log.Info("[INIT] Existing platform detected, initialization...")
	if ms.PlatformVersion != in.cfg.Version {
		// The mapping refresh of a version change: long and without log lines.
		if err := sleepCtx(ctx, in.cfg.Timings.Migration); err != nil {
			return platformState{}, err
		}
	}
	s := in.b.search
	if err := s.createCoreSettings(ctx); err != nil {
		return platformState{}, err
	}
	ism := false
	if isOpenSearch(in.engine) {
		var err error
		if ism, err = s.hasISM(ctx); err != nil {
			return platformState{}, err
		}
	}
	for _, name := range indexNames {
		if err := s.putIndexTemplate(ctx, name, ism); err != nil {
			return platformState{}, err
		}
	}
	if err := in.b.rabbit.initializeQueues(ctx); err != nil {
		return platformState{}, err
	}
	cmp, err := compareVersions(ms.PlatformVersion, in.cfg.Version)
	if err != nil {
		return platformState{}, fmt.Errorf("cannot compare stored platform version: %w", err)
	}
	if cmp > 0 {
		return platformState{}, newError(UnsupportedErrorName, "Your platform data are too recent to start on", nil, ErrDataTooRecent,
			map[string]any{"currentVersion": ms.PlatformVersion, "runtimeVersion": in.cfg.Version})
	}
	if err := checkAdminToken(in.cfg.AdminToken); err != nil {
		return platformState{}, err
	}
	if err := in.applyMigration(ctx, ms); err != nil {
		return platformState{}, err
	}
	return in.writeEntities(ctx)
}

// writeEntities ensures the built-in groups, the admin user and the settings
// entity, returning the settings id the API reports.
func (in *initializer) writeEntities(ctx context.Context) (platformState, error) {
	s := in.b.search
	if err := ensureDirectory(ctx, newSearchObjects(s), in.cfg.AdminEmail, in.cfg.AdminToken, in.cfg.tokenKey()); err != nil {
		return platformState{}, err
	}
	var settings struct {
		InternalID string `json:"internal_id"`
		PlatformID string `json:"platform_id"`
	}
	found, err := s.findEntity(ctx, "Settings", &settings)
	if err != nil {
		return platformState{}, err
	}
	if !found {
		settings.InternalID, settings.PlatformID = uuid.NewString(), uuid.NewString()
		doc := map[string]any{"internal_id": settings.InternalID, "entity_type": "Settings", "platform_id": settings.PlatformID,
			"platform_url": in.cfg.BaseURL, "created_at": nowISO()}
		if err := s.putDoc(ctx, s.internalObjects(), settings.InternalID, doc); err != nil {
			return platformState{}, err
		}
	}
	return platformState{settingsID: settings.InternalID, platformID: settings.PlatformID}, nil
}

// findEntity loads the first internal object of a type into out.
func (s *searchBackend) findEntity(ctx context.Context, entityType string, out any) (bool, error) {
	docs, err := s.entitySources(ctx, s.internalObjects(), entityType, 1, nil)
	if err != nil || len(docs) == 0 {
		return false, err
	}
	return true, json.Unmarshal(docs[0], out)
}

// jsUUID is the uuid package's validate(): any version, canonical form only.
var jsUUID = regexp.MustCompile(`(?i)^(?:[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$`)

// checkAdminToken is initializeAdminUser's check, made late in the boot.
func checkAdminToken(token string) error {
	if token == "" {
		return newError(ConfigurationErrorName, "You need to configure the environment vars", nil, ErrInvalidToken, nil)
	}
	if !jsUUID.MatchString(token) {
		return newError(ConfigurationErrorName, "Token must be a valid UUID", nil, ErrInvalidToken, nil)
	}
	return nil
}
