package activities

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/opencti"
)

// TestSearchModulesTableMatchesSpec keeps the probe's table and the names the spec
// accepts in allowMissingModules the same list: a name only one side knows is either
// unaccepted or never checked.
func TestSearchModulesTableMatchesSpec(t *testing.T) {
	var names []string
	for _, m := range searchModules {
		names = append(names, m.name)
		if !m.openSearch && !m.elasticsearch {
			t.Errorf("%s is needed on no engine", m.name)
		}
		if m.without == "" {
			t.Errorf("%s does not say what fails without it", m.name)
		}
	}
	if !slices.Equal(names, opencti.SearchModules) {
		t.Errorf("probe table %v, opencti.SearchModules %v", names, opencti.SearchModules)
	}
}

func missingNames(missing []missingModule) []string {
	var names []string
	for _, m := range missing {
		names = append(names, m.module.name)
	}
	return names
}

func TestMissingSearchModules(t *testing.T) {
	four := []string{"transport-netty4", "analysis-common", "lang-painless", "mapper-extras", "reindex"}
	for _, tc := range []struct {
		name    string
		flavour string
		loaded  map[string][]string
		want    []string
		partial map[string][]string // module -> nodes, when only some lack it
	}{
		{"bare opensearch", "opensearch", map[string][]string{"n1": {"transport-netty4"}},
			[]string{"analysis-common", "lang-painless", "mapper-extras", "reindex", "index-management"}, nil},
		{"opensearch without ISM", "opensearch", map[string][]string{"n1": four},
			[]string{"index-management"}, nil},
		{"complete opensearch (ISM is a plugin)", "opensearch",
			map[string][]string{"n1": append(slices.Clone(four), "opensearch-index-management", "index-management")}, nil, nil},
		{"opensearch does not need ILM", "opensearch", map[string][]string{"n1": append(slices.Clone(four), "index-management")}, nil, nil},
		{"elasticsearch without ILM", "elasticsearch", map[string][]string{"n1": four}, []string{"x-pack-ilm"}, nil},
		{"complete elasticsearch", "elasticsearch", map[string][]string{"n1": append(slices.Clone(four), "x-pack-ilm")}, nil, nil},
		{"one node of three lacks reindex", "opensearch", map[string][]string{
			"a": append(slices.Clone(four), "index-management"),
			"c": {"analysis-common", "lang-painless", "mapper-extras", "index-management"},
			"b": {"analysis-common", "lang-painless", "mapper-extras", "index-management"},
		}, []string{"reindex"}, map[string][]string{"reindex": {"b", "c"}}},
		{"a node with nothing", "opensearch", map[string][]string{
			"a": append(slices.Clone(four), "index-management"), "b": {},
		}, []string{"analysis-common", "lang-painless", "mapper-extras", "reindex", "index-management"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := missingSearchModules(tc.flavour, tc.loaded)
			if !slices.Equal(missingNames(got), tc.want) {
				t.Fatalf("missing %v, want %v", missingNames(got), tc.want)
			}
			for _, m := range got {
				if want := tc.partial[m.module.name]; !slices.Equal(m.nodes, want) && len(tc.loaded) > 1 && want != nil {
					t.Errorf("%s missing on %v, want %v", m.module.name, m.nodes, want)
				}
			}
		})
	}
}

func TestSearchModulesVerdict(t *testing.T) {
	bare := missingSearchModules("opensearch", map[string][]string{"n1": {"transport-netty4"}})
	const url = "http://127.0.0.1:9207"

	_, err := searchModulesVerdict("opensearch", url, "demo", bare, nil)
	var perm *errPermanent
	if !errors.As(err, &perm) || perm.errType != ErrTypeMissingSearchModules {
		t.Fatalf("got %v, want a permanent %s", err, ErrTypeMissingSearchModules)
	}
	t.Log(err)
	for _, want := range []string{
		"cannot use opensearch at " + url, "lacks 5 modules",
		`analysis-common: OpenCTI's first boot fails with DATABASE_ERROR "Creating component template fail"`, "asciifolding",
		"lang-painless: ", "mapper-extras: ", "reindex: ", "index-management: creating the lifecycle policy demo-ism-policy fails",
		"integrations.opensearch.allowMissingModules",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q", want)
		}
	}

	// Accepting some: only the others fail, and the message names only those.
	_, err = searchModulesVerdict("opensearch", url, "", bare, []string{"index-management", "reindex"})
	if err == nil || strings.Contains(err.Error(), "index-management") || strings.Contains(err.Error(), "reindex:") ||
		!strings.Contains(err.Error(), "lacks 3 modules") {
		t.Errorf("partly accepted: got %v, want the 3 others only", err)
	}

	// Accepting all: a warning naming each, and no error.
	noISM := missingSearchModules("opensearch", map[string][]string{"n1": {"analysis-common", "lang-painless", "mapper-extras", "reindex"}})
	warning, err := searchModulesVerdict("opensearch", url, "", noISM, []string{"index-management"})
	if err != nil || !strings.Contains(warning, "index-management: creating the lifecycle policy <prefix>-ism-policy fails") ||
		!strings.Contains(warning, "accepted because integrations.opensearch.allowMissingModules lists it") {
		t.Errorf("accepted: got warning %q, error %v", warning, err)
	}

	// Nothing missing: nothing to say.
	if warning, err := searchModulesVerdict("opensearch", url, "", nil, nil); warning != "" || err != nil {
		t.Errorf("complete cluster: got %q, %v", warning, err)
	}

	// Only some nodes lacking a module are named.
	partial := missingSearchModules("opensearch", map[string][]string{
		"os-1": {"analysis-common", "lang-painless", "mapper-extras", "reindex", "index-management"},
		"os-2": {"analysis-common", "lang-painless", "mapper-extras", "index-management"},
	})
	_, err = searchModulesVerdict("opensearch", url, "", partial, nil)
	if err == nil || !strings.Contains(err.Error(), "reindex (missing on node os-2): ") || !strings.Contains(err.Error(), "lacks a module") {
		t.Errorf("partial: got %v", err)
	}
}

func TestJoinWarnings(t *testing.T) {
	if got := joinWarnings("", "b", "", "c"); got != "b; c" {
		t.Errorf("got %q", got)
	}
	if got := joinWarnings("", ""); got != "" {
		t.Errorf("got %q", got)
	}
}
