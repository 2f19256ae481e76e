package opencti

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// MinEncryptionKeyBytes is the decoded size OpenCTI 7 requires of APP__ENCRYPTION_KEY.
const MinEncryptionKeyBytes = 32

// CheckAdminToken reports why v cannot be OpenCTI's admin token, which must be
// a UUIDv4; activities call it on resolved values, Validate on literals.
func CheckAdminToken(v string) error {
	if msg, _ := adminTokenProblem(v); msg != "" {
		return fmt.Errorf("cannot use admin token: %s", msg)
	}
	return nil
}

// CheckHealthAccessKey reports why v cannot be OpenCTI's health access key.
func CheckHealthAccessKey(v string) error {
	if msg, _ := healthKeyProblem(v); msg != "" {
		return fmt.Errorf("cannot use health access key: %s", msg)
	}
	return nil
}

// CheckEncryptionKey reports why v cannot be OpenCTI's encryption key.
func CheckEncryptionKey(v string) error {
	if msg, _ := encryptionKeyProblem(v); msg != "" {
		return fmt.Errorf("cannot use encryption key: %s", msg)
	}
	return nil
}

func adminTokenProblem(v string) (msg, fix string) {
	// uuid.Parse also takes braces and urn: forms; OpenCTI wants the plain one.
	u, err := uuid.Parse(v)
	if len(v) != 36 || err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 {
		return "must be a UUIDv4 (xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx)",
			"leave opencti.adminToken empty to have socflow generate one, or use the output of uuidgen -r"
	}
	return "", ""
}

func healthKeyProblem(v string) (msg, fix string) {
	const fix0 = "leave opencti.healthAccessKey empty to have socflow generate one, or use a hex or UUID key"
	switch {
	case v == "":
		return "must not be empty", fix0
	case strings.Contains(v, "+"):
		return `must not contain "+", which a query string turns into a space`, fix0
	case v == "ChangeMe":
		return `must not be OpenCTI's default "ChangeMe", which the platform refuses`, fix0
	}
	return "", ""
}

func encryptionKeyProblem(v string) (msg, fix string) {
	const fix0 = "leave opencti.encryptionKey empty to have socflow generate one, or use the output of openssl rand -base64 32"
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(v)
	}
	if err != nil {
		return "must be base64", fix0
	}
	if len(b) < MinEncryptionKeyBytes {
		return fmt.Sprintf("must decode to at least %d bytes (got %d)", MinEncryptionKeyBytes, len(b)), fix0
	}
	return "", ""
}
