package activities

import "testing"

func TestParseWatermark(t *testing.T) {
	for _, tc := range []struct {
		in   string
		pct  float64
		free int64
	}{
		{"95%", 95, 0}, {"97.5%", 97.5, 0}, {"0.95", 95, 0}, {"500mb", 0, 500 << 20}, {"1gb", 0, 1 << 30}, {"2TB", 0, 2 << 40},
	} {
		pct, free, err := parseWatermark(tc.in)
		if err != nil || pct != tc.pct || free != tc.free {
			t.Errorf("parseWatermark(%q) = %v, %d, %v", tc.in, pct, free, err)
		}
	}
	if _, _, err := parseWatermark("lots"); err == nil {
		t.Error("parseWatermark accepted lots")
	}
}
