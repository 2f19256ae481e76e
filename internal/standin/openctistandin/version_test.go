package openctistandin

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"6.9.3", "6.9.3", 0},
		{"6.9.3", "6.10.0", -1}, // numeric, not lexical: 10 > 9
		{"6.10.0", "6.9.3", 1},
		{"6.10.0", "7.260224.0", -1},
		{"7.260224.0", "6.9.3", 1},
		{"7.260224.0", "7.260817.0", -1},
		{"6.9", "6.9.0", 0},
		{"3.10.8", "3.11", -1},
		{"7.0.15", "7.1", -1},
		{"2.19.3", "2.9", 1},
		{"6.9.3-rc1", "6.9.3", 0},
	} {
		got, err := compareVersions(tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, %v; want %d", tc.a, tc.b, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "six", "6.x.1", "v6.9.3"} {
		if _, err := compareVersions(bad, "6.9.3"); err == nil {
			t.Errorf("compareVersions(%q) accepted", bad)
		}
	}
}

func TestAtLeast(t *testing.T) {
	if !atLeast("opensearch 2.19.3", "2.9") || atLeast("opensearch 2.8.0", "2.9") || atLeast("garbage", "1.0") {
		t.Error("atLeast misjudged a version")
	}
}

func TestValidateForVersion(t *testing.T) {
	key32 := base64.StdEncoding.EncodeToString(make([]byte, 32))
	key16 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct {
		version, key string
		wantErr      string
	}{
		{"6.9.3", "", ""},
		{"7.260224.0", key32, ""},
		{"7.260224.0", "", "APP__ENCRYPTION_KEY"},
		{"7.260224.0", key16, "APP__ENCRYPTION_KEY"},
		{"7.260224.0", "not base64!", "APP__ENCRYPTION_KEY"},
		{"latest", "", "-version"},
	} {
		err := Config{Version: tc.version, EncryptionKey: tc.key}.validateForVersion()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s with key %q: got %v, want error naming %q", tc.version, tc.key, err, tc.wantErr)
		}
	}
}
