//go:build linux

package reaper

import (
	"bytes"
	"testing"
	"time"
)

func TestLogLineShape(t *testing.T) {
	var buf bytes.Buffer
	lg := &logger{w: &buf, instance: "demo", plan: "sha256:abc",
		now: func() time.Time { return time.Date(2026, 5, 1, 12, 0, 0, 123e6, time.FixedZone("x", 3600)) }}
	code, runtime := 1, 12.5
	lg.log(Entry{Level: "info", Message: MsgStarting, PID: 123})
	lg.log(Entry{Level: "error", Message: MsgExited, PID: 124, ExitCode: &code, RuntimeSeconds: &runtime})
	lg.log(Entry{Level: "warn", Message: MsgKilledPrefix + " 125 (node a&b)", PID: 125, Cmdline: "node a&b"})
	want := `{"category":"SOCFLOW","level":"info","message":"[SOCFLOW] socflow-reap starting the service","instance":"demo","plan":"sha256:abc","pid":123,"timestamp":"2026-05-01T11:00:00.123Z"}
{"category":"SOCFLOW","level":"error","message":"[SOCFLOW] service exited","instance":"demo","plan":"sha256:abc","pid":124,"exit_code":1,"runtime_seconds":12.5,"timestamp":"2026-05-01T11:00:00.123Z"}
{"category":"SOCFLOW","level":"warn","message":"[SOCFLOW] killed leftover process 125 (node a&b)","instance":"demo","plan":"sha256:abc","pid":125,"cmdline":"node a&b","timestamp":"2026-05-01T11:00:00.123Z"}
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
