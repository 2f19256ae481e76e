package activities_test

import (
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

func stackRedis(t *testing.T) spec.Redis {
	st := stacktest.Get(t)
	return spec.Redis{Host: st.RedisHost, Port: st.RedisPort, Password: spec.SecretRef(st.RedisPassword)}
}

func TestProbeRedisReadyWithOldVersionAllowed(t *testing.T) {
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeRedis,
		activities.ProbeRedisInput{Redis: stackRedis(t), AllowOldDependencies: true})
	requireReady(t, res, err, "below OpenCTI's documented minimum 7.1")
	t.Logf("redis %s: %s", res.Version, res.Warning)
}

func TestProbeRedisOldVersionRefused(t *testing.T) {
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeRedis, activities.ProbeRedisInput{Redis: stackRedis(t)})
	requirePermanent(t, err, activities.ErrTypeVersionTooOld, "redis", "7.1", "allowOldDependencies")
}

func TestProbeRedisWrongPassword(t *testing.T) {
	r := stackRedis(t)
	r.Password = "wrong-password"
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeRedis, activities.ProbeRedisInput{Redis: r})
	requirePermanent(t, err, activities.ErrTypeAuthFailed, "redis", "WRONGPASS", "integrations.redis.password")
}

func TestProbeRedisMissingPassword(t *testing.T) {
	r := stackRedis(t)
	r.Password = ""
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeRedis, activities.ProbeRedisInput{Redis: r})
	requirePermanent(t, err, activities.ErrTypeAuthFailed, "redis", "requires a password")
}

func TestProbeRedisUnreachable(t *testing.T) {
	r := spec.Redis{Host: "127.0.0.1", Port: 1}
	res, err := runProbe(t, probeEnv(t), nilActs.ProbeRedis,
		activities.ProbeRedisInput{Redis: r, ProbeWindow: activities.ProbeWindow{Window: shortWindow}})
	requireNotReady(t, res, err, "redis", unreachable, "connection refused")
}

func TestProbeRedisMissingSecret(t *testing.T) {
	r := stackRedis(t)
	r.Password = missingEnvRef(t)
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeRedis, activities.ProbeRedisInput{Redis: r})
	requirePermanent(t, err, activities.ErrTypeSecretUnavailable, "integrations.redis.password")
}

func TestProbeRedisUnsupportedMode(t *testing.T) {
	r := stackRedis(t)
	r.Mode = spec.RedisCluster
	_, err := runProbe(t, probeEnv(t), nilActs.ProbeRedis, activities.ProbeRedisInput{Redis: r})
	requirePermanent(t, err, activities.ErrTypeInvalidInput, "cluster", "integrations.redis.mode")
}

// TestProbeRedisSeesItComeUp proves the probe polls: Redis is down when it starts
// and comes up during its window. It uses a private redis-server on a free port, not
// the stack's, so tests of other packages running meanwhile keep their Redis.
func TestProbeRedisSeesItComeUp(t *testing.T) {
	r := stackRedis(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	var server *exec.Cmd
	t.Cleanup(func() {
		if server != nil && server.Process != nil {
			_ = server.Process.Kill()
			_ = server.Wait()
		}
	})

	env := probeEnv(t)
	type outcome struct {
		res activities.ProbeResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		v, err := env.ExecuteActivity(nilActs.ProbeRedis, activities.ProbeRedisInput{
			Redis: r, AllowOldDependencies: true, ProbeWindow: activities.ProbeWindow{Window: 20 * time.Second}})
		var res activities.ProbeResult
		if err == nil {
			err = v.Get(&res)
		}
		done <- outcome{res, err}
	}()
	time.Sleep(2 * time.Second)
	server = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(r.Port),
		"--requirepass", stacktest.Get(t).RedisPassword, "--save", "", "--appendonly", "no")
	if err := server.Start(); err != nil {
		t.Fatalf("cannot start a private redis-server: %v", err)
	}

	select {
	case o := <-done:
		requireReady(t, o.res, o.err, "7.1")
		if o.res.Attempts < 2 {
			t.Errorf("ready after %d attempts; want the first ones to have found redis down", o.res.Attempts)
		}
		t.Logf("redis came up after %d attempts", o.res.Attempts)
	case <-time.After(40 * time.Second):
		t.Fatal("probe did not return within its 20s window")
	}
}
