package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseChangeArgs(t *testing.T) {
	ca, err := parseChangeArgs([]string{"demo", "workers=5", "logLevel=debug", "--signal", "--request-id", "r1"}, 1, configUse)
	if err != nil {
		t.Fatal(err)
	}
	if ca.args[0] != "demo" || !ca.signal || ca.requestID != "r1" || ca.values["workers"] != 5 || ca.values["logLevel"] != "debug" {
		t.Errorf("parsed %+v", ca)
	}
	// Values the workflow will reject are sent as given: its validator names the field.
	ca, err = parseChangeArgs([]string{"demo", "workers=five"}, 1, configUse)
	if err != nil || ca.values["workers"] != "five" || ca.requestID == "" || ca.signal {
		t.Errorf("parsed %+v %v", ca, err)
	}
	ca, err = parseChangeArgs([]string{"demo", "opensearch", "urls=http://a:9200,http://b:9200", "useSSL=true", "-request-id=r2"}, -1, relateUse)
	if err != nil || !slices.Equal(ca.values["urls"].([]string), []string{"http://a:9200", "http://b:9200"}) || ca.values["useSSL"] != true ||
		ca.requestID != "r2" || len(ca.args) != 2 {
		t.Errorf("parsed %+v %v", ca, err)
	}
	ca, err = parseChangeArgs([]string{"demo", "-f", "x.yaml"}, -1, relateUse)
	if err != nil || ca.file != "x.yaml" {
		t.Errorf("parsed %+v %v", ca, err)
	}
	for _, bad := range [][]string{nil, {}, {"demo", "s3", "extra"}, {"demo", "--nope", "workers=1"}, {"demo", "=1"}, {"demo", "--request-id"}} {
		if _, err := parseChangeArgs(bad, 2, unrelateUse); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("%q: error %v, want the usage", bad, err)
		}
	}
}

func TestDescribeChangeHidesLiteralSecrets(t *testing.T) {
	got := describeChange(map[string]any{"requestId": "r", "redis": map[string]any{"host": "h", "password": "hunter2"},
		"s3": map[string]any{"accessKey": "env:S3_KEY"}})
	if strings.Contains(got, "hunter2") || !strings.Contains(got, `"password":"<literal>"`) || !strings.Contains(got, "env:S3_KEY") || strings.Contains(got, "requestId") {
		t.Errorf("describeChange: %s", got)
	}
}
