package main

import (
	"strings"
	"testing"
)

func TestParseConfigArgs(t *testing.T) {
	ca, err := parseConfigArgs([]string{"set", "demo", "workers=5", "logLevel=debug", "--signal", "--request-id", "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if ca.name != "demo" || !ca.signal || ca.requestID != "r1" || ca.change["workers"] != 5 || ca.change["logLevel"] != "debug" || ca.change["requestId"] != "r1" {
		t.Errorf("parsed %+v", ca)
	}
	// Values the workflow will reject are sent as given: its validator names the field.
	ca, err = parseConfigArgs([]string{"set", "demo", "workers=five"})
	if err != nil || ca.change["workers"] != "five" || ca.requestID == "" || ca.signal {
		t.Errorf("parsed %+v %v", ca, err)
	}
	for _, bad := range [][]string{nil, {"get", "demo"}, {"set"}, {"set", "demo"}, {"set", "demo", "workers"}, {"set", "demo", "--nope", "workers=1"}} {
		if _, err := parseConfigArgs(bad); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("%q: error %v, want the usage", bad, err)
		}
	}
}
