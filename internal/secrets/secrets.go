// Package secrets resolves secret references (file:, env:, store:, literal) and keeps
// socflow's own generated secrets in a local store: a directory of 0600 files keyed by
// instance. Workflows carry only references; values are read here, inside activities.
package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/socflow/socflow/internal/spec"
)

// ErrNotFound reports a reference whose file, variable or store entry does not exist; it
// is permanent for the run (retrying does not create it), so activities classify it so.
var ErrNotFound = errors.New("secret not found")

// Store keeps generated secrets under Dir/<instance>/<key>, each a 0600 file written once.
type Store struct {
	// Dir is the store root; it is created 0700 on first write.
	Dir string
}

var keyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}/[a-z0-9][a-z0-9-]{0,62}$`)

// Ref returns the reference of one stored secret of an instance.
func Ref(instance, key string) spec.SecretRef {
	return spec.SecretRef("store:" + instance + "/" + key)
}

// Resolve returns the value a reference points at. Literals are returned as they are
// (allowed for local use); surrounding whitespace of files is trimmed because editors
// add trailing newlines that no password contains.
func (s *Store) Resolve(ref spec.SecretRef) (string, error) {
	switch ref.Kind() {
	case spec.SecretLiteral:
		return string(ref), nil
	case spec.SecretEnv:
		v, ok := os.LookupEnv(ref.Target())
		if !ok {
			return "", fmt.Errorf("cannot resolve %s: environment variable %s is not set on the worker: %w", ref, ref.Target(), ErrNotFound)
		}
		return v, nil
	case spec.SecretFile:
		b, err := os.ReadFile(ref.Target())
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("cannot resolve %s: no such file on the worker: %w", ref, ErrNotFound)
		}
		if err != nil {
			return "", fmt.Errorf("cannot resolve %s: %w", ref, err)
		}
		return strings.TrimSpace(string(b)), nil
	case spec.SecretStore:
		path, err := s.path(ref.Target())
		if err != nil {
			return "", err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("cannot resolve %s: not in the secret store %s: %w", ref, s.Dir, ErrNotFound)
		}
		if err != nil {
			return "", fmt.Errorf("cannot resolve %s: %w", ref, err)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("cannot resolve %s: unknown reference kind", ref)
}

// Ensure returns the reference of instance/key, generating and storing the value with gen
// only when it is not stored yet, so a retried or resumed deploy never regenerates a
// secret the platform already uses. created says whether this call wrote it.
func (s *Store) Ensure(instance, key string, gen func() (string, error)) (ref spec.SecretRef, created bool, err error) {
	path, err := s.path(instance + "/" + key)
	if err != nil {
		return "", false, err
	}
	ref = Ref(instance, key)
	if _, err := os.Stat(path); err == nil {
		return ref, false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("cannot create secret store directory: %w", err)
	}
	v, err := gen()
	if err != nil {
		return "", false, fmt.Errorf("cannot generate %s: %w", ref, err)
	}
	// Write to a temporary file and link it into place: link fails if another attempt won
	// the race, and a crash never leaves a half-written secret under the real name.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+key+"-*")
	if err != nil {
		return "", false, fmt.Errorf("cannot write %s: %w", ref, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(v); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("cannot write %s: %w", ref, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("cannot write %s: %w", ref, err)
	}
	if err := tmp.Close(); err != nil {
		return "", false, fmt.Errorf("cannot write %s: %w", ref, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return ref, false, nil
		}
		return "", false, fmt.Errorf("cannot store %s: %w", ref, err)
	}
	return ref, true, nil
}

// Put stores value under instance/key, replacing what is there, and returns its
// reference: for values socflow keeps but does not generate (a connector user's API
// token, which the platform owns). The file is replaced whole, never half-written.
func (s *Store) Put(instance, key, value string) (spec.SecretRef, error) {
	path, err := s.path(instance + "/" + key)
	if err != nil {
		return "", err
	}
	ref := Ref(instance, key)
	if old, err := os.ReadFile(path); err == nil && string(old) == value {
		return ref, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("cannot create secret store directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+key+"-*")
	if err != nil {
		return "", fmt.Errorf("cannot write %s: %w", ref, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(value)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("cannot store %s: %w", ref, err)
	}
	return ref, nil
}

func (s *Store) path(target string) (string, error) {
	if s == nil || s.Dir == "" {
		return "", errors.New("cannot use the secret store: no store directory is configured (set SOCFLOW_SECRET_DIR on the worker)")
	}
	if !keyPattern.MatchString(target) {
		return "", fmt.Errorf("cannot use secret store key %q: want <instance>/<key> in lowercase letters, digits and dashes", target)
	}
	return filepath.Join(s.Dir, filepath.FromSlash(target)), nil
}

// NewUUIDv4 generates an OpenCTI admin token (OpenCTI requires a UUIDv4).
func NewUUIDv4() (string, error) {
	u, err := uuid.NewRandom()
	return u.String(), err
}

// NewHex generates an n-byte random hex string: health keys must survive a query
// string unencoded, so no '+', '/' or '='.
func NewHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", b), nil
}

// NewBase64Key generates an n-byte random key in standard base64 (OpenCTI 7's
// APP__ENCRYPTION_KEY wants >= 32 bytes, base64).
func NewBase64Key(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
