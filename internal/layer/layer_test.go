package layer

import (
	"strings"
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

func TestWithLokiForwardsEveryServiceAndChangesNoDigest(t *testing.T) {
	l := Layer{Services: map[string]Service{"worker-0": {Command: "w"}, "platform": {Command: "p"}}}
	if got := l.WithLoki("", map[string]string{"a": "b"}); got.LogTargets != nil {
		t.Fatalf("no Loki URL gave log targets: %+v", got.LogTargets)
	}
	withLoki := l.WithLoki("https://loki:3100/loki/api/v1/push", map[string]string{"socflow_instance": "demo"})
	b, err := withLoki.YAML()
	if err != nil {
		t.Fatal(err)
	}
	want := `log-targets:
  socflow-loki:
    labels:
      socflow_instance: demo
    location: https://loki:3100/loki/api/v1/push
    override: merge
    services:
    - platform
    - worker-0
    type: loki
`
	if !strings.HasPrefix(string(b), want) {
		t.Errorf("layer YAML\n%s\nwant it to start with\n%s", b, want)
	}
	for name, svc := range l.Services {
		if withLoki.Services[name].Digest() != svc.Digest() {
			t.Errorf("the log target changed %s's digest", name)
		}
	}
	if d := Diff(l, withLoki, nil); len(d) != 0 {
		t.Errorf("a log target alone is a change: %v", d)
	}
	if got := (Layer{}).WithLoki("https://loki/loki/api/v1/push", nil); got.LogTargets != nil {
		t.Errorf("a layer without services got a log target: %+v", got.LogTargets)
	}
}
