package spec

import (
	"encoding/pem"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// SecretKind says where the value of a SecretRef comes from.
type SecretKind int

// The kinds of SecretRef; Literal is the fallback so that a plain value in a
// local spec needs no prefix.
const (
	// SecretLiteral is a value written into the spec itself.
	SecretLiteral SecretKind = iota
	// SecretFile is a value read from an absolute path on the socflow worker host.
	SecretFile
	// SecretEnv is a value read from an environment variable of the socflow worker.
	SecretEnv
	// SecretStore is a value kept in socflow's own secret store under a key.
	SecretStore
)

// String names the kind as it is written in a ref's prefix, for messages.
func (k SecretKind) String() string {
	switch k {
	case SecretLiteral:
		return "literal"
	case SecretFile:
		return "file"
	case SecretEnv:
		return "env"
	case SecretStore:
		return "store"
	}
	return "SecretKind(" + strconv.Itoa(int(k)) + ")"
}

// The prefixes that turn a SecretRef into a reference instead of a literal.
const (
	filePrefix  = "file:"
	envPrefix   = "env:"
	storePrefix = "store:"
)

// redactedLiteral replaces a literal's value wherever a SecretRef is printed.
const redactedLiteral = "<literal>"

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// SecretRef points at a secret ("file:/abs/path", "env:NAME", "store:key") or,
// without one of those prefixes, holds the secret itself; the zero value means
// "not set". Resolution happens in activities, never here, so the spec stays pure.
type SecretRef string

// Kind reports where the secret's value comes from.
func (r SecretRef) Kind() SecretKind {
	s := string(r)
	switch {
	case strings.HasPrefix(s, filePrefix):
		return SecretFile
	case strings.HasPrefix(s, envPrefix):
		return SecretEnv
	case strings.HasPrefix(s, storePrefix):
		return SecretStore
	}
	return SecretLiteral
}

// Target returns the path, variable name or store key the ref points at, or
// for a literal the secret value itself (so never log it).
func (r SecretRef) Target() string {
	s := string(r)
	switch r.Kind() {
	case SecretFile:
		return strings.TrimPrefix(s, filePrefix)
	case SecretEnv:
		return strings.TrimPrefix(s, envPrefix)
	case SecretStore:
		return strings.TrimPrefix(s, storePrefix)
	}
	return s
}

// IsZero reports whether the ref is unset, which for optional secrets means
// "socflow generates it" or "not used".
func (r SecretRef) IsZero() bool { return r == "" }

// Redacted returns the ref with a literal's value replaced by "<literal>", so
// that specs can be logged; references are printed as written because they
// only say where the secret lives.
func (r SecretRef) Redacted() string {
	if r.IsZero() {
		return ""
	}
	if r.Kind() == SecretLiteral {
		return redactedLiteral
	}
	return string(r)
}

// String is Redacted, so fmt's %v and %s never print a literal secret.
func (r SecretRef) String() string { return r.Redacted() }

// GoString is the quoted Redacted form, so %#v never prints a literal secret.
func (r SecretRef) GoString() string { return strconv.Quote(r.Redacted()) }

// LogValue is the Redacted form, so slog never prints a literal secret.
func (r SecretRef) LogValue() slog.Value { return slog.StringValue(r.Redacted()) }

// check reports why the ref is malformed, as a message and a fix, or "" when
// it is well formed; it never echoes a literal's value.
func (r SecretRef) check(field string) (msg, fix string) {
	if strings.ContainsRune(string(r), 0) {
		return "must not contain a NUL byte", "remove the NUL byte from " + field
	}
	t := r.Target()
	switch r.Kind() {
	case SecretFile:
		if !path.IsAbs(t) {
			return "file reference must use an absolute path (got " + strconv.Quote(t) + ")",
				"write " + field + " as file:/absolute/path"
		}
	case SecretEnv:
		if !envNameRE.MatchString(t) {
			return "env reference must name a variable matching [A-Za-z_][A-Za-z0-9_]* (got " + strconv.Quote(t) + ")",
				"write " + field + " as env:NAME"
		}
	case SecretStore:
		if t == "" {
			return "store reference must name a key", "write " + field + " as store:<key>"
		}
	}
	return "", ""
}

// RedactLiterals replaces every literal among refs with "<literal>", for
// copies of a spec that encoders bypassing String (JSON, slog) will print.
func RedactLiterals(refs []*SecretRef) {
	for _, r := range refs {
		if !r.IsZero() && r.Kind() == SecretLiteral {
			*r = redactedLiteral
		}
	}
}

// CheckCA reports why v cannot be used as a PEM CA bundle; activities call it
// on resolved values, validation on literals.
func CheckCA(v string) error {
	if msg, _ := caProblem(v); msg != "" {
		return fmt.Errorf("cannot use CA bundle: %s", msg)
	}
	return nil
}

func caProblem(v string) (msg, fix string) {
	rest := []byte(v)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return "must be a PEM bundle with at least one CERTIFICATE block",
				"point integrations.opensearch.ca at the CA file, e.g. file:/etc/opensearch/root-ca.pem"
		}
		if b.Type == "CERTIFICATE" {
			return "", ""
		}
	}
}
