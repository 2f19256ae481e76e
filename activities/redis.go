package activities

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/socflow/socflow/internal/spec"
)

// quietRedis drops go-redis's own log lines: a probe reports every failed dial as its
// reason, and the library would print each one again on the worker's stderr.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }

// ProbeRedisInput is the Redis server to probe.
type ProbeRedisInput struct {
	// Redis is the spec's integrations.redis section, secrets as references.
	Redis spec.Redis `json:"redis"`
	// AllowOldDependencies turns a version below the app's minimum into a warning.
	AllowOldDependencies bool `json:"allowOldDependencies,omitempty"`
	// Requires is the app's minimum versions (unset: OpenCTI's).
	Requires spec.Requirement `json:"requires,omitzero"`
	ProbeWindow
}

// ProbeRedis waits until Redis answers PING with OpenCTI's password and runs a
// version OpenCTI supports, in the single-node mode socflow configures.
func (a *Activities) ProbeRedis(ctx context.Context, in ProbeRedisInput) (ProbeResult, error) {
	r := in.Redis
	if r.Port == 0 {
		r.Port = spec.DefaultRedisPort
	}
	if r.Mode != "" && r.Mode != spec.RedisSingle {
		return ProbeResult{Dependency: "redis"}, permanent(ErrTypeInvalidInput, fmt.Errorf(
			"cannot probe redis in mode %q: socflow supports only %q so far; set integrations.redis.mode to single", r.Mode, spec.RedisSingle))
	}
	var password string
	if !r.Password.IsZero() {
		var err error
		if password, err = a.resolve("integrations.redis.password", r.Password); err != nil {
			return ProbeResult{Dependency: "redis"}, classify(err)
		}
	}
	var warning string
	res, err := a.poll(ctx, "redis", in.Window, func(ctx context.Context) (string, error) {
		version, err := probeRedisOnce(ctx, r, password)
		if err != nil {
			return "", err
		}
		warning, err = minimumVersion("redis", version, in.Requires, in.AllowOldDependencies)
		return version, err
	})
	return withWarning(res, err, warning)
}

// probeRedisOnce pings and reads INFO server through a client built for this one
// attempt, with go-redis's own command and dial retries off: the probe's poll loop
// is the only place that waits, and a fresh client never reuses a dead connection.
func probeRedisOnce(ctx context.Context, r spec.Redis, password string) (string, error) {
	addr := net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
	client := newRedisClient(r, password)
	defer client.Close()

	if err := client.Ping(ctx).Err(); err != nil {
		return "", redisError(addr, password, err)
	}
	info, err := client.Info(ctx, "server").Result()
	if err != nil {
		return "", redisError(addr, password, err)
	}
	fields := redisInfoFields(info)
	// A sentinel or cluster node answers PING too, but OpenCTI in single mode
	// cannot use it: say so now rather than when OpenCTI fails on MOVED errors.
	if m := fields["redis_mode"]; m != "" && m != "standalone" {
		return "", &errPermanent{ErrTypeBadConfig, fmt.Errorf(
			"cannot use redis at %s in single mode: the server runs in %s mode", addr, m)}
	}
	return fields["redis_version"], nil
}

// newRedisClient is a client for one short use, with go-redis's own command and dial
// retries off: socflow's loops are the only place that waits.
func newRedisClient(r spec.Redis, password string) *redis.Client {
	opts := &redis.Options{
		Addr:                  net.JoinHostPort(r.Host, strconv.Itoa(r.Port)),
		Password:              password,
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           DefaultCallTimeout,
		ReadTimeout:           DefaultCallTimeout,
		WriteTimeout:          DefaultCallTimeout,
		ContextTimeoutEnabled: true,
		PoolSize:              1,
		DisableIdentity:       true,
	}
	if r.UseSSL {
		opts.TLSConfig = &tls.Config{ServerName: r.Host, MinVersion: tls.VersionTLS12}
	}
	return redis.NewClient(opts)
}

// redisInfoFields parses INFO's "key:value" lines.
func redisInfoFields(info string) map[string]string {
	fields := map[string]string{}
	for line := range strings.SplitSeq(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	return fields
}

// redisError makes refused credentials permanent and keeps anything else (down,
// loading its dataset) as a reason to wait.
func redisError(addr, password string, err error) error {
	msg := err.Error()
	switch {
	case redis.IsAuthError(err) && password == "":
		return &errPermanent{ErrTypeAuthFailed, fmt.Errorf(
			"cannot use redis at %s: it requires a password (%s); set integrations.redis.password", addr, msg)}
	case redis.IsAuthError(err), strings.Contains(msg, "AUTH") && strings.Contains(msg, "without any password configured"):
		return &errPermanent{ErrTypeAuthFailed, fmt.Errorf(
			"cannot log in to redis at %s: %s; check integrations.redis.password", addr, msg)}
	case redis.IsPermissionError(err):
		return &errPermanent{ErrTypeAuthFailed, fmt.Errorf(
			"cannot use redis at %s: the user may not run PING or INFO (%s)", addr, msg)}
	case redis.IsLoadingError(err):
		return fmt.Errorf("cannot use redis at %s yet: it is loading its dataset", addr)
	}
	var re redis.Error
	if errors.As(err, &re) {
		return fmt.Errorf("cannot use redis at %s: %s", addr, msg)
	}
	return fmt.Errorf("cannot reach redis at %s: %s", addr, netReason(err))
}

// initLockKey is where OpenCTI keeps its init lock: `{locks}:platform_init_lock`,
// under the instance's namespace (docs/opencti.md §7).
func initLockKey(r spec.Redis) string {
	key := "{locks}:platform_init_lock"
	if r.Namespace != "" {
		key = r.Namespace + ":" + key
	}
	return key
}

// initLockTTL is how long the instance's init lock lives unless its holder renews it
// (0: nobody holds it).
func (a *Activities) initLockTTL(ctx context.Context, r spec.Redis) (time.Duration, error) {
	var password string
	if !r.Password.IsZero() {
		var err error
		if password, err = a.resolve("integrations.redis.password", r.Password); err != nil {
			return 0, err
		}
	}
	c := newRedisClient(r, password)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	defer cancel()
	ttl, err := c.PTTL(ctx, initLockKey(r)).Result()
	if err != nil {
		return 0, fmt.Errorf("cannot read the init lock from redis: %w", err)
	}
	return max(ttl, 0), nil
}
