package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	tclient "go.temporal.io/sdk/client"

	"github.com/socflow/socflow/internal/codec"
	"github.com/socflow/socflow/internal/secrets"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
	"github.com/socflow/socflow/workflows"
)

// TestHistoriesCarryNoSecret deploys with every secret given as a LITERAL in the spec —
// the worst case, since literals ride in the workflow input — and then searches the
// whole history, as the server stores and shows it, for each secret value in clear and
// in base64. The codec (SOCFLOW_CODEC_KEYS, set by the stack) must have sealed them.
func TestHistoriesCarryNoSecret(t *testing.T) {
	st := stacktest.Get(t)
	if os.Getenv("SOCFLOW_CODEC_KEYS") == "" {
		t.Fatal("SOCFLOW_CODEC_KEYS is unset: the stack provides a key ring; without one histories are in clear")
	}
	c := temporalClient(t)
	secretDir := t.TempDir()
	queue := inProcessWorker(t, c, secretDir)
	inst := newInstance(t, instanceOpts{})
	inst.OpenCTI.AdminPassword = "literal-admin-password-4f9a"
	inst.Integrations.RabbitMQ.Password = spec.SecretRef(st.RabbitMQPassword)
	inst.Integrations.Redis.Password = spec.SecretRef(st.RedisPassword)
	inst.Integrations.S3.AccessKey = spec.SecretRef(st.S3AccessKey)
	inst.Integrations.S3.SecretKey = spec.SecretRef(st.S3SecretKey)

	run := startDeploy(t, c, queue, inst)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res workflows.DeployResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("deploy failed: %v", err)
	}
	store := &secrets.Store{Dir: secretDir}
	values := map[string]string{
		"admin password": string(inst.OpenCTI.AdminPassword), "rabbitmq password": st.RabbitMQPassword,
		"redis password": st.RedisPassword, "s3 access key": st.S3AccessKey, "s3 secret key": st.S3SecretKey,
	}
	for name, ref := range map[string]spec.SecretRef{"admin token": res.Secrets.AdminToken,
		"health key": res.Secrets.HealthAccessKey, "encryption key": res.Secrets.EncryptionKey} {
		v, err := store.Resolve(ref)
		if err != nil {
			t.Fatal(err)
		}
		values[name] = v
	}

	text, n := historyJSON(t, c, run.GetID(), run.GetRunID())
	// Payload metadata is bytes, so the JSON history holds it in base64.
	if !strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(codec.EncodingEncrypted))) {
		t.Fatal("no payload in the history is marked encrypted: is the codec wired into the client?")
	}
	for _, found := range secretsIn(text, values) {
		t.Errorf("the %s appears in the history", found)
	}
	t.Logf("searched %d events (%d bytes) for %d secrets", n, len(text), len(values))

	// The codec server decodes the same history for a caller with the token, through
	// the real temporal CLI, and refuses a wrong token.
	ring, err := codec.LoadKeyring(os.Getenv("SOCFLOW_CODEC_KEYS"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(codec.NewServer(codec.New(ring), codec.ServerOptions{Token: "e2e-token"}))
	defer srv.Close()
	// show returns the CLI's JSON history with every payload's data base64-decoded.
	show := func(token string) (string, error) {
		out, err := exec.Command(st.TemporalBin, "workflow", "show", "--address", st.TemporalAddress,
			"--workflow-id", run.GetID(), "--run-id", run.GetRunID(), "--output", "json",
			"--codec-endpoint", srv.URL, "--codec-auth", "Bearer "+token).CombinedOutput()
		if err != nil {
			return string(out), err
		}
		var doc any
		if err := json.Unmarshal(out, &doc); err != nil {
			return string(out), err
		}
		var b strings.Builder
		var walk func(any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, x := range v {
					if s, ok := x.(string); ok && k == "data" {
						d, _ := base64.StdEncoding.DecodeString(s)
						b.Write(d)
						b.WriteString("\n")
						continue
					}
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(doc)
		return b.String(), nil
	}
	out, err := show("e2e-token")
	if err != nil || !strings.Contains(out, inst.Name) || !strings.Contains(out, "literal-admin-password-4f9a") {
		t.Errorf("temporal workflow show with the codec server did not show the decoded input: %v\n%.400s", err, out)
	}
	if out, err := show("wrong"); err == nil && strings.Contains(out, "literal-admin-password-4f9a") {
		t.Errorf("a wrong codec token still decoded the history")
	}
}

// historyJSON is a run's whole history (runID "": the latest run) as the server stores
// and shows it, in protobuf JSON, and its number of events.
func historyJSON(t testing.TB, c tclient.Client, id, runID string) (string, int) {
	t.Helper()
	events := historyEvents(t, c, id, runID)
	dump, err := temporalproto.CustomJSONMarshalOptions{}.Marshal(&historypb.History{Events: events})
	if err != nil {
		t.Fatal(err)
	}
	return string(dump), len(events)
}

// secretsIn names each secret (values: name -> value) that text holds in clear or in
// base64, padded or not, with the form found: "<name> (<form>)".
func secretsIn(text string, values map[string]string) []string {
	var found []string
	for name, v := range values {
		if v == "" {
			continue
		}
		for form, s := range map[string]string{"clear": v, "base64": base64.StdEncoding.EncodeToString([]byte(v)),
			"base64 (unpadded)": base64.RawStdEncoding.EncodeToString([]byte(v))} {
			if strings.Contains(text, s) {
				found = append(found, name+" ("+form+")")
			}
		}
	}
	slices.Sort(found)
	return found
}
