package opencti

import "testing"

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"6.9.28", "6.9.28", 0},
		{"7.260318.0", "6.9.28", 1},
		{"6.9.28", "7.260318.0", -1},
		{"6.10.0", "6.9.28", 1},
		{"6.9.3", "6.9.28", -1},
		{"7.260318.0", "7.260224.0", 1},
		{"7.260318.1", "7.260318.0", 1},
	} {
		got, err := CompareVersions(tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("CompareVersions(%s, %s) = %d, %v; want %d", tc.a, tc.b, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "7", "6.9", "6.9.x", "6.9.28.1", "v6.9.28", "-1.0.0"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
	if v, _ := ParseVersion("7.260318.0"); v.Major() != 7 || v.String() != "7.260318.0" {
		t.Errorf("7.260318.0 parsed as %v", v)
	}
}
