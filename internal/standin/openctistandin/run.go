package openctistandin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/socflow/socflow/internal/standin/standinlog"
)

// shutdownTimeout bounds the graceful stop so a supervisor's SIGTERM-then-SIGKILL
// window (Pebble's default kill-delay is 5 s) sees a clean exit.
const shutdownTimeout = 4 * time.Second

// withDefaults fills the fields that do not come from the environment.
func (c Config) withDefaults() Config {
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.LockWait <= 0 {
		c.LockWait = defaultLockWait
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	return c
}

// backends holds one client per dependency.
type backends struct {
	search *searchBackend
	s3     *s3Backend
	rabbit *rabbitBackend
	redis  *redisBackend
}

func newBackends(cfg Config) (*backends, error) {
	search, err := newSearchBackend(cfg.Search)
	if err != nil {
		return nil, err
	}
	s3, err := newS3Backend(cfg.S3)
	if err != nil {
		return nil, err
	}
	return &backends{search: search, s3: s3, rabbit: newRabbitBackend(cfg.RabbitMQ), redis: newRedisBackend(cfg.Redis)}, nil
}

// list returns the dependencies in OpenCTI's check order.
func (b *backends) list() []dependency {
	return []dependency{b.search, b.s3, b.rabbit, b.redis}
}

func (b *backends) close() {
	_ = b.redis.client.Close()
}

// Run starts the stand-in platform and serves until ctx ends; it returns nil
// after a graceful stop and an error for any failed start step (the caller exits
// 1). A ctx cancelled during start-up yields an error wrapping context.Canceled.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	log := standinlog.New(cfg.Stdout, slog.LevelInfo)
	if err := cfg.validate(); err != nil {
		log.Error("[OPENCTI] Platform configuration is invalid", "error", err.Error())
		return err
	}
	if err := cfg.validateForVersion(); err != nil {
		log.Error("[OPENCTI] Platform configuration is invalid", "error", err.Error())
		return err
	}
	log.Info(fmt.Sprintf("[OPENCTI] Starting platform (version %s)", cfg.Version))
	b, err := newBackends(cfg)
	if err != nil {
		log.Error("[OPENCTI] Platform start fail", "error", err.Error())
		return err
	}
	defer b.close()

	checks, err := checkDependencies(ctx, log, b.list())
	if err != nil {
		return err
	}
	settings, err := initialize(ctx, cfg, log, b)
	if err != nil {
		log.Error("[OPENCTI] Platform initialization fail", "category", "APP", "error", err.Error())
		return err
	}

	st := &apiState{
		version:     cfg.Version,
		platformURL: cfg.BaseURL,
		settingsID:  settings.InternalID,
		users: staticUsers{{
			id: adminUserID, name: "admin", email: cfg.AdminEmail, token: cfg.AdminToken, admin: true,
		}},
	}
	for _, c := range checks {
		if c.dep != b.s3 {
			// OpenCTI's about lists search, RabbitMQ and Redis, not the file storage.
			st.dependencies = append(st.dependencies, dependencyVersion{name: c.dep.product(), version: c.version})
		}
	}
	return serve(ctx, cfg, log, newHandler(cfg.BasePath, cfg.HealthAccessKey, b.list(), st))
}

// initialize runs first boot or migration under platform_init_lock, releasing
// the lock on every path so only a killed process leaves it to expire.
func initialize(ctx context.Context, cfg Config, log *slog.Logger, b *backends) (settingsDoc, error) {
	release, err := b.redis.acquireLock(ctx, cfg.LockWait)
	if err != nil {
		return settingsDoc{}, err
	}
	defer release()
	in := &initializer{cfg: cfg, log: log, search: b.search, s3: b.s3, rabbit: b.rabbit}
	return in.run(ctx)
}

// serve opens the port only now, on loopback, as the platform is ready.
func serve(ctx context.Context, cfg Config, log *slog.Logger, h http.Handler) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		log.Error("[OPENCTI] Platform start fail", "error", err.Error())
		return fmt.Errorf("cannot listen on port %d: %w", cfg.Port, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info(fmt.Sprintf("[OPENCTI] API ready on port %d", port))
	if cfg.OnReady != nil {
		cfg.OnReady(fmt.Sprintf("http://127.0.0.1:%d%s", port, cfg.BasePath))
	}

	select {
	case err := <-served:
		return fmt.Errorf("cannot serve the API: %w", err)
	case <-ctx.Done():
	}
	log.Info("[OPENCTI] Stopping platform")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("cannot stop the API gracefully: %w", err)
	}
	log.Info("[OPENCTI] Platform stopped")
	return nil
}
