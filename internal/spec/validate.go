package spec

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// Problem is one thing wrong with a spec: the JSON path of the field, what is
// wrong with it and how to fix it, so a user can act without reading code.
type Problem struct {
	// Field is the JSON path, e.g. integrations.rabbitmq.port.
	Field string `json:"field"`
	// Message says what is wrong; it never contains a literal secret.
	Message string `json:"message"`
	// Fix says what to change; it may be empty.
	Fix string `json:"fix,omitempty"`
}

// ValidationError lists every problem of a spec at once, so a user fixes them
// in one pass instead of one per run.
type ValidationError struct {
	// Problems are in field order.
	Problems []Problem `json:"problems"`
}

// Error prints one "field: message (fix: ...)" line per problem.
func (e *ValidationError) Error() string {
	if len(e.Problems) == 0 {
		return "invalid instance spec"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Field + ": " + p.Message
		if p.Fix != "" {
			lines[i] += " (fix: " + p.Fix + ")"
		}
	}
	return strings.Join(lines, "\n")
}

// Checker collects problems in the order fields are checked; each app's
// validation embeds one and calls the shared checks below for the fields and
// sections it shares with other apps, so messages stay the same everywhere.
type Checker struct{ problems []Problem }

// Add records one problem.
func (c *Checker) Add(field, msg, fix string) {
	c.problems = append(c.problems, Problem{Field: field, Message: msg, Fix: fix})
}

// Err returns a *ValidationError listing every problem added, or nil.
func (c *Checker) Err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: c.problems}
}

// ValidEnvName reports whether k can name an environment variable.
func ValidEnvName(k string) bool { return envNameRE.MatchString(k) }

// Pebble checks the workload container's Pebble endpoint (the pebble section).
func (c *Checker) Pebble(pb Pebble) {
	switch {
	case pb.Socket != "" && pb.URL != "":
		c.Add("pebble", "must set exactly one of socket or url (both are set)", "remove pebble.socket or pebble.url")
		return
	case pb.Socket == "" && pb.URL == "":
		c.Add("pebble", "must set exactly one of socket or url (neither is set)",
			"set pebble.socket to the workload container's .pebble.socket, or pebble.url to https://host:port")
		return
	case pb.Socket != "":
		c.AbsPath("pebble.socket", pb.Socket)
		for _, f := range pb.tlsFields() {
			if !f.ref.IsZero() {
				c.Add(f.name, "is only used with pebble.url, not with pebble.socket",
					"remove "+f.name+", or reach Pebble over HTTPS with pebble.url instead of pebble.socket")
			}
		}
	default:
		if msg := pebbleURLProblem(pb.URL); msg != "" {
			c.Add("pebble.url", msg, "write it as https://host:port, the address of `pebble run --https`")
		}
		for _, f := range pb.tlsFields() {
			if f.ref.IsZero() {
				c.Add(f.name, "is required with pebble.url", f.fix)
				continue
			}
			c.Secret(f.name, f.ref, true, f.literal)
		}
	}
}

// PebbleAt checks a Pebble endpoint found at path at (such as connectors[0].pebble)
// rather than at the spec's top-level pebble: Pebble's problems, named under at.
func (c *Checker) PebbleAt(at string, pb Pebble) {
	var sub Checker
	sub.Pebble(pb)
	for _, p := range sub.problems {
		p.Field = at + strings.TrimPrefix(p.Field, "pebble")
		c.problems = append(c.problems, p)
	}
}

// pebbleTLSField is one of the settings of Pebble's HTTPS mode, with how to
// obtain it and how to check a literal value.
type pebbleTLSField struct {
	name    string
	ref     SecretRef
	fix     string
	literal func(string) (string, string)
}

