package opencti

import (
	"bytes"
	"testing"
)

func TestYAMLIsByteStable(t *testing.T) {
	in := input(t, func(i *Instance) { i.OpenCTI.Workers = ptr(12) }, nil)
	var first []byte
	for range 50 {
		// Recompute the plan too: map construction order must not matter.
		p, err := NewPlan(in)
		if err != nil {
			t.Fatal(err)
		}
		y, err := p.Layer.YAML()
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = y
		} else if !bytes.Equal(first, y) {
			t.Fatalf("YAML() changed between calls:\n%s\n---\n%s", first, y)
		}
	}
}
