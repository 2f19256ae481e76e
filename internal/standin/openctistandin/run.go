package openctistandin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/socflow/socflow/internal/standin/standinlog"
)

// withDefaults fills the fields that do not come from the environment.
func (c Config) withDefaults() Config {
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Dir == "" {
		c.Dir = "."
	}
	if c.Migrations <= 0 {
		c.Migrations = DefaultMigrations
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

// Run starts the stand-in platform and serves until ctx ends. It returns nil
// after a clean stop and an error for any failed start step (the caller exits
// 1). A ctx cancelled during start-up — SIGTERM mid-init — yields an error
// wrapping context.Canceled at once, leaving the init lock to its child, as
// OpenCTI exits 0 in 0.1 s without releasing it.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.Timings.validate(); err != nil {
		return err
	}
	// Before any log line, as node crashes before its logger exists.
	logFile, err := openLogFile(cfg.Dir)
	if err != nil {
		fmt.Fprintf(cfg.Stderr, "Error: %v\n", err)
		return err
	}
	defer logFile.Close()
	if err := checkPython(ctx, cfg.pythonPath()); err != nil {
		fmt.Fprintf(cfg.Stderr, "Error: Python3 is not available: %v\n", err)
		return err
	}
	log := standinlog.New(io.MultiWriter(cfg.Stdout, logFile), slog.LevelInfo).With("category", "APP", "source", "backend", "version", cfg.Version)
	if cfg.MetricsEnabled {
		// The Prometheus exporter starts with the process, long before the API.
		stopMetrics, err := serveMetrics(cfg.MetricsPort)
		if err != nil {
			logFailure(log, "[OPENCTI] Platform start fail", err)
			return err
		}
		defer stopMetrics()
	}
	log.Info(fmt.Sprintf("[OPENCTI] Starting platform (version %s)", cfg.Version))
	if err := cfg.validate(); err != nil {
		logFailure(log, "[OPENCTI] Platform start fail", newError(ConfigurationErrorName, err.Error(), nil, nil, nil))
		return err
	}
	if err := cfg.validateForVersion(); err != nil {
		logFailure(log, "[OPENCTI] Platform start fail", newError(ConfigurationErrorName, "app:encryption_key configuration is missing or invalid", err, nil, nil))
		return err
	}
	if err := sleepCtx(ctx, cfg.Timings.Start); err != nil {
		return fmt.Errorf("cannot start: %w", err)
	}
	b, err := newBackends(cfg)
	if err != nil {
		logFailure(log, "[OPENCTI] Platform start fail", err)
		return err
	}
	defer b.close()

	checks, err := checkDependencies(ctx, log, b.list(), cfg.SMTP, cfg.pythonPath())
	if err != nil {
		if ctx.Err() == nil {
			logFailure(log, "[OPENCTI] System dependencies check failed", err)
		}
		return err
	}
	state, err := initialize(ctx, cfg, log, b, checks[0].version)
	if err != nil {
		return err
	}
	if err := sleepCtx(ctx, cfg.Timings.Ready); err != nil {
		return fmt.Errorf("cannot start modules: %w", err)
	}
	st := &apiState{
		version:     cfg.Version,
		platformURL: cfg.BaseURL,
		settingsID:  state.settingsID,
		engine:      checks[0].version,
		redisVer:    checks[3].version,
		rabbit:      b.rabbit,
		queues:      b.rabbit,
		s3:          cfg.S3,
		redis:       b.redis,
		objects:     newSearchObjects(b.search),
		tokenKey:    cfg.tokenKey(),

		userAddAnswer: cfg.Timings.UserAddAnswer,
	}
	if v, err := parseVersion(cfg.Version); err == nil && v[0] >= 7 {
		if st.jwks, err = newJWKS(); err != nil {
			return fmt.Errorf("cannot make the connectors' key set: %w", err)
		}
	}
	return serve(ctx, cfg, log, b, state, newHandler(cfg.BasePath, cfg.HealthAccessKey, cfg.Timings.HealthTimeout, b.list(), st))
}

