package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/codec"
	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/openctiapi"
	"github.com/socflow/socflow/internal/wazuh"
	"github.com/socflow/socflow/workflows"
)

// TestWazuhOpenCTIIntegrationByInstance deploys a Wazuh instance whose
// integrations.opencti names an OpenCTI instance socflow runs on the stand-in platform:
// before that instance exists the deploy is refused naming the fix; once it is active,
// the node's custom-opencti integration gets the platform's public URL (+ /graphql) and
// the real token of the user wazuh-<name>, which exists on the platform in group
// Connectors and answers `me` at that URL; the token is in no history; the OpenCTI
// instance's own connector reconcile (which deactivates connector-* users its spec does
// not keep) leaves the user active; and a redeploy adds no user and reloads nothing.
func TestWazuhOpenCTIIntegrationByInstance(t *testing.T) {
	c := temporalClient(t)
	secretDir := t.TempDir()
	queue := inProcessWorker(t, c, secretDir)
	octi := newInstance(t, instanceOpts{workers: 1})
	inst := newWazuhInstance(t, wazuhOpts{})
	inst.Integrations.OpenCTI = &wazuh.OpenCTI{Instance: octi.Name}
	if err := inst.Validate(); err != nil {
		t.Fatalf("the instance form does not validate: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	// An OpenCTI instance socflow does not run: refused at once, before any node.
	err := startWazuhDeploy(t, c, queue, inst).Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypeOpenCTIInstanceUnavailable ||
		!strings.Contains(err.Error(), "no workflow opencti/"+octi.Name) || !strings.Contains(err.Error(), "starter deploy -f") {
		t.Fatalf("deploy before the OpenCTI instance exists = %v, want %s naming the workflow and the fix", err, activities.ErrTypeOpenCTIInstanceUnavailable)
	}
	if got := services(t, inst.Nodes[0].Pebble.Socket); len(got) != 0 {
		t.Errorf("the refused deploy touched the node: services %v", got)
	}

	run := startInstance(t, c, queue, octi, 0)
	waitInstance(t, c, run.GetID(), 3*time.Minute, "active", activeInstance)

	var res workflows.DeployWazuhResult
	if err := startWazuhDeploy(t, c, queue, inst).Get(ctx, &res); err != nil {
		t.Fatalf("deploy failed: %v", err)
	}
	user, tokenKey := "wazuh-"+inst.Name, "wazuh-"+inst.Name+"-token"
	token := storedSecret(t, secretDir, octi.Name, tokenKey)
	if res.OpenCTI == nil {
		t.Fatal("the deploy's result names no OpenCTI relation")
	}
	if r := res.OpenCTI; r.Instance != octi.Name || r.User != user || !r.UserCreated || string(r.Token) != "store:"+octi.Name+"/"+tokenKey {
		t.Errorf("result's opencti %+v", r)
	}

	// The ossec.conf of every node points its custom-opencti integration at the platform.
	hook := octi.OpenCTI.PublicURL + "/graphql"
	for k := range inst.Nodes {
		doc := etree.NewDocument()
		if err := doc.ReadFromString(nodeFile(t, inst, k, "/var/ossec/etc/ossec.conf")); err != nil {
			t.Fatal(err)
		}
		var found int
		for _, in := range doc.FindElements("//integration") {
			if !strings.HasPrefix(strings.TrimSpace(in.SelectElement("name").Text()), "custom-opencti") {
				continue
			}
			found++
			gotHook, gotKey := strings.TrimSpace(in.SelectElement("hook_url").Text()), strings.TrimSpace(in.SelectElement("api_key").Text())
			if gotHook != hook || gotKey != token || token == "" {
				t.Errorf("node %d: custom-opencti hook_url %q api_key %q, want %q and the stored token of %s", k, gotHook, gotKey, hook, user)
			}
		}
		if found == 0 {
			t.Errorf("node %d: no custom-opencti integration in ossec.conf", k)
		}
	}

	// The user is the platform's, in Connectors, and the token is its real token at the hook's URL.
	admin := adminClient(t, octi, secretDir)
	u, err := admin.UserByEmail(ctx, "wazuh."+inst.Name+"@opencti.local")
	if err != nil || u == nil {
		t.Fatalf("user of the Wazuh instance not on the platform: %v", err)
	}
	if u.Name != user || !slices.Equal(u.Groups, []string{opencti.ConnectorGroup(opencti.ExternalImport)}) || u.AccountStatus != openctiapi.AccountActive || u.APIToken != token {
		t.Errorf("platform user %s groups %v status %s token matches %v; want %s, [Connectors], Active, the api_key", u.Name, u.Groups, u.AccountStatus, u.APIToken == token, user)
	}
	me, err := (&openctiapi.Client{BaseURL: octi.OpenCTI.PublicURL, Token: token, HTTP: &http.Client{Timeout: 10 * time.Second}}).Me(ctx)
	if err != nil || me.Name != user {
		t.Errorf("me at %s with the api_key = %+v, %v; want %s", hook, me, err, user)
	}

	// The token is in no history, even decoded: only its reference.
	for _, id := range []string{workflows.WazuhDeployWorkflowID(inst.Name), run.GetID()} {
		h := decodedHistory(t, c, id)
		if strings.Contains(h, token) {
			t.Errorf("the decoded history of %s holds the connector token", id)
		}
		if id == workflows.WazuhDeployWorkflowID(inst.Name) && !strings.Contains(h, string(res.OpenCTI.Token)) {
			t.Errorf("the decoded history of %s does not even hold the token's reference: is it decoded?", id)
		}
	}

	// The OpenCTI instance's reconcile deactivates a hand-made connector-* user, not this one.
	group, err := admin.GroupID(ctx, "Connectors")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AddUser(ctx, openctiapi.NewUser{Name: "connector-handmade", Email: "handmade@opencti.local", Password: "handmade-password", GroupIDs: []string{group}}); err != nil {
		t.Fatal(err)
	}
	two := 2
	ch, err := setConfig(t, c, run.GetID(), workflows.SetConfigRequest{RequestID: "workers-2", Workers: &two})
	if err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	if !slices.Equal(ch.UsersDeactivated, []string{"connector-handmade"}) {
		t.Errorf("the reconcile deactivated %v, want only connector-handmade", ch.UsersDeactivated)
	}
	if u, err := admin.UserByEmail(ctx, "wazuh."+inst.Name+"@opencti.local"); err != nil || u == nil || u.AccountStatus != openctiapi.AccountActive {
		t.Errorf("after the OpenCTI instance's reconcile the Wazuh user is %+v (%v), want active", u, err)
	}

	// A redeploy finds the user and the nodes as they are.
	before := logCount(t, inst.Nodes[0].Pebble.Socket, wazuh.ManagerService, "Completed.")
	var again workflows.DeployWazuhResult
	if err := startWazuhDeploy(t, c, queue, inst).Get(ctx, &again); err != nil {
		t.Fatalf("redeploy failed: %v", err)
	}
	if r := again.OpenCTI; r == nil || r.UserCreated || r.Token != res.OpenCTI.Token {
		t.Errorf("redeploy's opencti %+v, want the same token reference and no new user", r)
	}
	if after := logCount(t, inst.Nodes[0].Pebble.Socket, wazuh.ManagerService, "Completed."); after != before {
		t.Errorf("the redeploy reloaded the unchanged master (%d reloads, then %d)", before, after)
	}
}

// decodedHistory is every payload of a workflow's latest run's history, decoded with
// the stack's codec key ring (SOCFLOW_CODEC_KEYS), as one text: what anyone holding
// the keys could read of it.
func decodedHistory(t *testing.T, c tclient.Client, id string) string {
	t.Helper()
	ring, err := codec.LoadKeyring(os.Getenv("SOCFLOW_CODEC_KEYS"))
	if err != nil {
		t.Fatalf("cannot load the stack's codec keys: %v", err)
	}
	var payloads []*commonpb.Payload
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		if p, ok := m.Interface().(*commonpb.Payload); ok {
			payloads = append(payloads, p)
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsMap():
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool { walk(mv.Message()); return true })
				}
			case fd.Kind() != protoreflect.MessageKind:
			case fd.IsList():
				for i := range v.List().Len() {
					walk(v.List().Get(i).Message())
				}
			default:
				walk(v.Message())
			}
			return true
		})
	}
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		walk(ev.ProtoReflect())
	}
	dec, err := codec.New(ring).Decode(payloads)
	if err != nil {
		t.Fatalf("cannot decode the history of %s: %v", id, err)
	}
	var b strings.Builder
	for _, p := range dec {
		b.Write(p.GetData())
		b.WriteString("\n")
	}
	return b.String()
}
