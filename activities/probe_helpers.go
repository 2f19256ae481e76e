package activities

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"syscall"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
)

// netReason turns a transport error into the short phrase an operator acts on
// ("connection refused", "timed out"), keeping the raw text only when it is
// none of the usual suspects.
func netReason(err error) string {
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &dnsErr):
		return "cannot resolve host " + dnsErr.Name
	case errors.As(err, &unknownCA):
		return "TLS certificate signed by an unknown authority"
	case errors.As(err, &hostErr):
		return "TLS certificate does not match the host: " + hostErr.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("timed out (no answer within %s)", DefaultCallTimeout)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("timed out (no answer within %s)", DefaultCallTimeout)
	}
	return err.Error()
}

var versionRE = regexp.MustCompile(`^v?(\d+)\.(\d+)`)

// versionAtLeast reports whether version (X.Y[...]) is at least major.minor;
// parsed is false when the version is not in that form and nothing was compared.
func versionAtLeast(version string, major, minor int) (ok, parsed bool) {
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return false, false
	}
	gotMajor, _ := strconv.Atoi(m[1])
	gotMinor, _ := strconv.Atoi(m[2])
	if gotMajor != major {
		return gotMajor > major, true
	}
	return gotMinor >= minor, true
}

// minimumVersion enforces the app's minimum version of system (req, OpenCTI's when the
// input predates requirements): below it the probe fails permanently (the app refuses or
// misbehaves, and waiting will not upgrade it), unless the spec allows old dependencies,
// when it returns a warning instead. A system the app sets no minimum for passes.
func minimumVersion(system, version string, req spec.Requirement, allow bool) (warning string, err error) {
	if req.IsZero() {
		req = opencti.Requirement
	}
	major, minor, ok := req.Minimum(system)
	if !ok {
		return "", nil
	}
	atLeast, parsed := versionAtLeast(version, major, minor)
	switch {
	case !parsed:
		return fmt.Sprintf("cannot parse %s version %q; the minimum %d.%d was not checked", system, version, major, minor), nil
	case atLeast:
		return "", nil
	case allow:
		return fmt.Sprintf("%s %s is below %s's documented minimum %d.%d (accepted because %s is set)",
			system, version, req.App, major, minor, req.AllowField), nil
	}
	return "", &errPermanent{ErrTypeVersionTooOld, fmt.Errorf(
		"cannot use %s %s: %s requires %s >= %d.%d (upgrade it, or set %s for a test stack)",
		system, version, req.App, system, major, minor, req.AllowField)}
}

// withWarning copies a warning into a ready result; a not-ready or failed probe
// reports its reason instead.
func withWarning(res ProbeResult, err error, warning string) (ProbeResult, error) {
	if err == nil && res.Ready {
		res.Warning = warning
	}
	return res, err
}
