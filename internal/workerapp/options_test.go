package workerapp

import (
	"strings"
	"testing"

	"go.temporal.io/sdk/workflow"
)

func TestWorkerOptionsVersioning(t *testing.T) {
	for _, tc := range []struct {
		name, deployment, build string
		versioned               bool
		err                     string
	}{
		{name: "unversioned", versioned: false},
		{name: "versioned", deployment: "socflow", build: "v1.2.3", versioned: true},
		{name: "build id alone", build: "v1.2.3", err: "SOCFLOW_DEPLOYMENT_NAME is not"},
		{name: "deployment alone", deployment: "socflow", err: "SOCFLOW_BUILD_ID is not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := workerOptions(Config{DeploymentName: tc.deployment, BuildID: tc.build})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "or neither") {
					t.Fatalf("err %v, want one naming %q and the fix", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := opts.DeploymentOptions
			if d.UseVersioning != tc.versioned {
				t.Errorf("UseVersioning %v, want %v", d.UseVersioning, tc.versioned)
			}
			if tc.versioned && (d.Version.DeploymentName != tc.deployment || d.Version.BuildID != tc.build ||
				d.DefaultVersioningBehavior != workflow.VersioningBehaviorAutoUpgrade) {
				t.Errorf("deployment options %+v, want %s:%s auto-upgrade", d, tc.deployment, tc.build)
			}
			if opts.WorkerStopTimeout != StopTimeout {
				t.Errorf("stop timeout %s, want %s", opts.WorkerStopTimeout, StopTimeout)
			}
		})
	}
}
