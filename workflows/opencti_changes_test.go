package workflows

import (
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/opencti"
)

// TestChangesNameTheFieldOfBadInput: every change's decoding and validation rejects
// bad input naming the field and the fix, as the Update validators, the Signal twins
// and Preview all do.
func TestChangesNameTheFieldOfBadInput(t *testing.T) {
	applied := testInstance().WithDefaults()
	noS3 := RemoveIntegrationRequest{Integration: "s3"}.next(applied)
	for _, tc := range []struct {
		name, json, want string
		base             *opencti.Instance
	}{
		{name: SetConfigUpdate, json: `{"workers": -1}`, want: "opencti.workers: must be at least 1 (got -1) (fix:"},
		{name: SetConfigUpdate, json: `{"workers": 33}`, want: "opencti.workers: must be at most 32 (got 33) (fix:"},
		{name: SetConfigUpdate, json: `{"logLevel": "verbose"}`, want: `opencti.logLevel: must be one of error, warn, info, debug (got "verbose") (fix:`},
		{name: SetConfigUpdate, json: `{"publicURL": "ftp:/x"}`, want: "opencti.publicURL:"},
		{name: SetConfigUpdate, json: `{"workers": "five"}`, want: "workers: must be a whole number (got a JSON string) (fix: send requestId"},
		{name: SetConfigUpdate, json: `{"logLevel": 3}`, want: `logLevel: must be a string (got a JSON number) (fix:`},
		{name: SetConfigUpdate, json: `{"workerz": 5}`, want: "workerz: is not a field of this request (fix:"},
		{name: SetConfigUpdate, json: `{"Workers": 5}`, want: `Workers: is not a field of this request (did you mean "workers"?)`},
		{name: SetConfigUpdate, json: `{}`, want: "(input): changes nothing (fix:"},
		{name: SetConfigUpdate, json: `[1]`, want: "(input): must be a JSON object (got a JSON array)"},
		{name: SetConfigUpdate, json: ``, want: "(input): is not a JSON object"},
		{name: SetConfigUpdate, json: `null`, want: "(input): is not a JSON object"},
		{name: SetIntegrationUpdate, json: `{"mongodb": {}}`, want: "mongodb: is not a field of this request (fix: send requestId (string) and one or more of opensearch, rabbitmq, redis, s3"},
		{name: SetIntegrationUpdate, json: `{}`, want: "(input): sets no integration"},
		{name: SetIntegrationUpdate, json: `{"redis": {"host": "127.0.0.1", "port": "6379"}}`, want: "redis.port: must be a whole number (got a JSON string)"},
		{name: SetIntegrationUpdate, json: `{"redis": {"host": "127.0.0.1", "passwrd": "x"}}`, want: "redis.passwrd: is not a field of this request"},
		{name: SetIntegrationUpdate, json: `{"s3": {"endpoint": "not a url", "accessKey": "a", "secretKey": "s"}}`, want: "integrations.s3.endpoint:"},
		{name: SetIntegrationUpdate, json: `{"redis": {"host": "127.0.0.1", "port": 70000}}`, want: "integrations.redis.port:"},
		{name: RemoveIntegrationUpdate, json: `{"integration": "mongodb"}`, want: `integration: is not an integration of OpenCTI (got "mongodb") (fix: use one of opensearch, rabbitmq, redis, s3)`},
		{name: RemoveIntegrationUpdate, json: `{}`, want: "integration: is required"},
		{name: RemoveIntegrationUpdate, json: `{"integration": "s3"}`, want: "integration: s3 is already removed (fix: send SetIntegration", base: &noS3},
		{name: RotateSecretUpdate, json: `{"secret": "opencti.encryptionKey"}`, want: "secret: opencti.encryptionKey cannot be rotated: OpenCTI 7 hashes every API token with it"},
		{name: RotateSecretUpdate, json: `{"secret": "opencti.apiKey"}`, want: `secret: is not a secret of an OpenCTI instance (got "opencti.apiKey") (fix: use one of opencti.adminPassword, opencti.adminToken`},
		{name: RotateSecretUpdate, json: `{"secret": "integrations.redis.password"}`, want: "secret: integrations.redis.password is not set in the spec"},
		{name: RotateSecretUpdate, json: `{"secret": "integrations.s3.secretKey"}`, want: "secret: integrations.s3.secretKey belongs to an integration that is removed", base: &noS3},
		{name: RotateSecretUpdate, json: `{"secret": 5}`, want: "secret: must be a string (got a JSON number)"},
		{name: ApplySpecUpdate, json: `{"spec": {"name": "other"}}`, want: `spec.name: is "other", not this instance's "unit"`},
		{name: ApplySpecUpdate, json: `{"spec": {"name": "unit", "opencti": {"version": "7.260318.0"}}}`, want: "spec.opencti.version: changes 6.9.3 -> 7.260318.0: that is an upgrade"},
		{name: ApplySpecUpdate, json: `{"spec": {"name": "unit", "opencti": {"workerz": 1}}}`, want: "spec.opencti.workerz: is not a field of this request"},
		{name: "Rollback", json: `{}`, want: "Rollback is not a change of an OpenCTI instance"},
		{name: UpgradeUpdate, json: `{}`, want: "Upgrade: targetVersion: is required"},
		{name: UpgradeUpdate, json: `{"targetVersion": "6.9.2"}`, want: "targetVersion: 6.9.2 is older than the running 6.9.3: OpenCTI cannot downgrade its data"},
	} {
		base := applied
		if tc.base != nil {
			base = *tc.base
		}
		_, err := checkChange(tc.name, []byte(tc.json), base)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: error %v, want %q", tc.name, tc.json, err, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), tc.name+": ") && tc.name != "Rollback" {
			t.Errorf("%s %s: error %q does not start with the change's name", tc.name, tc.json, err)
		}
	}
	if got := requestIDOf([]byte(`{"requestId": "r9", "workers": "five"}`)); got != "r9" {
		t.Errorf("a bad change lost its request ID: %q", got)
	}
}

