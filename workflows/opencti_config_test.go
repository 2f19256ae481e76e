package workflows

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/socflow/socflow/internal/opencti"
)

func TestSetConfigRequestNamesTheFieldOfABadChange(t *testing.T) {
	applied := testInstance().WithDefaults()
	for _, tc := range []struct {
		json, want string
	}{
		{`{"workers": -1}`, "opencti.workers: must be at least 1 (got -1) (fix:"},
		{`{"workers": 33}`, "opencti.workers: must be at most 32 (got 33) (fix:"},
		{`{"logLevel": "verbose"}`, `opencti.logLevel: must be one of error, warn, info, debug (got "verbose") (fix:`},
		{`{"workers": "five"}`, "workers: must be a number such as 5 (got a JSON string) (fix:"},
		{`{"logLevel": 3}`, `logLevel: must be a string such as "debug" (got a JSON number) (fix:`},
		{`{"workerz": 5}`, "workerz: is not a field SetConfig can set (fix:"},
		{`{}`, "SetConfig: changes nothing (fix:"},
		{`[1]`, "SetConfig: is not a JSON object"},
		{``, "SetConfig: is not a JSON object"},
	} {
		r, err := parseSetConfig(json.RawMessage(tc.json))
		if err == nil {
			err = r.validate(applied)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.json, err, tc.want)
		}
	}
	r, err := parseSetConfig(json.RawMessage(`{"requestId": "r9", "workers": "five"}`))
	if err == nil || r.RequestID != "r9" {
		t.Errorf("a bad change lost its request ID: %+v %v", r, err)
	}
}

func TestSetConfigRequestAppliesToACopy(t *testing.T) {
	applied := testInstance().WithDefaults()
	five := 5
	r := SetConfigRequest{Workers: &five, LogLevel: opencti.LogDebug}
	if err := r.validate(applied); err != nil {
		t.Fatal(err)
	}
	next := r.applyTo(applied)
	if *next.OpenCTI.Workers != 5 || next.OpenCTI.LogLevel != opencti.LogDebug || *applied.OpenCTI.Workers != 2 || applied.OpenCTI.LogLevel != opencti.LogInfo {
		t.Errorf("applied %+v next %+v", applied.OpenCTI, next.OpenCTI)
	}
	if got := r.summary(applied); got != "workers 2 -> 5, logLevel info -> debug" {
		t.Errorf("summary %q", got)
	}
	five = 7 // the request's pointer is not shared with the new spec
	if *next.OpenCTI.Workers != 5 {
		t.Errorf("new spec shares the request's workers pointer")
	}
}
