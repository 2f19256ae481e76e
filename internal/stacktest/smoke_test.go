package stacktest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/internal/stacktest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSmokeOpenSearchClusterHealth(t *testing.T) {
	st := stacktest.Get(t)
	c, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{Addresses: []string{st.OpenSearchURL}}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Cluster.Health(ctx(t), nil)
	if err != nil {
		t.Fatalf("cluster health: %v", err)
	}
	if h.Status != "green" && h.Status != "yellow" {
		t.Fatalf("cluster status %q, want green or yellow", h.Status)
	}
	info, err := c.Info(ctx(t), nil)
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	if info.Version.Distribution != "opensearch" {
		t.Fatalf("distribution %q, want the real opensearch", info.Version.Distribution)
	}
	t.Logf("OpenSearch %s, cluster %s", info.Version.Number, h.Status)
}

func TestSmokeRabbitMQConnectAndManagementAPI(t *testing.T) {
	st := stacktest.Get(t)
	url := fmt.Sprintf("amqp://%s:%s@%s:%d/", st.RabbitMQUser, st.RabbitMQPassword, st.RabbitMQHost, st.RabbitMQPort)
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("amqp dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatalf("declare queue: %v", err)
	}
	if err := ch.PublishWithContext(ctx(t), "", q.Name, false, false, amqp.Publishing{Body: []byte("smoke")}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	msg, ok, err := getWithin(ch, q.Name, 5*time.Second)
	if err != nil || !ok || string(msg) != "smoke" {
		t.Fatalf("round trip through %s: got %q ok=%v err=%v", q.Name, msg, ok, err)
	}

	req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet,
		fmt.Sprintf("http://%s:%d/api/overview", st.RabbitMQHost, st.RabbitMQMgmtPort), nil)
	req.SetBasicAuth(st.RabbitMQUser, st.RabbitMQPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("management API: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "rabbitmq_version") {
		t.Fatalf("management API overview: HTTP %d %s", resp.StatusCode, body)
	}

	if _, err := amqp.Dial(fmt.Sprintf("amqp://%s:wrong@%s:%d/", st.RabbitMQUser, st.RabbitMQHost, st.RabbitMQPort)); err == nil {
		t.Fatal("amqp dial with a wrong password succeeded; the stack's user is not protected")
	}
}

func getWithin(ch *amqp.Channel, queue string, d time.Duration) ([]byte, bool, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m, ok, err := ch.Get(queue, true)
		if err != nil || ok {
			return m.Body, ok, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, false, nil
}

func TestSmokeRedisPingWithAuth(t *testing.T) {
	st := stacktest.Get(t)
	addr := fmt.Sprintf("%s:%d", st.RedisHost, st.RedisPort)
	rdb := redis.NewClient(&redis.Options{Addr: addr, Password: st.RedisPassword})
	defer rdb.Close()
	if got, err := rdb.Ping(ctx(t)).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING with AUTH: %q, %v", got, err)
	}
	anon := redis.NewClient(&redis.Options{Addr: addr})
	defer anon.Close()
	if err := anon.Ping(ctx(t)).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without AUTH: %v, want a NOAUTH refusal", err)
	}
}

func TestSmokeMinIOMakeAndListBucket(t *testing.T) {
	st := stacktest.Get(t)
	host := strings.TrimPrefix(st.S3Endpoint, "http://")
	mc, err := minio.New(host, &minio.Options{Creds: credentials.NewStaticV4(st.S3AccessKey, st.S3SecretKey, ""), Region: st.S3Region})
	if err != nil {
		t.Fatal(err)
	}
	bucket := fmt.Sprintf("smoke-%d", time.Now().UnixNano())
	if err := mc.MakeBucket(ctx(t), bucket, minio.MakeBucketOptions{Region: st.S3Region}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	t.Cleanup(func() { _ = mc.RemoveBucket(context.Background(), bucket) })
	buckets, err := mc.ListBuckets(ctx(t))
	if err != nil {
		t.Fatalf("list buckets: %v", err)
	}
	for _, b := range buckets {
		if b.Name == bucket {
			return
		}
	}
	t.Fatalf("bucket %s not listed in %v", bucket, buckets)
}

func TestSmokePebbleLayerStartStop(t *testing.T) {
	st := stacktest.Get(t)
	pc, err := client.New(&client.Config{Socket: st.PebbleOpenCTI})
	if err != nil {
		t.Fatal(err)
	}
	info, err := pc.SysInfo()
	if err != nil {
		t.Fatalf("SysInfo: %v", err)
	}
	if info.Version == "" {
		t.Fatal("SysInfo has no version")
	}
	svc := fmt.Sprintf("smoke-%d", time.Now().UnixNano())
	layer := fmt.Sprintf("services:\n  %s:\n    override: replace\n    command: sleep 600\n    startup: disabled\n", svc)
	if err := pc.AddLayer(&client.AddLayerOptions{Combine: true, Label: "smoke", LayerData: []byte(layer)}); err != nil {
		t.Fatalf("AddLayer: %v", err)
	}
	waitChange := func(id string) {
		t.Helper()
		ch, err := pc.WaitChange(id, &client.WaitChangeOptions{Timeout: 20 * time.Second})
		if err != nil || ch.Err != "" {
			t.Fatalf("change %s: %v %s", id, err, ch.Err)
		}
	}
	id, err := pc.Start(&client.ServiceOptions{Names: []string{svc}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitChange(id)
	assertStatus(t, pc, svc, client.StatusActive)
	id, err = pc.Stop(&client.ServiceOptions{Names: []string{svc}})
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	waitChange(id)
	assertStatus(t, pc, svc, client.StatusInactive)
	t.Logf("Pebble %s ran and stopped %s", info.Version, svc)
}

func assertStatus(t *testing.T, pc *client.Client, svc string, want client.ServiceStatus) {
	t.Helper()
	infos, err := pc.Services(&client.ServicesOptions{Names: []string{svc}})
	if err != nil || len(infos) != 1 {
		t.Fatalf("Services(%s): %v %v", svc, infos, err)
	}
	if infos[0].Current != want {
		t.Fatalf("service %s is %s, want %s", svc, infos[0].Current, want)
	}
}

func TestSmokeTemporalCheckHealth(t *testing.T) {
	st := stacktest.Get(t)
	c, err := tclient.Dial(tclient.Options{HostPort: st.TemporalAddress})
	if err != nil {
		t.Fatalf("dial %s: %v", st.TemporalAddress, err)
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx(t), &tclient.CheckHealthRequest{}); err != nil {
		t.Fatalf("CheckHealth: %v", err)
	}
	resp, err := http.Get(st.TemporalUI)
	if err != nil {
		t.Fatalf("Web UI: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Web UI answered HTTP %d", resp.StatusCode)
	}
}

func TestSmokeDevServerFromCachedBinary(t *testing.T) {
	_, c := stacktest.DevServer(t, testsuite.DevServerOptions{})
	if _, err := c.CheckHealth(ctx(t), &tclient.CheckHealthRequest{}); err != nil {
		t.Fatalf("CheckHealth on a private dev server: %v", err)
	}
}
