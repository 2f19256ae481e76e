package activities_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/stacktest"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// Pebble's server keeps an idle connection open for ever (no idle timeout), and every
// call has a client of its own: a call that left its connection to the pool would
// leak a connection a call on both sides — thousands an hour on a worker that checks a
// fleet's health every minute.
func TestPebbleCallsLeaveNoConnectionOpen(t *testing.T) {
	p := spec.Pebble{Socket: stacktest.Pebble(t)}
	a := &activities.Activities{}
	read := func() {
		if _, err := a.ReadPebbleServices(context.Background(), activities.ReadPebbleServicesInput{Pebble: p, Services: []string{"none"}}); err != nil {
			t.Fatal(err)
		}
	}
	read()
	before := openFDs(t)
	for range 50 {
		read()
	}
	time.Sleep(100 * time.Millisecond) // a closed connection's descriptor is released by its read loop
	if after := openFDs(t); after > before+5 {
		t.Fatalf("50 Pebble calls left %d more descriptors open (%d -> %d), want none", after-before, before, after)
	}
}
