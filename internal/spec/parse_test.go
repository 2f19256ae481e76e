package spec

import (
	"reflect"
	"testing"
)

// appSpec stands for a second app's spec: Parse must serve any of them.
type appSpec struct {
	Name         string `json:"name,omitempty"`
	Pebble       Pebble `json:"pebble"`
	Integrations struct {
		OpenSearch *OpenSearch `json:"opensearch,omitempty"`
	} `json:"integrations"`
}

func TestParseAnyApp(t *testing.T) {
	got, err := Parse[appSpec]([]byte("name: w\npebble: {socket: /p}\nintegrations: {opensearch: {urls: [https://n1:9200], ca: file:/ca.pem}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := appSpec{Name: "w", Pebble: Pebble{Socket: "/p"}}
	want.Integrations.OpenSearch = &OpenSearch{URLs: []string{"https://n1:9200"}, CA: "file:/ca.pem"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse() = %+v, want %+v", got, want)
	}
	for doc, wantErr := range map[string]string{
		"name: w\nopencti: {}\n":                     `cannot parse instance spec: unknown field "opencti"`,
		"integrations: {openSearch: {}}\n":           `cannot parse instance spec: unknown field "integrations.openSearch" (did you mean "opensearch"?)`,
		"pebble: {socket: /a}\npebble: {socket: /b}": "cannot parse instance spec:",
	} {
		_, err := Parse[appSpec]([]byte(doc))
		if err == nil || len(err.Error()) < len(wantErr) || err.Error()[:len(wantErr)] != wantErr {
			t.Errorf("Parse(%q) error = %v, want it to start with %q", doc, err, wantErr)
		}
	}
}

func TestSectionDefaultsDoNotMutate(t *testing.T) {
	var nilOS *OpenSearch
	if nilOS.WithDefaults() != nil {
		t.Error("a missing section must stay missing")
	}
	r := &Redis{Host: "h"}
	d := r.WithDefaults("ns")
	if r.Port != 0 || r.Trimming != nil || r.Namespace != "" {
		t.Errorf("WithDefaults changed its receiver: %+v", r)
	}
	if d.Port != DefaultRedisPort || *d.Trimming != DefaultTrimming || d.Namespace != "ns" || d.Mode != RedisSingle {
		t.Errorf("WithDefaults() = %+v", d)
	}
	*d.Trimming = 1
	if d2 := d.Clone(); d2.Trimming == d.Trimming {
		t.Error("Clone shares Trimming")
	}
}
