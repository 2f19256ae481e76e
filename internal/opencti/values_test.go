package opencti

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/spec"
)

// TestPrintingNeverLeaksLiterals covers every way a spec gets printed: fmt
// verbs, slog, and JSON of Redacted().
func TestPrintingNeverLeaksLiterals(t *testing.T) {
	const secret = "hunter2-literal-secret"
	in := mustLoad(t, "minimal.yaml")
	in.OpenCTI.AdminPassword = secret
	in.Integrations.RabbitMQ.Password = secret
	in.Integrations.S3.SecretKey = secret

	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("spec", "password", in.OpenCTI.AdminPassword)
	red, err := json.Marshal(in.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":            fmt.Sprintf("%v", in),
		"%+v":           fmt.Sprintf("%+v", in),
		"%#v":           fmt.Sprintf("%#v", in),
		"%s of a ref":   fmt.Sprintf("%s", in.OpenCTI.AdminPassword),
		"slog":          logged.String(),
		"Redacted json": string(red),
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s leaks the literal: %s", name, out)
		}
	}
	if r := in.Redacted(); r.OpenCTI.AdminPassword != "<literal>" || r.Integrations.S3.AccessKey != "env:S3_ACCESS_KEY" {
		t.Errorf("Redacted() should mask literals and keep references: %s", red)
	}
	if in.OpenCTI.AdminPassword != secret {
		t.Error("Redacted() changed its receiver")
	}
}

func TestCheckValues(t *testing.T) {
	const pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name  string
		check func(string) error
		value string
		err   string
	}{
		{"token ok", CheckAdminToken, "6f1c2f4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f", ""},
		{"token upper ok", CheckAdminToken, "6F1C2F4E-8A3B-4C5D-9E7F-0A1B2C3D4E5F", ""},
		{"token braces", CheckAdminToken, "{6f1c2f4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f}", "cannot use admin token: must be a UUIDv4 (xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx)"},
		{"token empty", CheckAdminToken, "", "cannot use admin token: must be a UUIDv4 (xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx)"},
		{"health ok", CheckHealthAccessKey, "0123abcd", ""},
		{"health public", CheckHealthAccessKey, "public", ""},
		{"health empty", CheckHealthAccessKey, "", "cannot use health access key: must not be empty"},
		{"health plus", CheckHealthAccessKey, "a+b", `cannot use health access key: must not contain "+", which a query string turns into a space`},
		{"encryption raw base64", CheckEncryptionKey, strings.Repeat("A", 43), ""},
		{"encryption short", CheckEncryptionKey, "AAAA", "cannot use encryption key: must decode to at least 32 bytes (got 3)"},
		{"ca ok", spec.CheckCA, pem, ""},
		{"ca key only", spec.CheckCA, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "cannot use CA bundle: must be a PEM bundle with at least one CERTIFICATE block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(tt.value)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Errorf("error = %q, want %q", got, tt.err)
			}
		})
	}
}