// tlsFields lists the HTTPS settings in field order.
func (pb Pebble) tlsFields() []pebbleTLSField {
	return []pebbleTLSField{
		{"pebble.serverCert", pb.ServerCert,
			"set pebble.serverCert to the server's identity certificate, e.g. file:/etc/socflow/pebble-identity.pem copied from $PEBBLE/tls/identity.pem on the workload host",
			certProblem("pebble.serverCert", "copy $PEBBLE/tls/identity.pem from the workload host")},
		{"pebble.clientCert", pb.ClientCert,
			"set pebble.clientCert to socflow's client certificate, e.g. file:/etc/socflow/pebble-client.pem, registered with `pebble add-identities` (type cert, access admin)",
			certProblem("pebble.clientCert", "make one with openssl req -x509 and register it with `pebble add-identities`")},
		{"pebble.clientKey", pb.ClientKey,
			"set pebble.clientKey to the private key of pebble.clientCert, e.g. file:/etc/socflow/pebble-client.key",
			keyProblem},
	}
}

// certProblem checks that a literal holds a PEM certificate Go can parse.
func certProblem(field, fix string) func(string) (string, string) {
	return func(v string) (string, string) {
		b, _ := pem.Decode([]byte(v))
		if b == nil || b.Type != "CERTIFICATE" {
			return "must be a PEM CERTIFICATE block", "point " + field + " at the certificate file (file:/path), or " + fix
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return "must hold a valid X.509 certificate: " + err.Error(), fix
		}
		return "", ""
	}
}

// keyProblem checks that a literal holds a PEM private key block; it never
// echoes the key.
func keyProblem(v string) (string, string) {
	b, _ := pem.Decode([]byte(v))
	if b == nil || !strings.HasSuffix(b.Type, "PRIVATE KEY") {
		return "must be a PEM PRIVATE KEY block", "point pebble.clientKey at the key file (file:/path) of pebble.clientCert"
	}
	return "", ""
}

// pebbleURLProblem accepts only https://host:port, the shape of Pebble's TCP API.
func pebbleURLProblem(s string) string {
	if msg := URLProblem(s, false); msg != "" {
		return msg
	}
	if !strings.HasPrefix(s, "https://") {
		return fmt.Sprintf("must use https (got %q)", s)
	}
	if u, err := url.Parse(s); err != nil || u.Port() == "" {
		return fmt.Sprintf("must include a port (got %q)", s)
	}
	return ""
}

// Secret checks a ref's syntax and, for a literal, its value with literal
// (which returns a message and a fix, or ""); messages never include the literal itself.
func (c *Checker) Secret(field string, r SecretRef, required bool, literal func(string) (string, string)) {
	if r.IsZero() {
		if required {
			c.Add(field, "is required", "set "+field+" to a reference such as env:NAME, file:/path or store:key")
		}
		return
	}
	if msg, fix := r.check(field); msg != "" {
		c.Add(field, msg, fix)
		return
	}
	if literal != nil && r.Kind() == SecretLiteral {
		if msg, fix := literal(string(r)); msg != "" {
			c.Add(field, msg, fix)
		}
	}
}

// nameRE is what every name socflow uses as an identifier may be: instance, node and
// connector names end up in workflow IDs, secret keys, service and user names.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,38}[a-z0-9]$`)

// Name checks a name field (an instance's, a node's, a connector's), with the fix for
// a missing one and for a malformed one; it reports whether the name is valid.
func (c *Checker) Name(field, v, requiredFix, formatFix string) bool {
	switch {
	case v == "":
		c.Add(field, "is required", requiredFix)
	case !nameRE.MatchString(v):
		c.Add(field, fmt.Sprintf("must be 2-40 lowercase letters, digits or dashes, start with a letter and not end with a dash (got %q)", v), formatFix)
	default:
		return true
	}
	return false
}

// Command checks that a command line is not blank.
func (c *Checker) Command(field, v string) {
	if strings.TrimSpace(v) == "" {
		c.Add(field, "must not be empty", "set "+field+" or leave it out to use the default")
	}
}

// AbsPath checks that v is an absolute path.
func (c *Checker) AbsPath(field, v string) {
	if !path.IsAbs(v) || strings.ContainsRune(v, 0) {
		c.Add(field, fmt.Sprintf("must be an absolute path (got %q)", v), "write "+field+" as /absolute/path")
	}
}

// Port checks that v is a TCP port.
func (c *Checker) Port(field string, v int) {
	if v < 1 || v > 65535 {
		c.Add(field, fmt.Sprintf("must be between 1 and 65535 (got %d)", v), "set "+field+" to a TCP port, or leave it out to use the default")
	}
}
