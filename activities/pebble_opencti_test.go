package activities_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// sleepingOpenCTI is an OpenCTI spec whose platform and workers only sleep, in a
// private Pebble, with every secret in an env: reference the test sets.
func sleepingOpenCTI(t *testing.T, socket, dir string, workers int, logLevel string) opencti.Instance {
	t.Helper()
	inst, err := opencti.Load(fmt.Appendf(nil, `
name: demo
opencti:
  version: 6.9.3
  adminPassword: env:SOCFLOW_TEST_ADMIN_PASSWORD
  platformCommand: sleep 300
  platformDir: %s/platform
  workerCommand: sleep 300
  workerDir: %s/worker
  workers: %d
  logLevel: %s
  reaper: none
pebble:
  socket: %s
integrations:
  opensearch: {}
  rabbitmq:
    host: 127.0.0.1
    username: opencti
    password: env:SOCFLOW_TEST_RABBITMQ_PASSWORD
  redis:
    host: 127.0.0.1
    password: env:SOCFLOW_TEST_REDIS_PASSWORD
  s3:
    accessKey: env:SOCFLOW_TEST_S3_ACCESS_KEY
    secretKey: env:SOCFLOW_TEST_S3_SECRET_KEY
`, dir, dir, workers, logLevel, socket))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// sleepingSecrets sets the environment sleepingOpenCTI's references read and returns
// the generated secrets' references.
func sleepingSecrets(t *testing.T) opencti.InstanceSecrets {
	for k, v := range map[string]string{
		"SOCFLOW_TEST_ADMIN_PASSWORD": "admin-pw-value", "SOCFLOW_TEST_RABBITMQ_PASSWORD": "rabbit-pw-value",
		"SOCFLOW_TEST_REDIS_PASSWORD": "redis-pw-old", "SOCFLOW_TEST_S3_ACCESS_KEY": "s3-access-value",
		"SOCFLOW_TEST_S3_SECRET_KEY": "s3-secret-value", "SOCFLOW_TEST_ADMIN_TOKEN": "6f1c2f4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
		"SOCFLOW_TEST_HEALTH_KEY": "health-key-value", "SOCFLOW_TEST_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	} {
		t.Setenv(k, v)
	}
	return opencti.InstanceSecrets{AdminToken: "env:SOCFLOW_TEST_ADMIN_TOKEN",
		HealthAccessKey: "env:SOCFLOW_TEST_HEALTH_KEY", EncryptionKey: "env:SOCFLOW_TEST_ENCRYPTION_KEY"}
}

func TestApplyOpenCTIPlanReportsChangedServices(t *testing.T) {
	secrets := sleepingSecrets(t)
	socket, dir := stacktest.Pebble(t), t.TempDir()
	apply := func(inst opencti.Instance) activities.ApplyOpenCTIPlanResult {
		t.Helper()
		v, err := probeEnv(t).ExecuteActivity(nilActs.ApplyOpenCTIPlan, activities.ApplyOpenCTIPlanInput{Instance: inst, Secrets: secrets})
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		var res activities.ApplyOpenCTIPlanResult
		if err := v.Get(&res); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"pw-value", "redis-pw", "s3-access", "s3-secret", "6f1c2f4e", "health-key", "MDEyMzQ1"} {
			if b, _ := json.Marshal(res); strings.Contains(string(b), secret) {
				t.Errorf("the result shows a secret (%s): %s", secret, b)
			}
		}
		return res
	}
	requireChanges := func(got activities.ApplyOpenCTIPlanResult, want activities.PebbleLayerChanges) {
		t.Helper()
		if len(got.Digests) != len(got.Services) {
			t.Errorf("digests %v for services %v", got.Digests, got.Services)
		}
		got.Digests = nil
		if !reflect.DeepEqual(got.PebbleLayerChanges, want) {
			t.Errorf("changes:\n got %+v\nwant %+v", got.PebbleLayerChanges, want)
		}
	}
	workers := []string{"worker-0", "worker-1", "worker-2"}
	all := append([]string{"platform"}, workers...)

	first := apply(sleepingOpenCTI(t, socket, dir, 3, "info"))
	requireChanges(first, activities.PebbleLayerChanges{Added: all})
	requireChanges(apply(sleepingOpenCTI(t, socket, dir, 3, "info")), activities.PebbleLayerChanges{Unchanged: all})

	t.Log("a Redis password change: the platform only, the key named, values masked")
	t.Setenv("SOCFLOW_TEST_REDIS_PASSWORD", "redis-pw-new")
	rotated := apply(sleepingOpenCTI(t, socket, dir, 3, "info"))
	requireChanges(rotated, activities.PebbleLayerChanges{
		Changed: []layer.Change{{Kind: layer.Changed, Service: "platform", Fields: []string{"environment"},
			Env: []layer.EnvChange{{Key: "REDIS__PASSWORD", Kind: layer.Changed, Old: "<secret>", New: "<secret>"}}}},
		Unchanged: workers,
	})
	if rotated.PlatformDigest == first.PlatformDigest || rotated.Digests["worker-0"] != first.Digests["worker-0"] {
		t.Errorf("digests: %s %v, then %s %v", first.PlatformDigest, first.Digests, rotated.PlatformDigest, rotated.Digests)
	}

	t.Log("a log-level change: platform and every worker, the value shown")
	debug := apply(sleepingOpenCTI(t, socket, dir, 3, "debug"))
	if len(debug.Changed) != 4 || debug.Unchanged != nil {
		t.Fatalf("changes %+v", debug.PebbleLayerChanges)
	}
	if env := debug.Changed[1].Env; debug.Changed[1].Service != "worker-0" ||
		!reflect.DeepEqual(env, []layer.EnvChange{{Key: "WORKER_LOG_LEVEL", Kind: layer.Changed, Old: "info", New: "debug"}}) {
		t.Errorf("worker-0's change %+v", debug.Changed[1])
	}

	t.Log("3 workers to 5: two added; back to 3: two removed")
	requireChanges(apply(sleepingOpenCTI(t, socket, dir, 5, "debug")),
		activities.PebbleLayerChanges{Added: []string{"worker-3", "worker-4"}, Unchanged: all})
	requireChanges(apply(sleepingOpenCTI(t, socket, dir, 3, "debug")),
		activities.PebbleLayerChanges{Removed: []string{"worker-3", "worker-4"}, Unchanged: all})
	requireChanges(apply(sleepingOpenCTI(t, socket, dir, 3, "debug")), activities.PebbleLayerChanges{Unchanged: all})
}

