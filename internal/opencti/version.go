package opencti

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is an OpenCTI release number: 6.x are semantic versions (6.9.28), 7.x
// carry the release date as their minor (7.260318.0). Components compare as
// numbers, so 7.260318.0 > 6.9.28 and 6.10.0 > 6.9.28.
type Version [3]int

// ParseVersion reads X.Y.Z as the spec's opencti.version and about.version give it.
func ParseVersion(s string) (Version, error) {
	var v Version
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("cannot parse OpenCTI version %q: want X.Y.Z, e.g. 6.9.28 or 7.260318.0", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || len(p) > 9 {
			return v, fmt.Errorf("cannot parse OpenCTI version %q: %q is not a number", s, p)
		}
		v[i] = n
	}
	return v, nil
}

// Compare returns -1, 0 or 1 as v is older than, the same as or newer than o.
func (v Version) Compare(o Version) int {
	for i := range v {
		switch {
		case v[i] < o[i]:
			return -1
		case v[i] > o[i]:
			return 1
		}
	}
	return 0
}

// Major is the major version: from 7 on, API tokens are hashed with the encryption
// key and the key is mandatory.
func (v Version) Major() int { return v[0] }

// String is X.Y.Z.
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// CompareVersions parses and compares two versions (-1, 0, 1).
func CompareVersions(a, b string) (int, error) {
	va, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}
