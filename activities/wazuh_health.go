package activities

import (
	"context"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/canonical/pebble/client"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/spec"
	"github.com/socflow/socflow/internal/wazuh"
	"github.com/socflow/socflow/internal/wazuhapi"
)

// ReadWazuhHealthInput is a deployed Wazuh instance and what reading it needs.
type ReadWazuhHealthInput struct {
	// Instance is the defaulted, validated spec as deployed.
	Instance wazuh.Instance `json:"instance"`
	// Secrets are the instance's generated-secret references (for the drift check).
	Secrets wazuh.InstanceSecrets `json:"secrets"`
	// APIPassword refers to the API user wazuh's password (ReconcileWazuhAPIUsers' Refs).
	APIPassword spec.SecretRef `json:"apiPassword"`
}

// WazuhComponentRead is one component of a Wazuh instance as read.
type WazuhComponentRead struct {
	// Name is indexer, <node>/manager, <node>/filebeat, <node>/rsyslog,
	// <node>/syslog-cert, <master>/exporter, <worker>/cluster or plan.
	Name string `json:"name"`
	// OK says it answers and runs as planned.
	OK bool `json:"ok"`
	// Serving is false when what is wrong stops the cluster from serving (the indexer,
	// the master's manager), true when it still serves with the fault.
	Serving bool `json:"serving"`
	// Reason is why it is not ok.
	Reason string `json:"reason,omitempty"`
	// Latency is how long reading it took.
	Latency time.Duration `json:"latency"`
}

// ReadWazuhHealthResult is every read of one health check.
type ReadWazuhHealthResult struct {
	// Components are the reads, in a fixed order: indexer, then node by node.
	Components []WazuhComponentRead `json:"components"`
	// Drift is how the nodes' files and layers differ from the spec's plan.
	Drift []layer.Change `json:"drift,omitempty"`
}

