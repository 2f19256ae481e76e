package openctistandin

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"

	"github.com/google/uuid"
)

// newJWKS is the JSON Web Key Set a 7.x platform hands every connector at
// registerConnector (Connector.jwks): the public keys of what it signs for its
// connectors. pycti 7 asks for the field in its registration and loads it with
// PyJWKSet.from_json, so a platform without it fails every connector's start
// ('Cannot query field "jwks" on type "Connector"'). One RSA key per process.
func newJWKS() (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := map[string]string{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": uuid.NewString(),
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}
	out, err := json.Marshal(map[string]any{"keys": []any{jwk}})
	return string(out), err
}

// Jwks is Connector.jwks, a 7.x field (schemaFor adds it).
func (c *connectorResolver) Jwks() *string {
	if c.st == nil || c.st.jwks == "" {
		return nil
	}
	return &c.st.jwks
}
