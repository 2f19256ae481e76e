package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// Requirement is what an app asks of the versions of its dependencies: the oldest
// major.minor of each system it accepts, who asks (for messages), and the spec field
// that lets an operator accept older ones on a test stack. Probes take it as input, so
// the shared probes serve OpenCTI and Wazuh alike.
type Requirement struct {
	// App names the app in messages ("OpenCTI").
	App string `json:"app,omitempty"`
	// Minimums maps a system (opensearch, elasticsearch, rabbitmq, redis) to its oldest
	// accepted version, "major.minor".
	Minimums map[string]string `json:"minimums,omitempty"`
	// AllowField is the spec field that turns a version below the minimum into a
	// warning ("opencti.allowOldDependencies").
	AllowField string `json:"allowField,omitempty"`
}

// IsZero reports an unset requirement (a probe input from before probes took one).
func (r Requirement) IsZero() bool { return r.App == "" && len(r.Minimums) == 0 && r.AllowField == "" }

// Minimum returns the oldest accepted major.minor of system; ok is false when the app
// sets none for it.
func (r Requirement) Minimum(system string) (major, minor int, ok bool) {
	v, found := r.Minimums[system]
	if !found {
		return 0, 0, false
	}
	maj, min, cut := strings.Cut(v, ".")
	a, errA := strconv.Atoi(maj)
	b, errB := strconv.Atoi(min)
	if !cut || errA != nil || errB != nil {
		panic(fmt.Sprintf("spec.Requirement: minimum %q of %s is not major.minor", v, system))
	}
	return a, b, true
}
