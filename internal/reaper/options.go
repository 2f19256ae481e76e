//go:build linux

package reaper

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// Options says which command to supervise and how the reaper labels its log lines.
// The zero value is not runnable: Instance, Plan and Command are required.
type Options struct {
	// Instance is the socflow instance name written into every log line, so that
	// socflow can tell from Pebble's log which instance the process belongs to.
	Instance string
	// Plan is the plan digest written into every log line, so that socflow can tell
	// which plan the running process was started from.
	Plan string
	// Grace is how long leftovers may keep running after the command exits before
	// they are sent SIGKILL. Default 0: the platform's only leftover is the init-lock
	// child, and every second it lives keeps the Redis lock from expiring.
	Grace time.Duration
	// Forward sends SIGTERM, SIGINT, SIGHUP and SIGQUIT received by the reaper on to
	// the command. Default false: under Pebble the signals reach the command through
	// the process group already, and forwarding would deliver them twice.
	Forward bool
	// Command is the argv of the supervised command; Command[0] is looked up in PATH.
	Command []string
}

// ErrHelp is returned by ParseArgs when -h or --help was asked for, so Main can
// print the usage and exit 0 rather than 2.
var ErrHelp = flag.ErrHelp

// UsageError is a command line that cannot be run; Main prints it with the usage
// and exits 2.
type UsageError struct {
	// Reason says what is wrong with the command line.
	Reason string
}

// Error returns the reason.
func (e *UsageError) Error() string { return e.Reason }

// Usage is the synopsis printed with every usage error.
const Usage = "usage: socflow-reap --instance NAME --plan DIGEST [--grace DURATION] [--forward] -- COMMAND [ARG...]"

// ParseArgs reads the reaper's command line (without the program name). The command
// must follow "--" so that its own flags can never be taken for the reaper's.
func ParseArgs(args []string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("socflow-reap", flag.ContinueOnError)
	// flag prints its own message on error; Main prints ours instead.
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.Instance, "instance", "", "socflow instance name, written into every log line (required)")
	fs.StringVar(&o.Plan, "plan", "", "plan digest, written into every log line (required)")
	fs.DurationVar(&o.Grace, "grace", 0, "how long leftovers may run after the command exits before SIGKILL")
	fs.BoolVar(&o.Forward, "forward", false, "forward SIGTERM, SIGINT, SIGHUP and SIGQUIT to the command (for use outside Pebble)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Options{}, ErrHelp
		}
		return Options{}, &UsageError{Reason: err.Error()}
	}
	rest := fs.Args()
	// flag stops at "--" (and drops it) or at the first non-flag argument; only
	// the first is accepted.
	if dash := len(args) - len(rest) - 1; dash < 0 || args[dash] != "--" {
		if len(rest) == 0 {
			return Options{}, &UsageError{Reason: "no command given after --"}
		}
		return Options{}, &UsageError{Reason: fmt.Sprintf("unexpected argument %q: the command must follow --", rest[0])}
	}
	switch {
	case len(rest) == 0 || rest[0] == "":
		return Options{}, &UsageError{Reason: "no command given after --"}
	case o.Instance == "":
		return Options{}, &UsageError{Reason: "--instance is required"}
	case o.Plan == "":
		return Options{}, &UsageError{Reason: "--plan is required"}
	case o.Grace < 0:
		return Options{}, &UsageError{Reason: fmt.Sprintf("--grace must not be negative, got %s", o.Grace)}
	}
	o.Command = rest
	return o, nil
}
