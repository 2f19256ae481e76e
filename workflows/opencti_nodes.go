package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/socflow/socflow/activities"
	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/opencti"
)

// nodeService names a further node's platform service in results: "<node>/platform".
func nodeService(n opencti.Node) string { return n.Name + "/" + opencti.PlatformService }

// nodesUp is what bringNodesUp did.
type nodesUp struct {
	// restarted and started name the nodes' platforms it restarted and started (nodeService).
	restarted, started []string
}

// bringNodesUp pushes inst's plan to each of its further nodes (the platform alone)
// and brings their platforms up one after another: started when stopped, restarted
// when the plan changed their definition or restartAll says the first node's did,
// waited for until healthy, given their health check. Callers run it once the first
// node is healthy on inst's version, so no node starts while another holds the init
// lock or migrates: exactly one node, the first, ever migrates (PlatformNodesChange).
func bringNodesUp(ctx workflow.Context, tr *tracker, step string, inst opencti.Instance, refs opencti.InstanceSecrets, restartAll bool) (nodesUp, error) {
	var out nodesUp
	for _, n := range inst.OpenCTI.Nodes {
		on := inst.OnNode(n)
		var applied activities.ApplyOpenCTIPlanResult
		err := tr.runStep(ctx, step, pebbleOptions, a.ApplyOpenCTIPlan, activities.ApplyOpenCTIPlanInput{Instance: on, Secrets: refs, Node: true}, &applied)
		if err != nil {
			return out, wrapReason("cannot push the plan of node "+n.Name, err)
		}
		since := workflow.Now(ctx)
		changed := restartAll || slices.ContainsFunc(applied.Changed, func(c layer.Change) bool { return c.Service == opencti.PlatformService })
		if changed {
			var r activities.RestartPebbleServicesResult
			err = tr.runStep(ctx, step, restartOptions, a.RestartPebbleServices,
				activities.RestartPebbleServicesInput{Pebble: n.Pebble, Services: []string{opencti.PlatformService}, Since: since, Watched: true}, &r)
			if len(r.Restarted) > 0 {
				out.restarted = append(out.restarted, nodeService(n))
			} else if len(r.Started) > 0 {
				out.started = append(out.started, nodeService(n))
			}
		} else {
			var r activities.StartPebbleServicesResult
			err = tr.runStep(ctx, step, pebbleOptions, a.StartPebbleServices,
				activities.StartPebbleServicesInput{Pebble: n.Pebble, Services: []string{opencti.PlatformService}, Watched: true, Since: since}, &r)
			if len(r.Started) > 0 {
				out.started = append(out.started, nodeService(n))
			}
		}
		if err != nil {
			return out, wrapReason("cannot start the platform of node "+n.Name, err)
		}
		err = waitPlatformHealthy(ctx, activities.WaitOpenCTIHealthyInput{Instance: on, HealthAccessKey: refs.HealthAccessKey,
			PlatformDigest: applied.PlatformDigest, Since: since}, "node "+n.Name, 0, func(workflow.Context, activities.ProbeResult, error) {})
		if err != nil {
			return out, err
		}
		err = tr.runStep(ctx, step, pebbleOptions, a.AddOpenCTIReadyCheck, activities.AddOpenCTIReadyCheckInput{Instance: on, HealthAccessKey: refs.HealthAccessKey}, nil)
		if err != nil {
			return out, fmt.Errorf("cannot add the health check of node %s: %w", n.Name, err)
		}
	}
	return out, nil
}

// stopNodes stops the platform of each further node of inst (before the first node's,
// so the first is the last to hold the data).
func stopNodes(ctx workflow.Context, tr *tracker, step string, nodes []opencti.Node) ([]string, error) {
	var stopped []string
	for _, n := range nodes {
		var r activities.StopPebbleServicesResult
		err := tr.runStep(ctx, step, pebbleOptions, a.StopPebbleServices,
			activities.StopPebbleServicesInput{Pebble: n.Pebble, Services: []string{opencti.PlatformService}}, &r)
		if err != nil {
			return stopped, wrapReason("cannot stop the platform of node "+n.Name, err)
		}
		if len(r.Stopped) > 0 {
			stopped = append(stopped, nodeService(n))
		}
	}
	return stopped, nil
}
