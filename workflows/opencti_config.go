package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/socflow/socflow/internal/opencti"
	"github.com/socflow/socflow/internal/spec"
)

// UnmarshalJSON decodes a SetConfigRequest strictly: an unknown field or a value of the
// wrong JSON type is an error that names the field and the fix, so a bad Update is
// rejected (and a bad Signal reported) with the same words as a bad spec.
func (r *SetConfigRequest) UnmarshalJSON(data []byte) error {
	type plain SetConfigRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return setConfigDecodeError(err)
	}
	*r = SetConfigRequest(p)
	return nil
}

// setConfigFields are the fields a SetConfig change may set, with an example.
const setConfigFields = `requestId (string), workers (number, 1..32), logLevel (error|warn|info|debug)`

// setConfigDecodeError turns a JSON decoding error into a field-named problem.
func setConfigDecodeError(err error) error {
	var c spec.Checker
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ) && typ.Field != "":
		want := map[string]string{"workers": "a number such as 5", "logLevel": `a string such as "debug"`, "requestId": "a string"}[typ.Field]
		c.Add(typ.Field, fmt.Sprintf("must be %s (got a JSON %s)", want, typ.Value), "send "+setConfigFields)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		c.Add(field, "is not a field SetConfig can set", "send only "+setConfigFields)
	default:
		c.Add("SetConfig", "is not a JSON object: "+err.Error(), `send a JSON object such as {"workers": 5}`)
	}
	return c.Err()
}

// parseSetConfig decodes a Signal's raw JSON input into a request.
func parseSetConfig(raw json.RawMessage) (SetConfigRequest, error) {
	var r SetConfigRequest
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return r, setConfigDecodeError(errors.New("no input"))
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		// Keep the request ID of a bad change, so its sender finds the rejection.
		var id struct {
			RequestID string `json:"requestId"`
		}
		_ = json.Unmarshal(raw, &id)
		return SetConfigRequest{RequestID: id.RequestID}, err
	}
	return r, nil
}

// applyTo returns a copy of inst with the change applied; inst is not modified.
func (r SetConfigRequest) applyTo(inst opencti.Instance) opencti.Instance {
	out := inst.WithDefaults()
	if r.Workers != nil {
		w := *r.Workers
		out.OpenCTI.Workers = &w
	}
	if r.LogLevel != "" {
		out.OpenCTI.LogLevel = r.LogLevel
	}
	return out
}

// validate checks the change against the applied spec: it must set something, and
// the spec with the change applied must pass the spec's own validation, whose
// problems name the field and the fix.
func (r SetConfigRequest) validate(applied opencti.Instance) error {
	if r.Workers == nil && r.LogLevel == "" {
		var c spec.Checker
		c.Add("SetConfig", "changes nothing", "set workers or logLevel, e.g. {\"workers\": 5}")
		return c.Err()
	}
	if err := r.applyTo(applied).Validate(); err != nil {
		return fmt.Errorf("cannot set config: %w", err)
	}
	return nil
}

// summary says what the change does to the applied spec, e.g. "workers 3 -> 5".
func (r SetConfigRequest) summary(applied opencti.Instance) string {
	var parts []string
	if r.Workers != nil {
		old := 0
		if applied.OpenCTI.Workers != nil {
			old = *applied.OpenCTI.Workers
		}
		parts = append(parts, fmt.Sprintf("workers %d -> %d", old, *r.Workers))
	}
	if r.LogLevel != "" {
		parts = append(parts, fmt.Sprintf("logLevel %s -> %s", applied.OpenCTI.LogLevel, r.LogLevel))
	}
	return strings.Join(parts, ", ")
}