// ReadWazuhHealth reads a Wazuh instance once: the indexer, every node's manager (its
// API port), filebeat and rsyslog services, whether every worker has joined the master
// (and, when one has not, what the cluster logs say: a master that cannot decrypt its
// messages has another cluster key), and drift (a dry-run apply per node). It changes
// nothing; the health check judges and reports.
func (a *Activities) ReadWazuhHealth(ctx context.Context, in ReadWazuhHealthInput) (ReadWazuhHealthResult, error) {
	var res ReadWazuhHealthResult
	inst := in.Instance
	// record reads one component; read says why it is not ok and whether the cluster
	// still serves with that fault.
	record := func(name string, read func() (reason string, serving bool)) {
		start := time.Now()
		reason, serving := read()
		res.Components = append(res.Components, WazuhComponentRead{Name: name, OK: reason == "", Serving: serving || reason == "", Reason: reason, Latency: time.Since(start)})
	}
	// timed is record for a component whose fault always, or never, stops the serving.
	timed := func(name string, serving bool, read func() string) {
		record(name, func() (string, bool) { return read(), serving })
	}
	timed("indexer", false, func() string {
		p, err := a.ProbeOpenSearch(ctx, ProbeOpenSearchInput{OpenSearch: *inst.Integrations.Indexer, Requires: wazuh.Requirement, IndexPrefix: "wazuh", ProbeWindow: ProbeWindow{Window: time.Second}})
		switch {
		case err != nil:
			return ErrorText(err)
		case !p.Ready:
			return p.Reason
		}
		return ""
	})
	for k, n := range inst.Nodes {
		ep, epErr := a.pebble(n.Pebble)
		err := epErr
		var infos map[string]*client.ServiceInfo
		if err == nil {
			infos, err = ep.services(ctx, []string{wazuh.FilebeatService, wazuh.RsyslogService})
		}
		timed(n.Name+"/manager", k > 0, func() string {
			addr := n.APIAddr()
			c, err := net.DialTimeout("tcp", addr, DefaultCallTimeout)
			if err != nil {
				return "the API at " + addr + " does not answer: " + err.Error()
			}
			c.Close()
			return ""
		})
		for _, s := range inst.Shippers() {
			timed(n.Name+"/"+s, true, func() string {
				if err != nil {
					return err.Error()
				}
				if ok, why := activeOrNot(infos[s]); !ok {
					return why
				}
				return ""
			})
		}
		if inst.Wazuh.Syslog != nil {
			// The certificate the node serves, not the store's: a renewal not pushed yet
			// is drift, and the served one is what clients see expire (an expired one
			// stops the TLS listener serving).
			record(n.Name+"/syslog-cert", func() (string, bool) {
				err := epErr
				var pem []byte
				if err == nil {
					pem, err = ep.pull(ctx, wazuh.SyslogCertPath(inst, k))
				}
				if err != nil {
					return "cannot read the served certificate: " + ErrorText(err), true
				}
				return wazuh.CertExpiry(pem, time.Now(), wazuh.CertRenewBefore)
			})
		}
	}
	if inst.Wazuh.Exporter != nil {
		timed(inst.Master().Name+"/exporter", true, func() string {
			_, why := ReadExporterMetrics(ctx, wazuh.ExporterMetricsURL(inst))
			return why
		})
	}
	if len(inst.Nodes) > 1 {
		a.readWazuhCluster(ctx, in, timed)
	}
	for k := range inst.Nodes {
		dry, err := a.ApplyWazuhPlan(ctx, ApplyWazuhPlanInput{Instance: inst, Node: k, Secrets: in.Secrets, DryRun: true})
		if err != nil {
			res.Drift = append(res.Drift, layer.Change{Kind: layer.Changed, Service: inst.Nodes[k].Name, Fields: []string{"cannot compare: " + ErrorText(err)}})
			continue
		}
		for _, f := range dry.Files {
			res.Drift = append(res.Drift, layer.Change{Kind: layer.Changed, File: f, Fields: []string{"content"}})
		}
		res.Drift = append(res.Drift, dry.Changed...)
		for _, s := range dry.Added {
			res.Drift = append(res.Drift, layer.Change{Kind: layer.Added, Service: s})
		}
	}
	return res, nil
}

// readWazuhCluster reads, through the master's API, which workers have joined; for one
// that has not, the last cluster errors of both sides.
func (a *Activities) readWazuhCluster(ctx context.Context, in ReadWazuhHealthInput, timed func(string, bool, func() string)) {
	inst := in.Instance
	master := inst.Master()
	var joined []string
	var readErr string
	cert, err := a.ReadWazuhAPICert(ctx, ReadWazuhNodeInput{Instance: inst, Node: 0})
	if err == nil {
		login := WazuhAPILogin{URL: master.APIURL(), APICert: cert.PEM, User: "wazuh", Password: in.APIPassword}
		err = a.withWazuhAPI(ctx, login, func(api *wazuhapi.Client, token string) error {
			nodes, err := api.ClusterNodes(ctx, token)
			for _, n := range nodes {
				joined = append(joined, n.Name)
			}
			return err
		})
	}
	if err != nil {
		readErr = "cannot read the master's cluster nodes: " + ErrorText(err)
	}
	for k, n := range inst.Nodes[1:] {
		timed(n.Name+"/cluster", true, func() string {
			switch {
			case readErr != "":
				return readErr
			case slices.Contains(joined, n.Name):
				return ""
			}
			why := []string{"not joined to master " + master.Name}
			for _, side := range []int{0, k + 1} {
				if lg, err := a.ReadWazuhClusterLog(ctx, ReadWazuhNodeInput{Instance: inst, Node: side}); err == nil && len(lg.Errors) > 0 {
					why = append(why, inst.Nodes[side].Name+": "+lg.Errors[len(lg.Errors)-1])
				}
			}
			return strings.Join(why, "; ")
		})
	}
}
