package workflows

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/socflow/socflow/activities"
)

// TestInstanceIntegrationAndSecretChanges: a Redis password change restarts the
// platform, then (once it is healthy) the workers; removing S3 stops the workers and
// blocks the instance with the charm's words, leaving the platform; a config change
// while blocked only records the spec; S3's return starts the workers again; rotating
// the admin token generates a new value and restarts the platform and workers. Each
// change's Preview, asked just before it, names what it then did.
func TestInstanceIntegrationAndSecretChanges(t *testing.T) {
	var calls callLog
	env := newInstanceEnv(t, &calls)
	env.OnActivity(a.RotateInstanceSecret, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RotateInstanceSecretInput) (activities.RotateInstanceSecretResult, error) {
			calls.add("rotate:" + in.Field)
			return activities.RotateInstanceSecretResult{Ref: rotatedRef(in.Instance, in.Field, in.Generation), Created: true}, nil
		})
	inst := testInstance()
	redis := *inst.Integrations.Redis
	redis.Password = "new-password"
	s3 := *inst.Integrations.S3
	four := 4
	type step struct {
		name string
		req  any
		prev PreviewRequest
	}
	steps := []step{
		{SetIntegrationUpdate, SetIntegrationRequest{RequestID: "redis", Redis: &redis}, PreviewRequest{SetIntegration: &SetIntegrationRequest{Redis: &redis}}},
		{RemoveIntegrationUpdate, RemoveIntegrationRequest{RequestID: "rm-s3", Integration: "s3"}, PreviewRequest{RemoveIntegration: &RemoveIntegrationRequest{Integration: "s3"}}},
		{SetConfigUpdate, SetConfigRequest{RequestID: "workers-4", Workers: &four}, PreviewRequest{SetConfig: &SetConfigRequest{Workers: &four}}},
		{SetIntegrationUpdate, SetIntegrationRequest{RequestID: "s3-back", S3: &s3}, PreviewRequest{SetIntegration: &SetIntegrationRequest{S3: &s3}}},
		{RotateSecretUpdate, RotateSecretRequest{RequestID: "token", Secret: "opencti.adminToken"}, PreviewRequest{RotateSecret: &RotateSecretRequest{Secret: "opencti.adminToken"}}},
	}
	results := map[string]ChangeResult{}
	previews := map[string]Preview{}
	statuses := map[string]InstanceStatus{}
	for i, s := range steps {
		at := time.Duration(i+1) * time.Minute
		id := s.name + "-" + string(rune('a'+i))
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(PreviewQuery, s.prev)
			var p Preview
			if err != nil || v.Get(&p) != nil {
				t.Errorf("preview of %s: %v", id, err)
			}
			previews[id] = p
		}, at-time.Second)
		updateNamed(env, s.name, at, id, s.req, func(r ChangeResult, err error) {
			if err != nil {
				t.Errorf("%s: %v", id, err)
			}
			results[id] = r
		})
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(StatusQuery)
			var st InstanceStatus
			if err != nil || v.Get(&st) != nil {
				t.Errorf("status after %s: %v", id, err)
			}
			statuses[id] = st
		}, at+30*time.Second)
	}
	env.RegisterDelayedCallback(env.CancelWorkflow, 10*time.Minute)
	env.ExecuteWorkflow(OpenCTIInstance, InstanceInput{Instance: inst})

	got := strings.Join(calls.list(), " ")
	_, after, _ := strings.Cut(got, "start:worker-0,worker-1 ")
	want := "restart:platform healthy check restart:worker-0,worker-1 " + // redis password: workers follow the platform
		"stop:worker-0,worker-1 " + // s3 removed: workers stopped, platform left
		"start:worker-0,worker-1,worker-2,worker-3 " + // s3 back (with workers 4 recorded while blocked)
		"rotate:opencti.adminToken restart:platform healthy check restart:worker-0,worker-1,worker-2,worker-3"
	if after != want {
		t.Errorf("calls after the deploy:\n got %s\nwant %s", after, want)
	}
	check := func(id, kind string, restarted, started, stopped []string, blocked string) {
		t.Helper()
		r, p := results[id], previews[id]
		if kind != r.Kind || !slices.Equal(r.Restarted, restarted) || !slices.Equal(r.Started, started) || !slices.Equal(r.Stopped, stopped) || r.Blocked != blocked {
			t.Errorf("%s result %+v", id, r)
		}
		if p.Invalid != "" || p.Summary != r.Summary || !slices.Equal(p.Restart, restarted) || !slices.Equal(p.Start, started) ||
			!slices.Equal(p.Stop, stopped) || p.Blocked != blocked {
			t.Errorf("%s preview %+v does not match its result %+v", id, p, r)
		}
	}
	w01, w0123 := []string{"worker-0", "worker-1"}, []string{"worker-0", "worker-1", "worker-2", "worker-3"}
	check("SetIntegration-a", SetIntegrationUpdate, append([]string{"platform"}, w01...), nil, nil, "")
	check("RemoveIntegration-b", RemoveIntegrationUpdate, nil, nil, w01, "missing integration(s): s3")
	check("SetConfig-c", SetConfigUpdate, nil, nil, nil, "missing integration(s): s3")
	check("SetIntegration-d", SetIntegrationUpdate, nil, w0123, nil, "")
	check("RotateSecret-e", RotateSecretUpdate, append([]string{"platform"}, w0123...), nil, nil, "")
	if r := results["SetIntegration-a"]; len(r.Changed) != 1 || r.Changed[0].Service != "platform" || r.Changed[0].Env[0].Key != "REDIS__PASSWORD" ||
		r.Changed[0].Env[0].New != "<secret>" {
		t.Errorf("redis change shows %+v, want the platform's REDIS__PASSWORD, masked", r.Changed)
	}
	if st := statuses["RemoveIntegration-b"]; st.Status.Kind != StatusBlocked || !strings.HasPrefix(st.Status.Message, "missing integration(s): s3") ||
		strings.Join(st.Missing, ",") != "s3" {
		t.Errorf("status after removing s3: %+v", st)
	}
	if st := statuses["SetIntegration-d"]; st.Status.Kind != StatusActive || len(st.Missing) != 0 || st.Workers != 4 {
		t.Errorf("status after s3 came back: %+v", st)
	}
	if r := results["RotateSecret-e"]; strings.Join(r.Rotated, ",") != "opencti.adminToken" {
		t.Errorf("rotation result %+v", r)
	}
}

