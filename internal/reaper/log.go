//go:build linux

package reaper

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Message texts of the reaper's log lines. socflow matches on them through Pebble's
// log API, so they are part of the contract and must not change casually.
const (
	// MsgStarting is logged once, before the command starts.
	MsgStarting = "[SOCFLOW] socflow-reap starting the service"
	// MsgExited is logged once, when the command has exited.
	MsgExited = "[SOCFLOW] service exited"
	// MsgCannotStart is logged when the command cannot be started (exit 127 or 126).
	MsgCannotStart = "[SOCFLOW] socflow-reap cannot start the service"
	// MsgKilledPrefix starts the line logged for each leftover process killed after
	// the command exited; the pid and command line follow.
	MsgKilledPrefix = "[SOCFLOW] killed leftover process"
	// MsgNoSubreaper is logged when the kernel refuses PR_SET_CHILD_SUBREAPER: the
	// reaper still runs, but double-forked daemons escape it.
	MsgNoSubreaper = "[SOCFLOW] socflow-reap cannot become a child subreaper"
	// MsgLeftoversRemain is logged when leftovers outlive the kill phase (for
	// example a process stuck in uninterruptible sleep).
	MsgLeftoversRemain = "[SOCFLOW] socflow-reap cannot reap every leftover process"
)

// category is OpenCTI's log category field; socflow's own lines use their own value
// so they are never mistaken for the platform's.
const category = "SOCFLOW"

// timestampLayout matches the ISO-8601 UTC timestamps of OpenCTI's winston logger.
const timestampLayout = "2006-01-02T15:04:05.000Z"

// Entry is one JSON log line in the shape of OpenCTI's logs. Field order is fixed
// (struct order) so lines are stable for humans and for golden tests; optional
// fields are omitted when they do not apply to the message.
type Entry struct {
	// Category is always "SOCFLOW".
	Category string `json:"category"`
	// Level is "info", "warn" or "error", spelled as winston does.
	Level string `json:"level"`
	// Message is one of the Msg* texts (killed lines append pid and command line).
	Message string `json:"message"`
	// Instance is Options.Instance.
	Instance string `json:"instance"`
	// Plan is Options.Plan.
	Plan string `json:"plan"`
	// PID is the process the line is about: the reaper on the starting line (the
	// process Pebble started), the command on the exited line, the victim on a
	// killed line.
	PID int `json:"pid,omitempty"`
	// ExitCode is the command's exit status, set only when it exited normally.
	ExitCode *int `json:"exit_code,omitempty"`
	// Signal is the name of the signal that killed the command ("SIGKILL"), set only
	// when it was killed by one; the reaper then exits 128+n.
	Signal string `json:"signal,omitempty"`
	// RuntimeSeconds is how long the command ran, on the exited line.
	RuntimeSeconds *float64 `json:"runtime_seconds,omitempty"`
	// Cmdline is the victim's /proc/<pid>/cmdline (NULs as spaces) on a killed line.
	Cmdline string `json:"cmdline,omitempty"`
	// Error says what went wrong, on error and warn lines.
	Error string `json:"error,omitempty"`
	// Timestamp is the UTC time the line was written, with milliseconds.
	Timestamp string `json:"timestamp"`
}

// logger writes Entries as single lines, each in one write so that they do not
// interleave with the command's own output on the shared stdout.
type logger struct {
	mu       sync.Mutex
	w        io.Writer
	instance string
	plan     string
	now      func() time.Time
}

// log fills the common fields of e and writes it; a failed write is dropped because
// the reaper must keep supervising even when nobody reads its output.
func (l *logger) log(e Entry) {
	e.Category, e.Instance, e.Plan = category, l.instance, l.plan
	e.Timestamp = l.now().UTC().Format(timestampLayout)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// Command lines hold "&&" and "<"; escaping them as \u0026 only hurts readers.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b.Bytes())
}