// TestApplyOpenCTIPlanResultDecodesOldHistories keeps results recorded before the
// changes existed decodable, with no changes.
func TestApplyOpenCTIPlanResultDecodesOldHistories(t *testing.T) {
	var res activities.ApplyOpenCTIPlanResult
	old := `{"services":["platform","worker-0"],"files":["/opt/opencti/.socflow-instance"],"platformDigest":"0a1b2c3d4e5f"}`
	if err := json.Unmarshal([]byte(old), &res); err != nil {
		t.Fatal(err)
	}
	if res.PlatformDigest != "0a1b2c3d4e5f" || len(res.Services) != 2 || res.Added != nil || res.Digests != nil {
		t.Errorf("decoded %+v", res)
	}
	b, _ := json.Marshal(res)
	if string(b) != old {
		t.Errorf("re-encoded %s, want %s", b, old)
	}
}

// TestApplyOpenCTIPlanDryRunReportsDriftedFiles: a dry run (a health check's drift
// detection) compares the plan's files with the container's, on a real Pebble: a file
// edited by hand is changed, a file deleted is removed, and a re-apply puts it back.
func TestApplyOpenCTIPlanDryRunReportsDriftedFiles(t *testing.T) {
	secrets := sleepingSecrets(t)
	socket, dir := stacktest.Pebble(t), t.TempDir()
	ca := stacktest.NewTestCert(t, "opensearch-ca", &x509.Certificate{Subject: pkix.Name{CommonName: "opensearch-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign})
	inst := sleepingOpenCTI(t, socket, dir, 1, "info")
	inst.Integrations.OpenSearch.URLs = []string{"https://127.0.0.1:9201"}
	inst.Integrations.OpenSearch.CA = spec.SecretRef("file:" + ca.Cert)
	apply := func(dryRun bool) activities.ApplyOpenCTIPlanResult {
		t.Helper()
		v, err := probeEnv(t).ExecuteActivity(nilActs.ApplyOpenCTIPlan, activities.ApplyOpenCTIPlanInput{Instance: inst, Secrets: secrets, DryRun: dryRun})
		if err != nil {
			t.Fatalf("apply (dry run %v): %v", dryRun, err)
		}
		var res activities.ApplyOpenCTIPlanResult
		if err := v.Get(&res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	pushed := apply(false)
	i := slices.IndexFunc(pushed.Files, func(p string) bool { return strings.HasSuffix(p, ".pem") || strings.Contains(p, "ca") })
	if i < 0 {
		t.Fatalf("no CA file among the pushed files %v", pushed.Files)
	}
	path := pushed.Files[i]
	if d := apply(true).FileDrift; len(d) != 0 {
		t.Fatalf("drift right after the apply: %+v", d)
	}
	pc, err := client.New(&client.Config{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Push(&client.PushOptions{Source: strings.NewReader("edited by hand\n"), Path: path}); err != nil {
		t.Fatal(err)
	}
	if d := apply(true).FileDrift; !reflect.DeepEqual(d, []layer.Change{{Kind: layer.Changed, File: path, Fields: []string{"content"}}}) {
		t.Fatalf("after a hand edit: drift %+v, want %s changed", d, path)
	}
	if err := pc.RemovePath(&client.RemovePathOptions{Path: path}); err != nil {
		t.Fatal(err)
	}
	if d := apply(true).FileDrift; !reflect.DeepEqual(d, []layer.Change{{Kind: layer.Removed, File: path}}) {
		t.Fatalf("after a removal: drift %+v, want %s removed", d, path)
	}
	apply(false)
	if d := apply(true).FileDrift; len(d) != 0 {
		t.Fatalf("drift after the re-apply: %+v", d)
	}
}
