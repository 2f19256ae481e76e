package activities

import (
	"strings"
	"testing"
)

func TestOpenCTIPrefix(t *testing.T) {
	for name, want := range map[string]string{
		"demo2_internal_objects-000001":                   "demo2",
		"demo2_internal_objects":                          "demo2",
		"demo_stix_cyber_observable_relationships-00001":  "", // not a rollover counter OpenCTI writes
		"demo_stix_cyber_observable_relationships-000002": "demo",
		"demo_stix_core_relationships":                    "demo",
		"demo_history":                                    "demo",
		"my-app_inferred_entities-000001":                 "my-app",
		"a_history_history":                               "a_history",
		"files_files-000001":                              "files",
		"demo-core-settings":                              "demo",
		"demo-ism-policy":                                 "demo",
		"demo-ilm-policy":                                 "demo",
		".opendistro-ism-config":                          "",
		".kibana_history":                                 "",
		"logs-2024.01":                                    "",
		"_history":                                        "",
		"demo_unknown-000001":                             "",
		"-core-settings":                                  "",
	} {
		got, ok := openCTIPrefix(name)
		if got != want || ok != (want != "") {
			t.Errorf("openCTIPrefix(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

func TestPrefixClashes(t *testing.T) {
	objects := map[string][]string{
		"demo":  {"demo_internal_objects-000001", "demo_internal_objects", "demo-core-settings"},
		"demo2": {"demo2_internal_objects-000001", "demo2_history-000001", "demo2_files-000001", "demo2-ism-policy"},
		"prod":  {"prod_history"},
	}
	for _, tc := range []struct {
		own  string
		want []string
	}{
		{"demo", []string{"it would match instance demo2's indices (demo2-ism-policy, demo2_files-000001, demo2_history-000001…): OpenCTI matches demo* for templates"}},
		{"demo2", []string{"instance demo's prefix would match its indices, as OpenCTI matches demo* for templates (demo's objects: demo-core-settings, demo_internal_objects, demo_internal_objects-000001)"}},
		{"dem", []string{"instance demo's indices", "instance demo2's indices"}},
		{"prod", nil},
		{"staging", nil},
		{"demo22", []string{"instance demo's prefix", "instance demo2's prefix"}},
	} {
		got := prefixClashes(tc.own, objects)
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %q, want %d clashes", tc.own, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: clash %q does not contain %q", tc.own, got[i], w)
			}
		}
	}
}