// TestChangesApplyToACopy: each change leaves a new spec, never touching the applied
// one or sharing a pointer with its request, and says what it does.
func TestChangesApplyToACopy(t *testing.T) {
	applied := testInstance().WithDefaults()
	five, empty := 5, ""
	r := SetConfigRequest{Workers: &five, LogLevel: opencti.LogDebug, BasePath: &empty}
	if err := r.validate(applied); err != nil {
		t.Fatal(err)
	}
	next := r.next(applied)
	if *next.OpenCTI.Workers != 5 || next.OpenCTI.LogLevel != opencti.LogDebug || *applied.OpenCTI.Workers != 2 || applied.OpenCTI.LogLevel != opencti.LogInfo {
		t.Errorf("applied %+v next %+v", applied.OpenCTI, next.OpenCTI)
	}
	if got := r.summary(applied); got != "workers 2 -> 5, logLevel info -> debug" {
		t.Errorf("summary %q", got)
	}
	five = 7
	if *next.OpenCTI.Workers != 5 {
		t.Errorf("new spec shares the request's workers pointer")
	}

	rm := RemoveIntegrationRequest{Integration: "s3"}
	noS3 := rm.next(applied)
	if applied.Integrations.S3 == nil || noS3.Integrations.S3 != nil || strings.Join(noS3.Missing(), ",") != "s3" {
		t.Errorf("remove s3: applied %+v next %+v", applied.Integrations.S3, noS3.Integrations.S3)
	}
	if got := rm.summary(applied); got != "s3 removed" {
		t.Errorf("remove summary %q", got)
	}
	back := SetIntegrationRequest{S3: applied.Integrations.S3}
	if err := back.validate(noS3); err != nil {
		t.Fatal(err)
	}
	restored := back.next(noS3)
	if len(restored.Missing()) != 0 || restored.Integrations.S3 == applied.Integrations.S3 || *restored.Integrations.S3 != *applied.Integrations.S3 {
		t.Errorf("restored s3 %+v (shared pointer: %v)", restored.Integrations.S3, restored.Integrations.S3 == applied.Integrations.S3)
	}
	if got := back.summary(noS3); got != "s3 set" {
		t.Errorf("set summary %q", got)
	}
	redis := *applied.Integrations.Redis
	redis.Password = "file:/run/secrets/redis"
	if got := (SetIntegrationRequest{Redis: &redis}).summary(applied); got != "redis changed" {
		t.Errorf("redis summary %q", got)
	}

	if got := (RotateSecretRequest{Secret: "opencti.adminToken"}).summary(applied); got != "rotate opencti.adminToken (new value)" {
		t.Errorf("rotate summary %q", got)
	}
	if got := (RotateSecretRequest{Secret: "integrations.rabbitmq.password"}).summary(applied); got != "re-read integrations.rabbitmq.password" {
		t.Errorf("re-read summary %q", got)
	}
	wanted := applied
	wanted.OpenCTI.Workers = &five
	wanted.Integrations.S3 = nil
	if got := (ApplySpecRequest{Spec: wanted}).summary(applied); got != "workers 2 -> 7, s3 removed" {
		t.Errorf("apply-spec summary %q", got)
	}
	if got := (ApplySpecRequest{Spec: testInstance()}).summary(applied); got != "no difference" {
		t.Errorf("apply-spec of the same spec: %q", got)
	}
}

// TestApplySpecTakesTheSpecsOwnSecretReferences: a spec change that gives a generated
// secret a reference of its own makes the plan use it (and the preview show it), and
// dropping a given reference is refused.
func TestApplySpecTakesTheSpecsOwnSecretReferences(t *testing.T) {
	applied := testInstance().WithDefaults()
	w := &instance{st: InstanceState{Spec: applied, Pushed: &applied, Secrets: refs, Deployed: true}}
	wanted := applied
	wanted.OpenCTI.AdminToken = "file:/run/secrets/token"
	p, err := w.preview([]byte(`{"applySpec": {"spec": ` + string(mustJSON(wanted)) + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Invalid != "" || p.Summary != "adminToken reference changed" || len(p.Restart) != 3 || p.Restart[0] != "platform" {
		t.Errorf("preview of a new admin token reference: %+v", p)
	}
	next := w.pending()
	next.advance(ApplySpecRequest{Spec: wanted})
	if next.secrets.AdminToken != "file:/run/secrets/token" || next.secrets.HealthAccessKey != refs.HealthAccessKey {
		t.Errorf("secrets after the change %+v", next.secrets)
	}
	w.st.Spec, w.st.Pushed = wanted, &wanted
	if _, err := checkChange(ApplySpecUpdate, []byte(`{"spec": `+string(mustJSON(applied))+`}`), wanted); err == nil ||
		!strings.Contains(err.Error(), "spec.opencti.adminToken: drops the reference the instance runs with") {
		t.Errorf("dropping a given reference: %v", err)
	}
}
