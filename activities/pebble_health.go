package activities

import (
	"context"
	"time"

	"github.com/socflow/socflow/internal/spec"
)

// ReadPebbleServicesInput names the services of one container whose state a health
// check reads.
type ReadPebbleServicesInput struct {
	// Pebble is the container's Pebble endpoint.
	Pebble spec.Pebble `json:"pebble"`
	// Services are the services to read.
	Services []string `json:"services"`
	// LogLines is how many of its last log lines to return with each service that is
	// not active (0: none), for the operator who must decide what to do.
	LogLines int `json:"logLines,omitempty"`
}

// ServiceState is one service as Pebble reports it.
type ServiceState struct {
	// Current is Pebble's state: active, inactive, backoff or error ("missing" when
	// the plan has no such service).
	Current string `json:"current"`
	// Since is when it entered that state.
	Since time.Time `json:"since,omitzero"`
	// LastLines are its last log lines, for a service that is not active.
	LastLines string `json:"lastLines,omitempty"`
}

// ReadPebbleServicesResult is each named service's state.
type ReadPebbleServicesResult struct {
	// Services maps each name to its state.
	Services map[string]ServiceState `json:"services"`
}

// ReadPebbleServices reads the state of a container's services, and the last log lines
// of those that are not active: one read, no change, for health checks.
func (a *Activities) ReadPebbleServices(ctx context.Context, in ReadPebbleServicesInput) (ReadPebbleServicesResult, error) {
	ep, err := a.pebble(in.Pebble)
	if err != nil {
		return ReadPebbleServicesResult{}, classify(err)
	}
	infos, err := ep.services(ctx, in.Services)
	if err != nil {
		return ReadPebbleServicesResult{}, classify(err)
	}
	out := ReadPebbleServicesResult{Services: make(map[string]ServiceState, len(in.Services))}
	for _, name := range in.Services {
		info := infos[name]
		if info == nil {
			out.Services[name] = ServiceState{Current: "missing"}
			continue
		}
		s := ServiceState{Current: string(info.Current), Since: info.CurrentSince}
		if ok, _ := activeOrNot(info); !ok && in.LogLines > 0 {
			s.LastLines = ep.lastLogLines(ctx, []string{name}, in.LogLines)
		}
		out.Services[name] = s
	}
	return out, nil
}
