package openctistandin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/google/uuid"
)

// API tokens as each major version keeps them (docs/opencti.md §8): 6.x stores a
// user's token in clear in api_token and compares it as given; 7.x stores only
// HMAC-SHA256 hashes under api_tokens, keyed with APP__ENCRYPTION_KEY, and
// compares the HMAC of the presented token. So after the upgrade a token keeps
// working under the same key and every token breaks when the key changes —
// except APP__ADMIN__TOKEN, which the admin user is given again at every boot.

// apiTokenDoc is one entry of a 7.x user's api_tokens. pycti 7.x reads id and
// name (connectorsForWorker { connector_user { api_tokens { id name } } }); the
// hash never leaves the store.
type apiTokenDoc struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Hash      string `json:"hash"`
	CreatedAt string `json:"created_at"`
}

// Names of the tokens the stand-in writes: the one the legacy_token_migration
// makes of a 6.x api_token, the admin's from APP__ADMIN__TOKEN, and the one a
// user gets from userAdd or tokenRenew (its clear value lost on 7.x).
const (
	legacyTokenName = "Legacy token"
	adminTokenName  = "APP__ADMIN__TOKEN"
	userTokenName   = "Default"
)

// tokenKey is the HMAC key of 7.x API tokens, APP__ENCRYPTION_KEY decoded; nil
// for 6.x, whose tokens are kept in clear. validateForVersion has refused a
// missing or short key before this is used.
func (c Config) tokenKey() []byte {
	v, err := parseVersion(c.Version)
	if err != nil || v[0] < 7 {
		return nil
	}
	key, err := base64.StdEncoding.DecodeString(c.EncryptionKey)
	if err != nil || len(key) == 0 {
		return nil
	}
	return key
}

// tokenHash is the stored form of a 7.x token: hex HMAC-SHA256 under key.
func tokenHash(key []byte, token string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// newAPIToken hashes token into an api_tokens entry.
func newAPIToken(key []byte, name, token string) apiTokenDoc {
	return apiTokenDoc{ID: uuid.NewString(), Name: name, Hash: tokenHash(key, token), CreatedAt: nowISO()}
}

// setToken gives the user token as its only API token: in clear on 6.x (key
// nil), as a hash on 7.x, where the clear token is not kept anywhere.
func setToken(u *userDoc, key []byte, name, token string) {
	if key == nil {
		u.APIToken = token
		return
	}
	u.APIToken = ""
	u.APITokens = []apiTokenDoc{newAPIToken(key, name, token)}
}

// tokenMatches reports whether token authenticates u: equal to api_token on
// 6.x, or on 7.x with an HMAC under key equal to one of its api_tokens.
func tokenMatches(u userDoc, key []byte, token string) bool {
	if token == "" {
		return false
	}
	if key == nil {
		return u.APIToken != "" && hmac.Equal([]byte(u.APIToken), []byte(token))
	}
	want := []byte(tokenHash(key, token))
	for _, t := range u.APITokens {
		if hmac.Equal([]byte(strings.ToLower(t.Hash)), want) {
			return true
		}
	}
	return false
}

// migrateLegacyTokens is the legacy_token_migration: every user's clear
// api_token becomes an HMAC under api_tokens, keyed with APP__ENCRYPTION_KEY,
// and the clear token is gone. A user already migrated (a replay) is left as is.
func migrateLegacyTokens(ctx context.Context, o objectStore, key []byte) error {
	if key == nil {
		return newError(ConfigurationErrorName, "app:encryption_key configuration is missing or invalid", nil, nil, nil)
	}
	users, err := listAs[userDoc](ctx, o, entityUser)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.APIToken == "" {
			continue
		}
		u.APITokens = append(u.APITokens, newAPIToken(key, legacyTokenName, u.APIToken))
		u.APIToken, u.UpdatedAt = "", nowISO()
		if err := o.put(ctx, entityUser, u.InternalID, u); err != nil {
			return err
		}
	}
	return nil
}
