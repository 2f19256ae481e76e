package opencti

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParse checks that no input makes Parse or Load panic, and that what
// Load accepts survives the JSON round trip the workflow input takes.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"minimal.yaml", "minimal.json", "full.yaml"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte("name: demo\nopencti: {workers: 0}\n"))
	f.Add([]byte(`{"integrations": {"redis": {"trimming": null}}}`))
	f.Add([]byte("opencti:\n  Workers: 3\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Parse(data); err != nil {
			return
		}
		in, err := Load(data)
		if err != nil {
			return
		}
		j, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("cannot marshal a loaded spec: %v", err)
		}
		again, err := Load(j)
		if err != nil {
			t.Fatalf("Load rejects its own output %s: %v", j, err)
		}
		if !reflect.DeepEqual(in, again) {
			t.Fatalf("round trip changed the spec:\n%s\n%s", dump(in), dump(again))
		}
	})
}
