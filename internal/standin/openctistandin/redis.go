package openctistandin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisBackend is the cache, stream and lock server.
type redisBackend struct {
	client    *redis.Client
	namespace string
}

// Keys OpenCTI writes, before REDIS__NAMESPACE's prefix. Without a namespace two
// platforms on one Redis share them (and so one init lock).
const (
	initLockKey    = "{locks}:platform_init_lock"
	clusterKey     = "platform_cluster"
	streamKey      = "stream.opencti"
	managerLockFmt = "{locks}:%s_lock"
)

func redisOptions(cfg RedisConfig) *redis.Options {
	o := &redis.Options{
		Addr:     net.JoinHostPort(cfg.Hostname, strconv.Itoa(cfg.Port)),
		Password: cfg.Password,
		// One attempt per call: a check reports Redis as it is now.
		MaxRetries:  -1,
		DialTimeout: 5 * time.Second,
	}
	if cfg.UseSSL {
		o.TLSConfig = &tls.Config{ServerName: cfg.Hostname}
	}
	return o
}

func newRedisBackend(cfg RedisConfig) *redisBackend {
	return &redisBackend{client: redis.NewClient(redisOptions(cfg)), namespace: cfg.Namespace}
}

// key applies REDIS__NAMESPACE as ioredis' keyPrefix does: "<namespace>:<key>".
func namespacedKey(namespace, key string) string {
	if namespace == "" {
		return key
	}
	return namespace + ":" + key
}

func (r *redisBackend) key(k string) string { return namespacedKey(r.namespace, k) }

func (r *redisBackend) label() string { return "Redis" }

// report is OpenCTI's redisInit error, which carries no cause.
func (r *redisBackend) report(error) error {
	return newError(DatabaseErrorName, "Redis seems down", nil, nil, nil)
}

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

// clusterHeartbeat is this node's entry in platform_cluster.
type clusterHeartbeat struct {
	PlatformID string   `json:"platform_id"`
	Managers   []string `json:"managers"`
	Updated    int64    `json:"updated"`
}

// heartbeatTTL is how stale an entry may be and still count as a running node.
const heartbeatTTL = 30 * time.Second

// heartbeat records this node in platform_cluster, which settings.platform_cluster
// counts; two platforms on one Redis without namespaces count each other.
func (r *redisBackend) heartbeat(ctx context.Context, id string) error {
	hb, _ := json.Marshal(clusterHeartbeat{PlatformID: id, Managers: platformModuleIDs(), Updated: time.Now().Unix()})
	if err := r.client.HSet(ctx, r.key(clusterKey), id, hb).Err(); err != nil {
		return fmt.Errorf("cannot write %s: %w", r.key(clusterKey), err)
	}
	return nil
}

// instances counts the nodes whose heartbeat is fresh.
func (r *redisBackend) instances(ctx context.Context) (int, error) {
	all, err := r.client.HGetAll(ctx, r.key(clusterKey)).Result()
	if err != nil {
		return 0, fmt.Errorf("cannot read %s: %w", r.key(clusterKey), err)
	}
	n := 0
	for _, v := range all {
		var hb clusterHeartbeat
		if json.Unmarshal([]byte(v), &hb) == nil && time.Since(time.Unix(hb.Updated, 0)) < heartbeatTTL {
			n++
		}
	}
	return n, nil
}

// publish appends one event to stream.opencti, trimmed as REDIS__TRIMMING asks.
func (r *redisBackend) publish(ctx context.Context, trimming int64, event map[string]any) error {
	args := &redis.XAddArgs{Stream: r.key(streamKey), Values: event}
	if trimming > 0 {
		args.MaxLen, args.Approx = trimming, true
	}
	if err := r.client.XAdd(ctx, args).Err(); err != nil {
		return fmt.Errorf("cannot write %s: %w", r.key(streamKey), err)
	}
	return nil
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
