package spec

import (
	"strings"
	"testing"
)

func TestLogsValidation(t *testing.T) {
	for loki, want := range map[string]string{
		"":                                      "",
		"https://loki:3100/loki/api/v1/push":    "",
		"http://10.0.0.7:3100/loki/api/v1/push": "",
		"https://loki:3100":                     "must be the URL of Loki's push API",
		"loki:3100/loki/api/v1/push":            "must be an absolute http(s) URL",
		"https://u:p@loki/loki/api/v1/push":     "must not carry credentials",
	} {
		var c Checker
		c.Logs(&Logs{Loki: loki})
		err := c.Err()
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", loki, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), "logs.loki") || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want logs.loki: %s", loki, err, want)
		}
	}
	var c Checker
	c.Logs(nil)
	if c.Err() != nil || (*Logs)(nil).LokiURL() != "" {
		t.Error("no logs section is valid and has no URL")
	}
}
