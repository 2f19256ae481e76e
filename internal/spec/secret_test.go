package spec

import (
	"testing"
)

func TestSecretRef(t *testing.T) {
	tests := []struct {
		ref      SecretRef
		kind     SecretKind
		target   string
		redacted string
	}{
		{"", SecretLiteral, "", ""},
		{"hunter2", SecretLiteral, "hunter2", "<literal>"},
		{"file:/etc/socflow/pw", SecretFile, "/etc/socflow/pw", "file:/etc/socflow/pw"},
		{"env:OPENCTI_ADMIN_PASSWORD", SecretEnv, "OPENCTI_ADMIN_PASSWORD", "env:OPENCTI_ADMIN_PASSWORD"},
		{"store:opencti/admin", SecretStore, "opencti/admin", "store:opencti/admin"},
		{"File:/x", SecretLiteral, "File:/x", "<literal>"},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind.String())+"/"+tt.redacted, func(t *testing.T) {
			if got := tt.ref.Kind(); got != tt.kind {
				t.Errorf("Kind() = %v, want %v", got, tt.kind)
			}
			if got := tt.ref.Target(); got != tt.target {
				t.Errorf("Target() = %q, want %q", got, tt.target)
			}
			if got := tt.ref.Redacted(); got != tt.redacted {
				t.Errorf("Redacted() = %q, want %q", got, tt.redacted)
			}
			if got := tt.ref.String(); got != tt.redacted {
				t.Errorf("String() = %q, want %q", got, tt.redacted)
			}
			if got := tt.ref.IsZero(); got != (tt.ref == "") {
				t.Errorf("IsZero() = %v", got)
			}
		})
	}
}

func TestSecretKindString(t *testing.T) {
	for k, want := range map[SecretKind]string{SecretLiteral: "literal", SecretFile: "file", SecretEnv: "env", SecretStore: "store", 9: "SecretKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("SecretKind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}
