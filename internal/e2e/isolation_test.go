package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/temporal"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/stacktest"
)

// Two instances deployed side by side on one Redis and one RabbitMQ both come up, each
// in its own Redis namespace and queue prefix: neither sees the other's init lock or
// cluster membership, and their queues are disjoint. A third instance whose name
// extends the first's (its index prefix would match the first's templates) is refused
// by the pre-flight, naming both.
func TestTwoInstancesShareRedisAndRabbitMQ(t *testing.T) {
	st := stacktest.Get(t)
	c := temporalClient(t)
	queue := inProcessWorker(t, c, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	a := newInstance(t, instanceOpts{initDelay: 3 * time.Second})
	b := newInstance(t, instanceOpts{initDelay: 3 * time.Second})
	runA, runB := startDeploy(t, c, queue, a), startDeploy(t, c, queue, b)
	for _, r := range []struct {
		name string
		run  interface {
			Get(context.Context, any) error
		}
	}{{a.Name, runA}, {b.Name, runB}} {
		if err := r.run.Get(ctx, nil); err != nil {
			t.Fatalf("deploy of %s failed: %v", r.name, err)
		}
	}

	rdb := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(st.RedisHost, strconv.Itoa(st.RedisPort)), Password: st.RedisPassword})
	defer rdb.Close()
	for _, name := range []string{a.Name, b.Name} {
		keys, err := rdb.Keys(ctx, name+":*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			t.Errorf("instance %s wrote no key under its namespace %s:", name, name)
		}
		// Each platform counts only itself in its cluster: unnamespaced, they would
		// share one platform_cluster hash and count each other.
		if n, err := rdb.HLen(ctx, name+":platform_cluster").Result(); err != nil || n != 1 {
			t.Errorf("%s:platform_cluster holds %d members (%v), want 1", name, n, err)
		}
	}
	qa, qb := queuesWithPrefix(t, st, a.Name+"_"), queuesWithPrefix(t, st, b.Name+"_")
	if len(qa) == 0 || len(qa) != len(qb) {
		t.Errorf("queues of %s: %v; of %s: %v; want the same non-empty set under each prefix", a.Name, qa, b.Name, qb)
	}

	clash := newInstance(t, instanceOpts{initDelay: 3 * time.Second})
	clash.Name = a.Name + "2"
	clash.Integrations.Redis.Namespace, clash.Integrations.RabbitMQ.QueuePrefix = clash.Name, clash.Name
	t.Cleanup(func() { cleanupData(st, clash.Name) })
	err := startDeploy(t, c, queue, clash).Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypePrefixClash {
		t.Fatalf("deploy of %s next to %s: %v, want a %s failure", clash.Name, a.Name, err, activities.ErrTypePrefixClash)
	}
	for _, want := range []string{"index prefix " + clash.Name, "instance " + a.Name, "rename one instance"} {
		if !strings.Contains(app.Message(), want) {
			t.Errorf("refusal %q does not say %q", app.Message(), want)
		}
	}
	if n := indexCount(t, st, clash.Name); n != 0 {
		t.Errorf("the refused instance created %d indices", n)
	}
}

// queuesWithPrefix lists the broker's queues whose names start with prefix.
func queuesWithPrefix(t *testing.T, st stacktest.Stack, prefix string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(st.RabbitMQHost, strconv.Itoa(st.RabbitMQMgmtPort))+"/api/queues", nil)
	req.SetBasicAuth(st.RabbitMQUser, st.RabbitMQPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var queues []struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&queues); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, q := range queues {
		if strings.HasPrefix(q.Name, prefix) {
			out = append(out, strings.TrimPrefix(q.Name, prefix))
		}
	}
	return out
}
