package openctistandin

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// redisBackend is the cache, stream and lock server.
type redisBackend struct {
	client *redis.Client
}

// Lock timing: the TTL is short so that a node killed while holding the lock
// frees it soon; the holder keeps extending it so a long init keeps it.
const (
	initLockKey        = "platform_init_lock"
	lockTTL            = 15 * time.Second
	lockExtendInterval = lockTTL / 3
	lockRetryInterval  = 500 * time.Millisecond
)

func newRedisBackend(cfg RedisConfig) *redisBackend {
	return &redisBackend{client: redis.NewClient(&redis.Options{
		Addr:     net.JoinHostPort(cfg.Hostname, strconv.Itoa(cfg.Port)),
		Password: cfg.Password,
		// One attempt per call: a check reports Redis as it is now.
		MaxRetries:  -1,
		DialTimeout: 5 * time.Second,
	})}
}

func (r *redisBackend) label() string   { return "Redis" }
func (r *redisBackend) product() string { return "Redis" }

// minimum is Redis 7.1 as OpenCTI documents.
func (r *redisBackend) minimum(string) string { return "7.1" }

// check sends PING (after AUTH, done by the client on connect) and reads the server version.
func (r *redisBackend) check(ctx context.Context) (string, error) {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return "", fmt.Errorf("cannot ping redis: %w", err)
	}
	info, err := r.client.Info(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("cannot read redis info: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "", nil
}

// releaseScript deletes the lock only if this node still owns it.
var releaseScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)

// extendScript renews the lock's TTL only if this node still owns it.
var extendScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`)

// acquireLock takes platform_init_lock with SET NX PX, waiting at most wait; the
// returned release must be called even when ctx is cancelled.
func (r *redisBackend) acquireLock(ctx context.Context, wait time.Duration) (release func(), err error) {
	token := uuid.NewString()
	deadline := time.Now().Add(wait)
	for {
		ok, err := r.client.SetNX(ctx, initLockKey, token, lockTTL).Result()
		if err != nil {
			return nil, fmt.Errorf("cannot take %s: %w", initLockKey, err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (waited %s)", ErrLockHeld, wait)
		}
		if err := sleepCtx(ctx, lockRetryInterval); err != nil {
			return nil, fmt.Errorf("cannot take %s: %w", initLockKey, err)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lockExtendInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				// A failed extension is left to the TTL: the init then runs
				// unprotected, as OpenCTI's lock would after a Redis hiccup.
				_ = extendScript.Run(context.Background(), r.client, []string{initLockKey}, token, lockTTL.Milliseconds()).Err()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		// A fresh context: release must happen even when the run was cancelled.
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = releaseScript.Run(rctx, r.client, []string{initLockKey}, token).Err()
	}, nil
}

// sleepCtx sleeps d or until ctx ends, returning ctx's error in the latter case.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
