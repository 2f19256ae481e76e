package opencti

import (
	"maps"
	"slices"
	"testing"

	"github.com/socflow/socflow/internal/spec"
)

func TestValidateNodes(t *testing.T) {
	node := func(name, socket string) Node { return Node{Name: name, Pebble: spec.Pebble{Socket: socket}} }
	for _, tc := range []struct {
		name  string
		nodes []Node
		want  []want
	}{
		{"none", nil, nil},
		{"one", []Node{node("node-2", "/n2")}, nil},
		{"two", []Node{node("node-2", "/n2"), node("node-3", "/n3")}, nil},
		{"unnamed", []Node{node("", "/n2")}, []want{{"opencti.nodes[0].name", "is required"}}},
		{"bad name", []Node{node("Node2", "/n2")},
			[]want{{"opencti.nodes[0].name", `must be 2-40 lowercase letters, digits or dashes, start with a letter and not end with a dash (got "Node2")`}}},
		{"duplicate name", []Node{node("node-2", "/n2"), node("node-2", "/n3")},
			[]want{{"opencti.nodes[1].name", `"node-2" is already the name of opencti.nodes[0]`}}},
		{"the first node's container", []Node{node("node-2", "/var/lib/pebble/default/.pebble.socket")},
			[]want{{"opencti.nodes[0].pebble", "is the container of pebble (the first node)"}}},
		{"two nodes in one container", []Node{node("node-2", "/n2"), node("node-3", "/n2")},
			[]want{{"opencti.nodes[1].pebble", "is the container of opencti.nodes[0]"}}},
		{"no pebble", []Node{node("node-2", "")},
			[]want{{"opencti.nodes[0].pebble", "must set exactly one of socket or url (neither is set)"}}},
		{"ports clash", []Node{{Name: "node-2", Pebble: spec.Pebble{Socket: "/n2"}, Port: 9000, MetricsPort: 9000}},
			[]want{{"opencti.nodes[0].metricsPort", "must differ from the node's port (both are 9000)"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := mustLoad(t, "minimal.yaml")
			in.OpenCTI.Nodes = tc.nodes
			err := in.WithDefaults().Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			checkProblems(t, err, tc.want)
		})
	}
}

func TestNodesDefaultToTheFirstNodesPorts(t *testing.T) {
	in := mustLoad(t, "minimal.yaml")
	in.OpenCTI.Nodes = []Node{{Name: "node-2", Pebble: spec.Pebble{Socket: "/n2"}}, {Name: "node-3", Pebble: spec.Pebble{Socket: "/n3"}, Port: 9000}}
	in = in.WithDefaults()
	if n := in.OpenCTI.Nodes[0]; n.Port != in.OpenCTI.Port || n.MetricsPort != in.OpenCTI.MetricsPort {
		t.Errorf("node-2 = %+v, want the first node's ports %d, %d", n, in.OpenCTI.Port, in.OpenCTI.MetricsPort)
	}
	if n := in.OpenCTI.Nodes[1]; n.Port != 9000 {
		t.Errorf("node-3 = %+v, want its own port 9000", n)
	}
}

// TestNodePlan: a further node runs the platform alone, on its own port and container,
// with everything else (data, secrets, version) as the first node's.
func TestNodePlan(t *testing.T) {
	in := mustLoad(t, "minimal.yaml")
	in.OpenCTI.Nodes = []Node{{Name: "node-2", Pebble: spec.Pebble{Socket: "/n2"}, Port: 9000, MetricsPort: 9001}}
	in = in.WithDefaults()
	first, err := NewPlan(Input{Instance: in, Secrets: baseSecrets()})
	if err != nil {
		t.Fatal(err)
	}
	on := in.OnNode(in.OpenCTI.Nodes[0])
	if on.Pebble.Socket != "/n2" || len(on.OpenCTI.Nodes) != 0 || in.OpenCTI.Nodes[0].Name != "node-2" {
		t.Fatalf("OnNode = %+v (and changed the instance: %+v)", on, in.OpenCTI.Nodes)
	}
	full, err := NewPlan(Input{Instance: on, Secrets: baseSecrets()})
	if err != nil {
		t.Fatal(err)
	}
	p := NodePlan(full)
	if names := slices.Sorted(maps.Keys(p.Layer.Services)); !slices.Equal(names, []string{PlatformService}) {
		t.Errorf("node services = %v, want the platform alone", names)
	}
	if len(full.Layer.Services) == 1 {
		t.Errorf("NodePlan changed the plan it was given")
	}
	env, firstEnv := p.Layer.Services[PlatformService].Environment, first.Layer.Services[PlatformService].Environment
	if env["APP__PORT"] != "9000" || env["APP__TELEMETRY__METRICS__EXPORTER_PROMETHEUS"] != "9001" {
		t.Errorf("node env ports: %s, %s", env["APP__PORT"], env["APP__TELEMETRY__METRICS__EXPORTER_PROMETHEUS"])
	}
	for k, v := range firstEnv {
		if k != "APP__PORT" && k != "APP__TELEMETRY__METRICS__EXPORTER_PROMETHEUS" && env[k] != v {
			t.Errorf("node env %s = %q, the first node's %q: nodes share everything but their ports", k, env[k], v)
		}
	}
}
