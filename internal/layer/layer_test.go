package layer

import (
	"testing"
	"time"
)

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
