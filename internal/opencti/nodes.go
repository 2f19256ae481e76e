package opencti

import (
	"fmt"
	"maps"
	"strings"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
)

// Node is one of the platform's further nodes: another container running the same
// platform against the same data, as OpenCTI scales out. The instance's own pebble is
// its first node, which also runs the workers and which connectors call; the others
// run the platform alone, and start only once the first is healthy, so that exactly
// one node (the first) holds the init lock and migrates.
type Node struct {
	// Name names the node in statuses and results; 2-40 lowercase letters, digits or dashes.
	Name string `json:"name"`
	// Pebble is how to reach the node's container's Pebble API.
	Pebble spec.Pebble `json:"pebble"`
	// Port is the node's APP__PORT (default: opencti.port).
	Port int `json:"port,omitempty"`
	// MetricsPort is the node's Prometheus exporter port (default: opencti.metricsPort).
	MetricsPort int `json:"metricsPort,omitempty"`
}

// withDefaults gives the node the first node's ports where it sets none: nodes in
// containers of their own listen where the first one does.
func (n Node) withDefaults(o Settings) Node {
	spec.Default(&n.Port, o.Port)
	spec.Default(&n.MetricsPort, o.MetricsPort)
	return n
}

// OnNode is the instance as node n runs it: n's container and ports, no further
// nodes and no connectors, everything else (version, data, secrets) the same. The
// activities that push, start, wait for and check a platform take it unchanged.
func (i Instance) OnNode(n Node) Instance {
	out := i.clone()
	out.Pebble = n.Pebble
	out.OpenCTI.Port, out.OpenCTI.MetricsPort = n.Port, n.MetricsPort
	out.OpenCTI.Nodes, out.Connectors = nil, nil
	return out
}

// NodePlan is the plan of a further node: the instance's plan for that node with its
// platform alone, for workers run beside the first node only.
func NodePlan(p Plan) Plan {
	out := p
	out.Layer.Services = maps.Clone(p.Layer.Services)
	for name := range out.Layer.Services {
		if name != PlatformService {
			delete(out.Layer.Services, name)
		}
	}
	if t, ok := p.Layer.LogTargets[layer.LokiTarget]; ok {
		out.Layer = out.Layer.WithLoki(t.Location, t.Labels)
	}
	return out
}

// NodeNames names the instance's further nodes in the spec's order.
func (i Instance) NodeNames() []string {
	names := make([]string, len(i.OpenCTI.Nodes))
	for k, n := range i.OpenCTI.Nodes {
		names[k] = n.Name
	}
	return names
}

// nodes checks opencti.nodes: each node's fields, names unique, and each in a
// container of its own, other than the first node's (a container runs one platform
// service).
func (c *checker) nodes(i Instance) {
	seen := map[string]int{}
	containers := map[spec.Pebble]string{i.Pebble: "pebble (the first node)"}
	for k, n := range i.OpenCTI.Nodes {
		at := fmt.Sprintf("opencti.nodes[%d].", k)
		if c.Name(at+"name", n.Name, "name the node, e.g. node-2", "pick a name like node-2") {
			if first, dup := seen[n.Name]; dup {
				c.Add(at+"name", fmt.Sprintf("%q is already the name of opencti.nodes[%d]", n.Name, first), "give each node its own name")
			} else {
				seen[n.Name] = k
			}
		}
		c.PebbleAt(at+"pebble", n.Pebble)
		if other, dup := containers[n.Pebble]; dup && (n.Pebble.Socket != "" || n.Pebble.URL != "") {
			c.Add(at+"pebble", "is the container of "+other,
				"run each node in its own container: every node's Pebble service is named "+PlatformService)
		} else if !dup {
			containers[n.Pebble] = strings.TrimSuffix(at, ".")
		}
		c.Port(at+"port", n.Port)
		c.Port(at+"metricsPort", n.MetricsPort)
		if n.Port == n.MetricsPort && n.Port != 0 {
			c.Add(at+"metricsPort", fmt.Sprintf("must differ from the node's port (both are %d)", n.Port), "use another port for the node's metricsPort")
		}
	}
}
