package openctistandin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// adminUserID is OpenCTI's fixed internal id of the built-in admin user
// (OPENCTI_ADMIN_UUID), so tooling that knows it finds the same id here.
const adminUserID = "88ec0c6a-13ce-5e39-b486-354fe4a7084f"

// initializer is the lock-protected part of start-up: first boot or migration.
type initializer struct {
	cfg    Config
	log    *slog.Logger
	search *searchBackend
	s3     *s3Backend
	rabbit *rabbitBackend
}

// run decides between first boot and existing platform, as OpenCTI does, from
// the settings document alone.
func (in *initializer) run(ctx context.Context) (settingsDoc, error) {
	doc, found, err := in.search.readSettings(ctx)
	if err != nil {
		return settingsDoc{}, err
	}
	if !found {
		return in.firstBoot(ctx)
	}
	return in.existing(ctx, doc)
}

// firstBoot creates the platform's state; the settings document is written last
// so that an interrupted first boot is never mistaken for a finished one, and
// the indices are created without an existence check so that such a boot leaves
// a platform that refuses to start until they are wiped — OpenCTI's behaviour,
// which the orchestrator must learn to avoid.
func (in *initializer) firstBoot(ctx context.Context) (settingsDoc, error) {
	start := time.Now()
	in.log.Info("[INIT] New platform detected, initialization...", "version", in.cfg.Version)
	for i, name := range in.search.indexNames() {
		if i > 0 {
			if err := sleepCtx(ctx, in.cfg.IndexDelay); err != nil {
				return settingsDoc{}, fmt.Errorf("cannot initialize platform: interrupted: %w", err)
			}
		}
		if err := in.search.createIndex(ctx, name); err != nil {
			if errors.Is(err, ErrIndexAlreadyExists) {
				// OpenCTI's own words, so runbooks written for it apply.
				in.log.Error("[INIT] Fail initialize schema, index already exists, previous initialization fail because you kill the platform before the end of the initialization process.",
					"category", "APP", "index", name)
			}
			return settingsDoc{}, fmt.Errorf("cannot initialize platform: %w", err)
		}
		in.log.Info("[INIT] Index created", "index", name)
	}
	if err := in.ensureBrokerAndStorage(ctx); err != nil {
		return settingsDoc{}, err
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	admin := map[string]any{
		"internal_id": adminUserID, "entity_type": "User", "name": "admin",
		"user_email": in.cfg.AdminEmail, "created_at": now,
	}
	if err := in.search.putDoc(ctx, in.search.internalIndex(), adminUserID, admin); err != nil {
		return settingsDoc{}, err
	}
	in.log.Info("[INIT] Admin user created", "email", in.cfg.AdminEmail)
	// Pad to -init-delay: real first boots take minutes, and the orchestrator's
	// handling of a slow, non-restartable init is what is under test.
	if err := sleepCtx(ctx, in.cfg.InitDelay-time.Since(start)); err != nil {
		return settingsDoc{}, fmt.Errorf("cannot initialize platform: interrupted: %w", err)
	}
	doc := settingsDoc{
		InternalID: uuid.NewString(), EntityType: "Settings",
		PlatformVersion: in.cfg.Version, CreatedAt: now, UpdatedAt: now,
	}
	if err := in.search.writeSettings(ctx, doc); err != nil {
		return settingsDoc{}, err
	}
	in.log.Info("[INIT] Platform initialization done", "version", in.cfg.Version, "duration", time.Since(start).Round(time.Millisecond).String())
	return doc, nil
}

// existing refuses downgrades, "migrates" upgrades by recording the new version,
// and re-ensures the idempotent broker and storage objects, as OpenCTI does on
// every start.
func (in *initializer) existing(ctx context.Context, doc settingsDoc) (settingsDoc, error) {
	cmp, err := compareVersions(doc.PlatformVersion, in.cfg.Version)
	if err != nil {
		return settingsDoc{}, fmt.Errorf("cannot compare stored platform version: %w", err)
	}
	switch {
	case cmp > 0:
		in.log.Error("Your platform data are too recent to start on this version",
			"category", "APP", "data_version", doc.PlatformVersion, "platform_version", in.cfg.Version)
		return settingsDoc{}, fmt.Errorf("%w (data %s, this binary %s)", ErrDataTooRecent, doc.PlatformVersion, in.cfg.Version)
	case cmp < 0:
		in.log.Info(fmt.Sprintf("[MIGRATION] Migrating platform from %s to %s", doc.PlatformVersion, in.cfg.Version))
		doc.PlatformVersion = in.cfg.Version
		doc.UpdatedAt = time.Now().UTC().Format(time.RFC3339Nano)
		if err := in.search.writeSettings(ctx, doc); err != nil {
			return settingsDoc{}, fmt.Errorf("cannot record migrated version: %w", err)
		}
		in.log.Info(fmt.Sprintf("[MIGRATION] Platform migrated to %s", in.cfg.Version))
	default:
		in.log.Info("[INIT] Existing platform detected, no migration needed", "version", doc.PlatformVersion)
	}
	if err := in.ensureBrokerAndStorage(ctx); err != nil {
		return settingsDoc{}, err
	}
	return doc, nil
}

// ensureBrokerAndStorage creates the bucket and exchanges; both are idempotent.
func (in *initializer) ensureBrokerAndStorage(ctx context.Context) error {
	if err := in.s3.ensureBucket(ctx); err != nil {
		return err
	}
	in.log.Info("[INIT] File storage bucket ready", "bucket", in.s3.bucket)
	if err := in.rabbit.declareExchanges(ctx); err != nil {
		return err
	}
	in.log.Info("[INIT] RabbitMQ exchanges declared", "exchanges", []string{connectorExchange, workerExchange})
	return nil
}
