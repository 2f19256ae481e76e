package workflows

import (
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/sdk/temporal"
)

func TestErrorReason(t *testing.T) {
	app := temporal.NewNonRetryableApplicationError("cannot use opensearch at http://x: lacks reindex", "MissingSearchModules", nil)
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"application error":  {app, "cannot use opensearch at http://x: lacks reindex"},
		"wrapped":            {fmt.Errorf("cannot deploy: %w", app), "cannot use opensearch at http://x: lacks reindex"},
		"not an application": {errors.New("context canceled"), "context canceled"},
	} {
		if got := ErrorReason(tc.err); got != tc.want {
			t.Errorf("%s: ErrorReason() = %q, want %q", name, got, tc.want)
		}
	}
}