// TestInstanceRejectsBadChangesOfEveryKind: every Update's validator rejects bad input
// (nothing is applied), and every Signal twin's bad input is listed as rejected.
func TestInstanceRejectsBadChangesOfEveryKind(t *testing.T) {
	var calls callLog
	env := newInstanceEnv(t, &calls)
	bad := map[string]string{
		SetConfigUpdate:         `{"workers": -1}`,
		SetIntegrationUpdate:    `{"mongodb": {"host": "x"}}`,
		RemoveIntegrationUpdate: `{"integration": "mongodb"}`,
		RotateSecretUpdate:      `{"secret": "opencti.encryptionKey"}`,
		ApplySpecUpdate:         `{"spec": {"name": "other"}}`,
		AddConnectorUpdate:      `{"connector": {"name": "mitre", "type": "IMPORT"}}`,
		RemoveConnectorUpdate:   `{"name": "ghost"}`,
		UpgradeUpdate:           `{"targetVersion": "6.9.3"}`,
	}
	rejected := map[string]error{}
	for i, name := range ChangeNames {
		env.RegisterDelayedCallback(func() {
			env.UpdateWorkflow(name, "u-"+name, &testsuite.TestUpdateCallback{
				OnAccept:   func() { t.Errorf("%s accepted %s", name, bad[name]) },
				OnReject:   func(err error) { rejected[name] = err },
				OnComplete: func(any, error) {},
			}, rawJSON(bad[name]))
			env.SignalWorkflow(name, rawJSON(bad[name]))
		}, time.Duration(i+1)*time.Minute)
	}
	var st InstanceStatus
	env.RegisterDelayedCallback(func() {
		v, _ := env.QueryWorkflow(StatusQuery)
		_ = v.Get(&st)
		env.CancelWorkflow()
	}, 10*time.Minute)
	inst := testInstance()
	env.ExecuteWorkflow(OpenCTIInstance, InstanceInput{Instance: inst})
	want := map[string]string{
		SetConfigUpdate: "opencti.workers: must be at least 1", SetIntegrationUpdate: "mongodb: is not a field",
		RemoveIntegrationUpdate: "integration: is not an integration", RotateSecretUpdate: "secret: opencti.encryptionKey cannot be rotated",
		ApplySpecUpdate: "spec.name:", AddConnectorUpdate: "connector.type: must be one of EXTERNAL_IMPORT",
		RemoveConnectorUpdate: `name: is not a connector of this instance (got "ghost")`,
		UpgradeUpdate:         "targetVersion: is the version the instance runs (6.9.3)",
	}
	for _, name := range ChangeNames {
		if err := rejected[name]; err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s update: rejection %v, want %q", name, err, want[name])
		}
	}
	var kinds []string
	for _, o := range st.Recent {
		if o.State != "rejected" || o.Via != "signal" {
			t.Errorf("outcome %+v, want a rejected signal", o)
		}
		kinds = append(kinds, o.Kind)
	}
	if !slices.Equal(kinds, ChangeNames) || st.Status.Kind != StatusActive {
		t.Errorf("rejected signals %v, status %+v; want one of each kind and the instance active", kinds, st.Status)
	}
	if got := strings.Join(calls.list(), " "); strings.Contains(got, "restart") || strings.Contains(got, "stop") {
		t.Errorf("a rejected change acted: %s", got)
	}
}

