package plan

import (
	"bytes"
	"testing"
	"time"

	"github.com/socflow/socflow/internal/spec"
)

func TestYAMLIsByteStable(t *testing.T) {
	in := input(t, func(i *spec.Instance) { i.OpenCTI.Workers = ptr(12) }, nil)
	var first []byte
	for range 50 {
		// Recompute the plan too: map construction order must not matter.
		p, err := OpenCTI(in)
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

func TestDurationText(t *testing.T) {
	tests := map[time.Duration]string{
		time.Minute:                `"1m"`,
		5 * time.Second:            `"5s"`,
		time.Hour:                  `"1h"`,
		90 * time.Minute:           `"1h30m"`,
		1500 * time.Millisecond:    `"1.5s"`,
		time.Hour + 30*time.Second: `"1h0m30s"`,
		250 * time.Millisecond:     `"250ms"`,
	}
	for d, want := range tests {
		got, err := Duration(d).MarshalJSON()
		if err != nil || string(got) != want {
			t.Errorf("Duration(%v) = %s, %v; want %s", d, got, err, want)
		}
		var back Duration
		if err := back.UnmarshalJSON(got); err != nil || time.Duration(back) != d {
			t.Errorf("Duration(%s) reads back as %v, %v", got, time.Duration(back), err)
		}
	}
}
