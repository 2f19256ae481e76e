package workerapp

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPrometheusMetricsKeepLabelValuesAsWritten: an instance named demo-1 is demo-1 on
// the endpoint (the SDK's own sanitizing would serve demo_1), counters end in _total.
func TestPrometheusMetricsKeepLabelValuesAsWritten(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h, closer, err := PrometheusMetrics(addr, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer closer()
	h.WithTags(map[string]string{"socflow_instance": "demo-1", "phase": "waiting-platform"}).Counter("socflow_test").Inc(1)
	want := `socflow_test_total{phase="waiting-platform",socflow_instance="demo-1"} 1`
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if body = string(b); strings.Contains(body, want) {
			return
		}
	}
	t.Fatalf("/metrics does not serve %s:\n%s", want, body)
}
