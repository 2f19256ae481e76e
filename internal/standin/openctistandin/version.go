package openctistandin

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// version is a parsed dotted version; OpenCTI 7.x uses date minors (7.260224.0),
// so components are compared as numbers, never as strings.
type version []int

// parseVersion reads "6.9.3", "7.260224.0", "3.10.8" or "2.19.3"; a suffix after
// '-' or '+' (release candidates, Debian revisions) is ignored.
func parseVersion(s string) (version, error) {
	core := strings.TrimSpace(s)
	if i := strings.IndexAny(core, "-+ "); i >= 0 {
		core = core[:i]
	}
	if core == "" {
		return nil, fmt.Errorf("cannot parse version %q: empty", s)
	}
	parts := strings.Split(core, ".")
	v := make(version, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("cannot parse version %q: component %q is not a number", s, p)
		}
		v[i] = n
	}
	return v, nil
}

// compare returns -1, 0 or 1; missing trailing components count as 0.
func (v version) compare(o version) int {
	for i := 0; i < max(len(v), len(o)); i++ {
		a, b := 0, 0
		if i < len(v) {
			a = v[i]
		}
		if i < len(o) {
			b = o[i]
		}
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
	}
	return 0
}

// compareVersions parses and compares two version strings.
func compareVersions(a, b string) (int, error) {
	va, err := parseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := parseVersion(b)
	if err != nil {
		return 0, err
	}
	return va.compare(vb), nil
}

// atLeast reports whether have >= min, ignoring a leading product word
// ("opensearch 2.19.3"); an unparsable version counts as not meeting the minimum
// so the warning errs on the side of being printed.
func atLeast(have, min string) bool {
	if f := strings.Fields(have); len(f) > 0 {
		have = f[len(f)-1]
	}
	c, err := compareVersions(have, min)
	return err == nil && c >= 0
}

// minEncryptionKeyBytes is OpenCTI 7.x's minimum for APP__ENCRYPTION_KEY.
const minEncryptionKeyBytes = 32

// validateForVersion holds the checks that depend on which version the binary
// is, since the same env can be valid for 6.x and refused by 7.x.
func (c Config) validateForVersion() error {
	v, err := parseVersion(c.Version)
	if err != nil {
		return fmt.Errorf("cannot use -version: %w", err)
	}
	if v[0] < 7 {
		return nil
	}
	if c.EncryptionKey == "" {
		return fmt.Errorf("cannot start version %s without APP__ENCRYPTION_KEY", c.Version)
	}
	key, err := base64.StdEncoding.DecodeString(c.EncryptionKey)
	if err != nil || len(key) < minEncryptionKeyBytes {
		return fmt.Errorf("cannot use APP__ENCRYPTION_KEY: want base64 of at least %d bytes", minEncryptionKeyBytes)
	}
	return nil
}
