package opencti

import (
	"strings"
	"testing"
)

func TestOpenCTIErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      func(t *testing.T) Input
		wantErr []string
	}{
		{"zero input", func(*testing.T) Input { return Input{} }, []string{
			"cannot plan opencti: invalid instance spec:", "name: is required", "integrations: missing integration(s): opensearch, rabbitmq, redis, s3"}},
		{"instance not defaulted", func(t *testing.T) Input {
			inst, err := Parse([]byte(baseSpec))
			if err != nil {
				t.Fatal(err)
			}
			return Input{Instance: inst, Secrets: baseSecrets()}
		}, []string{"opencti.workers: is required", "opencti.port: must be between 1 and 65535 (got 0)"}},
		{"invalid instance", func(t *testing.T) Input {
			in := input(t, nil, nil)
			in.Instance.OpenCTI.Workers = ptr(0)
			return in
		}, []string{"opencti.workers: must be at least 1 (got 0)"}},
		{"empty admin token", func(t *testing.T) Input {
			return input(t, nil, func(s *Secrets) { s.AdminToken = "" })
		}, []string{"cannot plan opencti: resolved opencti.adminToken is empty (socflow generates it when the spec leaves it unset)"}},
		{"admin token not uuid4", func(t *testing.T) Input {
			return input(t, nil, func(s *Secrets) { s.AdminToken = "token" })
		}, []string{"cannot use admin token: must be a UUIDv4"}},
		{"health key with plus", func(t *testing.T) Input {
			return input(t, nil, func(s *Secrets) { s.HealthAccessKey = "a+b" })
		}, []string{`cannot use health access key: must not contain "+"`}},
		{"short encryption key", func(t *testing.T) Input {
			return input(t, nil, func(s *Secrets) { s.EncryptionKey = "AAAA" })
		}, []string{"cannot use encryption key: must decode to at least 32 bytes (got 3)"}},
		{"empty required secrets", func(t *testing.T) Input {
			return input(t, nil, func(s *Secrets) { *s = Secrets{} })
		}, []string{
			"resolved opencti.adminPassword is empty",
			"resolved opencti.healthAccessKey is empty",
			"resolved opencti.encryptionKey is empty",
			"resolved integrations.rabbitmq.password is empty",
			"resolved integrations.s3.accessKey is empty",
			"resolved integrations.s3.secretKey is empty",
		}},
		{"ca set but not resolved", func(t *testing.T) Input {
			return input(t, func(i *Instance) {
				i.Integrations.OpenSearch.URLs = []string{"https://127.0.0.1:9200"}
				i.Integrations.OpenSearch.CA = "file:/etc/ca.pem"
			}, nil)
		}, []string{"resolved integrations.opensearch.ca is empty although the spec sets it to file:/etc/ca.pem"}},
		{"ca resolved but not set", func(t *testing.T) Input {
			return input(t, nil, func(s *Secrets) { s.OpenSearchCA = testCA })
		}, []string{"resolved integrations.opensearch.ca has a value but the spec leaves it unset"}},
		{"ca not pem", func(t *testing.T) Input {
			return input(t, func(i *Instance) {
				i.Integrations.OpenSearch.URLs = []string{"https://127.0.0.1:9200"}
				i.Integrations.OpenSearch.CA = "env:OS_CA"
			}, func(s *Secrets) { s.OpenSearchCA = "not a certificate" })
		}, []string{"cannot use CA bundle: must be a PEM bundle with at least one CERTIFICATE block"}},
		{"redis password literal not resolved", func(t *testing.T) Input {
			return input(t, func(i *Instance) { i.Integrations.Redis.Password = "hunter2" }, nil)
		}, []string{"resolved integrations.redis.password is empty although the spec sets it to <literal>"}},
		{"NUL in a secret", func(t *testing.T) Input {
			return input(t, nil, func(s *Secrets) { s.AdminPassword = "a\x00b" })
		}, []string{"a resolved secret contains a NUL byte"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPlan(tt.in(t))
			if err == nil {
				t.Fatalf("NewPlan() = %+v, want an error", p.Layer)
			}
			if !strings.HasPrefix(err.Error(), "cannot plan opencti: ") {
				t.Errorf("error %q should start with the failed action", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error =\n%v\nwant it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}