// rawJSON passes JSON text through the test environment's converter as it is.
func rawJSON(s string) any { return jsonRaw(s) }

type jsonRaw string

func (j jsonRaw) MarshalJSON() ([]byte, error) { return []byte(j), nil }

// TestInstanceStatusShowsTheDeploysRetriedStep: while the deploy child retries a step,
// the instance's own status names the deploy's step, attempt and last error (the child
// tells its parent each change, DeployProgressChange), not only "deploying".
func TestInstanceStatusShowsTheDeploysRetriedStep(t *testing.T) {
	var calls callLog
	env := newEnv(t)
	env.RegisterWorkflow(OpenCTIInstance)
	happyMocks(env, &calls, "apply")
	n := 0
	env.OnActivity(a.ApplyOpenCTIPlan, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.ApplyOpenCTIPlanInput) (activities.ApplyOpenCTIPlanResult, error) {
			if n++; n <= 3 {
				return activities.ApplyOpenCTIPlanResult{}, temporal.NewApplicationError(noSocket, "PebbleUnreachable")
			}
			return activities.ApplyOpenCTIPlanResult{PlatformDigest: "d"}, nil
		})
	var during, after InstanceStatus
	query := func(into *InstanceStatus) func() {
		return func() {
			v, err := env.QueryWorkflow(StatusQuery)
			if err != nil || v.Get(into) != nil {
				t.Errorf("status query: %v", err)
			}
		}
	}
	env.RegisterDelayedCallback(query(&during), 5*time.Second)
	env.RegisterDelayedCallback(query(&after), time.Minute)
	env.RegisterDelayedCallback(env.CancelWorkflow, 2*time.Minute)
	env.ExecuteWorkflow(OpenCTIInstance, InstanceInput{Instance: testInstance()})
	s := during.Status
	if s.Step != "deploying/pushing-plan" || s.Attempt < 2 || s.LastError != noSocket || s.Kind != StatusWaiting ||
		!strings.HasPrefix(s.Message, "deploying (workflow opencti-deploy-unit): ") {
		t.Errorf("instance status while the deploy retries: %+v", s)
	}
	if after.Status.Kind != StatusActive || !after.Deployed {
		t.Errorf("instance status after the deploy: %+v", after.Status)
	}
}

// TestChangeInProgressCountsForPreviewAndValidators: while a change is applied, the
// preview and the validators see it (it stays queued until recorded): the same change
// again previews as doing nothing after it, and a second removal of the same
// integration is rejected instead of failing later.
func TestChangeInProgressCountsForPreviewAndValidators(t *testing.T) {
	var calls callLog
	env := newInstanceEnv(t, &calls, time.Minute)
	debug := SetConfigRequest{LogLevel: "debug"}
	updateNamed(env, RemoveIntegrationUpdate, time.Minute, "rm1", RemoveIntegrationRequest{Integration: "s3"}, func(ChangeResult, error) {})
	var during Preview
	var rejected error
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(PreviewQuery, PreviewRequest{SetConfig: &debug})
		if err != nil || v.Get(&during) != nil {
			t.Errorf("preview: %v", err)
		}
		env.UpdateWorkflow(RemoveIntegrationUpdate, "rm2", &testsuite.TestUpdateCallback{
			OnAccept: func() { t.Error("a second removal of s3 was accepted while the first was applied") },
			OnReject: func(err error) { rejected = err }, OnComplete: func(any, error) {},
		}, RemoveIntegrationRequest{Integration: "s3"})
	}, 90*time.Second)
	env.RegisterDelayedCallback(env.CancelWorkflow, 5*time.Minute)
	env.ExecuteWorkflow(OpenCTIInstance, InstanceInput{Instance: testInstance()})
	if during.Pending != 1 || during.Blocked != "missing integration(s): s3" || len(during.Restart) != 0 {
		t.Errorf("preview during the removal: %+v, want it counted (pending 1, blocked after it)", during)
	}
	if rejected == nil || !strings.Contains(rejected.Error(), "s3 is already removed") {
		t.Errorf("second removal: %v", rejected)
	}
}