// openLogFile makes <dir>/logs and opens its log file, as OpenCTI's file transport does.
func openLogFile(dir string) (*os.File, error) {
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the log directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(logs, "opencti.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open the log file: %w", err)
	}
	return f, nil
}

// initialize is platformInit: the lock through the forked child, then first
// boot or existing platform, then — in OpenCTI's finally — the release and
// "[INIT] Platform initialization done", logged even when init failed. A
// cancelled ctx returns at once without releasing anything.
func initialize(ctx context.Context, cfg Config, log *slog.Logger, b *backends, engine string) (platformState, error) {
	child, err := startLockChild(cfg)
	if err != nil {
		logFailure(log, "[OPENCTI] Platform default initialization failed", err)
		return platformState{}, err
	}
	log.Info("[LOCKING] Locking fork process started")
	if err := child.lock(ctx); err != nil {
		if ctx.Err() != nil {
			child.detach()
			return platformState{}, fmt.Errorf("cannot initialize: %w", ctx.Err())
		}
		child.detach()
		logFailure(log, "[OPENCTI] Platform default initialization failed", err)
		return platformState{}, err
	}
	in := &initializer{cfg: cfg, log: log, b: b, engine: engine, child: child}
	state, initErr := in.run(ctx)
	if ctx.Err() != nil {
		child.detach()
		return platformState{}, fmt.Errorf("cannot initialize: %w", ctx.Err())
	}
	// A successful init also ends the child; a failed one leaves it running
	// without the lock, and it exits LockLinger after this process.
	if err := child.unlock(initErr == nil); err != nil {
		log.Warn("[LOCKING] Cannot release the init lock", "error", err.Error())
	}
	if initErr != nil {
		child.detach()
	}
	log.Info("[INIT] Platform initialization done")
	if initErr != nil {
		logFailure(log, "[OPENCTI] Platform default initialization failed", initErr)
		return platformState{}, initErr
	}
	return state, nil
}

// heartbeatInterval is how often the node refreshes its platform_cluster entry.
const heartbeatInterval = 10 * time.Second

// serve opens the API port on all interfaces, as node does, only now that the
// platform is ready, and stops as OpenCTI does: slowly, or never.
func serve(ctx context.Context, cfg Config, log *slog.Logger, b *backends, state platformState, h http.Handler) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		logFailure(log, "[OPENCTI] Platform start fail", err)
		return fmt.Errorf("cannot listen on port %d: %w", cfg.Port, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	bctx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	go func() {
		_ = b.redis.publish(bctx, cfg.Redis.Trimming, map[string]any{"type": "init-create", "platform_id": state.platformID})
		t := time.NewTicker(heartbeatInterval)
		defer t.Stop()
		for {
			_ = b.redis.heartbeat(bctx, state.platformID)
			select {
			case <-bctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	log.Info(fmt.Sprintf("[OPENCTI] API ready on port %d", port))
	if cfg.OnReady != nil {
		cfg.OnReady(fmt.Sprintf("http://127.0.0.1:%d%s", port, cfg.BasePath))
	}

	select {
	case err := <-served:
		return fmt.Errorf("cannot serve the API: %w", err)
	case <-ctx.Done():
	}
	start := time.Now()
	log.Info("SIGTERM signal received, stopping OpenCTI")
	seed := cfg.Timings.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	if rand.New(rand.NewSource(seed)).Float64() < cfg.Timings.StopHang {
		// Real stops hung for more than 10 minutes after these managers' lines;
		// only SIGKILL ends them.
		log.Info("[OPENCTI-MODULE] Stopping playbook manager")
		log.Info("[OPENCTI-MODULE] Stopping notification manager")
		for {
			time.Sleep(time.Hour)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Timings.Stop)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot stop the API: %w", err)
	}
	stopBackground()
	_ = sleepCtx(context.Background(), cfg.Timings.Stop-time.Since(start))
	log.Info(fmt.Sprintf("[OPENCTI] Platform stopped %d ms", time.Since(start).Milliseconds()))
	return nil
}
