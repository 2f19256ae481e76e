package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socflow/socflow/workflows"
)

const socketErr = "cannot reach pebble at /tmp/p/.pebble.socket: dial unix /tmp/p/.pebble.socket: connect: no such file or directory"

func retrying(attempt int, next time.Time) workflows.DeployStatus {
	return workflows.DeployStatus{Instance: "demo", Phase: workflows.PhasePushingPlan, Status: workflows.Status{
		Kind: workflows.StatusWaiting, Step: "pushing-plan", Attempt: attempt, LastError: socketErr, NextAttemptAt: next,
		Message: fmt.Sprintf("retrying pushing-plan (attempt %d): %s", attempt, socketErr),
	}}
}

// `starter status` names the retried step, its attempt, the next attempt and the last error.
func TestPrintStatusShowsARetriedStep(t *testing.T) {
	now := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	printStatus(&out, retrying(3, now.Add(4*time.Second)), now)
	for _, want := range []string{
		"status: waiting: retrying pushing-plan (attempt 3): " + socketErr,
		"  retrying pushing-plan: attempt 3, next in 4s\n",
		"  last error: " + socketErr,
		"phase: pushing-plan",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("starter status does not print %q:\n%s", want, out.String())
		}
	}
}

// The live progress prints a retried step once per attempt, not once per poll.
func TestProgressPrintsEachAttemptOnce(t *testing.T) {
	var out bytes.Buffer
	p := &progress{out: &out, start: time.Now()}
	next := time.Now().Add(time.Minute)
	for _, st := range []workflows.DeployStatus{retrying(2, next), retrying(2, next), retrying(3, next), retrying(3, next)} {
		p.show(st)
	}
	if n := strings.Count(out.String(), "status: waiting: retrying pushing-plan"); n != 2 {
		t.Errorf("%d status lines for two attempts:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "(attempt 3): "+socketErr) {
		t.Errorf("progress does not name attempt 3 and its error:\n%s", out.String())
	}
}
