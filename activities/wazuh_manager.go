package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/canonical/pebble/client"
	"go.temporal.io/sdk/activity"

	"github.com/socflow/socflow/internal/layer"
	"github.com/socflow/socflow/internal/wazuh"
)

// EnsureWazuhSecretsInput names the instance and the secrets its spec already gives.
type EnsureWazuhSecretsInput struct {
	// Instance is the instance name: the store key.
	Instance string `json:"instance"`
	// Given are the spec's references (wazuh.SecretTable.Given); empty ones are
	// generated once and kept in the secret store.
	Given wazuh.InstanceSecrets `json:"given"`
}

// EnsureWazuhSecretsResult holds references only, plus what this call generated.
type EnsureWazuhSecretsResult struct {
	// Secrets are the references the rest of the deploy uses.
	Secrets wazuh.InstanceSecrets `json:"secrets"`
	// Generated names the secrets this call created (empty on every later run).
	Generated []string `json:"generated,omitempty"`
}

// EnsureWazuhSecrets returns the references of the cluster key and the agent
// password, generating missing ones once: every node, and every later reconcile, gets
// the same key, which is what lets workers join the master.
func (a *Activities) EnsureWazuhSecrets(ctx context.Context, in EnsureWazuhSecretsInput) (EnsureWazuhSecretsResult, error) {
	var res EnsureWazuhSecretsResult
	var err error
	res.Generated, err = ensureSecrets(a, in.Instance, wazuh.SecretTable, &in.Given, &res.Secrets)
	return res, err
}

// ApplyWazuhPlanInput is one node of a validated Wazuh instance.
type ApplyWazuhPlanInput struct {
	// Instance is the defaulted, validated spec.
	Instance wazuh.Instance `json:"instance"`
	// Node is the index of the node to apply (0 is the master).
	Node int `json:"node"`
	// Secrets are the instance's generated-secret references.
	Secrets wazuh.InstanceSecrets `json:"secrets"`
	// DryRun computes what the apply would change and pushes nothing.
	DryRun bool `json:"dryRun,omitempty"`
}

// ApplyWazuhPlanResult says what the apply changed, without any secret value.
type ApplyWazuhPlanResult struct {
	// Files are the plan's files whose content changed (all of them on a first apply).
	Files []string `json:"files,omitempty"`
	// PebbleLayerChanges says which services the layer added, changed or left alone.
	PebbleLayerChanges
	// Restart are the services to (re)start for the changes to take effect: those
	// added or changed in the layer and those whose files changed, in start order.
	Restart []string `json:"restart,omitempty"`
}

// ApplyWazuhPlan plans one node from the ossec.conf its container holds now (the
// image's or the configuration repository's: socflow edits it, never replaces it),
// pushes the files whose content differs and combines the layer. It starts nothing:
// the result names the services to restart, so an unchanged node is left running.
// A base ossec.conf that is not XML is refused before anything is pushed, naming its
// line; the manager then keeps running what it runs.
func (a *Activities) ApplyWazuhPlan(ctx context.Context, in ApplyWazuhPlanInput) (ApplyWazuhPlanResult, error) {
	var res ApplyWazuhPlanResult
	node, ep, err := a.wazuhNode(ReadWazuhNodeInput{Instance: in.Instance, Node: in.Node})
	if err != nil {
		return res, err
	}
	inst, w := in.Instance, in.Instance.Wazuh
	values, err := wazuh.SecretTable.Resolve(&inst, &in.Secrets, a.resolve)
	if err != nil {
		return res, classify(err)
	}
	marker := node.Path(path.Join(w.Home, ".socflow-instance"))
	if !in.DryRun {
		if err := ep.ensureOwner(ctx, inst.Name, marker, wazuhOwner); err != nil {
			return res, classify(err)
		}
	}
	confPath := node.Path(path.Join(w.Home, wazuh.OssecConf))
	base, err := ep.pull(ctx, confPath)
	if err != nil {
		// A repository that stops shipping ossec.conf removes it with the rest of its
		// files: the last one the manager accepted is then the base.
		if good, gerr := ep.pull(ctx, confPath+goodConfSuffix); gerr == nil && len(good) > 0 {
			base, err = good, nil
		}
	}
	if err != nil {
		return res, classify(pebbleError("cannot read "+confPath+" (the manager's configuration, from the image or the configuration repository)", err))
	}
	p, err := wazuh.NodePlan(inst, in.Node, values, base)
	var pe *wazuh.ParseError
	if errors.As(err, &pe) {
		restored := ""
		if !in.DryRun {
			restored = ep.restoreGoodConf(ctx, confPath)
			if inst.Wazuh.ConfigRepo != nil {
				// The repository's var/ossec must be applied (and refused) again until
				// it is fixed, not skipped as applied because its marker says so.
				_ = ep.call(ctx, func(pc *client.Client) error {
					return pc.RemovePath(&client.RemovePathOptions{Path: markerPath(wazuh.RepoMarkerDir(inst, in.Node), "var/ossec")})
				})
			}
		}
		return res, permanent(ErrTypeBadConfig, fmt.Errorf("cannot configure node %s: %s in the container is not valid XML (%v); nothing was reloaded, the manager keeps running its last good configuration%s; fix the file in the configuration repository (or the image), then run again", node.Name, confPath, pe.Err, restored))
	}
	if err != nil {
		return res, permanent(ErrTypeInvalidInput, err)
	}
	drift, err := ep.fileDrift(ctx, p.Files)
	if err != nil {
		return res, classify(err)
	}
	var changed []layer.File
	for _, d := range drift {
		res.Files = append(res.Files, d.File)
		i := slices.IndexFunc(p.Files, func(f layer.File) bool { return f.Path == d.File })
		changed = append(changed, p.Files[i])
	}
	if !in.DryRun {
		if _, err := ep.pushFiles(ctx, p.Dirs, append(changed, layer.File{Path: marker, Content: []byte(inst.Name + "\n"), Perm: 0o644})); err != nil {
			return res, err
		}
	}
	owns := func(name string, svc layer.Service) bool { return wazuhOwner(name, svc) == inst.Name }
	res.PebbleLayerChanges, err = ep.applyLayer(ctx, pebbleLayer{label: wazuh.LayerLabel, layer: p.Layer, owns: owns, mask: wazuh.Mask, dryRun: in.DryRun})
	if err != nil {
		return res, classify(err)
	}
	res.Restart = wazuhRestarts(node, w, res)
	if !in.DryRun && in.Node == wazuh.ExporterNode && w.Exporter == nil {
		retired, err := ep.retireExporter(ctx)
		if err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, retired...)
	}
	return res, nil
}

// retireExporter takes the exporter out of a master whose spec no longer sets
// wazuh.exporter: its service retired in the `prometheus` layer (startup disabled) and
// stopped. A master that never ran one, or has retired it, is left as it is: a dry run
// finds nothing to remove, and no layer is pushed.
func (ep pebbleEndpoint) retireExporter(ctx context.Context) ([]string, error) {
	owns := func(name string, _ layer.Service) bool { return name == wazuh.ExporterService }
	pl := pebbleLayer{label: wazuh.ExporterLayerLabel, layer: layer.Layer{Services: map[string]layer.Service{}}, owns: owns, mask: wazuh.ExporterMask, dryRun: true}
	ch, err := ep.applyLayer(ctx, pl)
	if err != nil || len(ch.Removed) == 0 {
		return nil, classify(err)
	}
	pl.dryRun = false
	if ch, err = ep.applyLayer(ctx, pl); err != nil {
		return nil, classify(err)
	}
	infos, err := ep.services(ctx, ch.Removed)
	if err != nil {
		return nil, classify(err)
	}
	if running(infos[wazuh.ExporterService]) {
		if err := ep.stopAndWait(ctx, wazuh.ExporterService); err != nil {
			return nil, err
		}
	}
	return ch.Removed, nil
}

// wazuhRestarts are the services an apply's changes reach: a service whose
// definition changed, or one reading a file that changed (by the file's directory).
func wazuhRestarts(n wazuh.Node, w wazuh.Settings, res ApplyWazuhPlanResult) []string {
	need := slices.Clone(res.Added)
	for _, c := range res.Changed {
		need = append(need, c.Service)
	}
	for _, f := range res.Files {
		switch {
		case strings.HasPrefix(f, n.Path(w.Home)+"/"):
			need = append(need, wazuh.ManagerService)
		case strings.HasPrefix(f, n.Path(w.FilebeatDir)+"/"):
			need = append(need, wazuh.FilebeatService)
		case strings.HasPrefix(f, n.Path(w.RsyslogDir)+"/"):
			need = append(need, wazuh.RsyslogService)
		}
	}
	return wazuh.StartOrdered(need...)
}

// wazuhOwner is the instance a service of a container's plan belongs to.
func wazuhOwner(_ string, svc layer.Service) string { return svc.Environment[wazuh.InstanceEnv] }

// ReloadWazuhManagerInput names the node whose manager to (re)start.
type ReloadWazuhManagerInput struct {
	// Instance is the defaulted, validated spec.
	Instance wazuh.Instance `json:"instance"`
	// Node is the node's index.
	Node int `json:"node"`
}

// ReloadWazuhManagerResult is what the manager said.
type ReloadWazuhManagerResult struct {
	// Output are the last lines `wazuh-control reload` printed.
	Output string `json:"output,omitempty"`
}

// wazuhReloadWindow bounds one reload: the real manager starts its daemons in about
// ten seconds; a minute more covers a slow disk, not a hang.
const wazuhReloadWindow = 90 * time.Second

// goodConfSuffix names the copy of the last ossec.conf the manager accepted.
const goodConfSuffix = ".socflow-good"

// ReloadWazuhManager runs the node's `wazuh` service (`wazuh-control reload`: it checks
// ossec.conf, then restarts the daemons, which detach) and waits for it to end and the
// API port to answer. A refused configuration is a BadConfig naming the manager's own
// error lines; the daemons keep running the last good configuration, and socflow puts
// that file back so a later restart does not pick up the refused one. An accepted one
// becomes the last good copy.
func (a *Activities) ReloadWazuhManager(ctx context.Context, in ReloadWazuhManagerInput) (ReloadWazuhManagerResult, error) {
	var res ReloadWazuhManagerResult
	node, ep, err := a.wazuhNode(ReadWazuhNodeInput{Instance: in.Instance, Node: in.Node})
	if err != nil {
		return res, err
	}
	w := in.Instance.Wazuh
	svc := []string{wazuh.ManagerService}
	if err := ep.waitNotActive(ctx, wazuh.ManagerService, wazuhReloadWindow); err != nil {
		return res, err
	}
	since := time.Now()
	// A reload that fails its check at once ends within Pebble's okay delay, which
	// Pebble reports as a failed start; the service's state and output below tell.
	startErr := ep.call(ctx, func(pc *client.Client) error {
		id, err := pc.Start(&client.ServiceOptions{Names: svc})
		if err != nil {
			return err
		}
		_, err = pc.WaitChange(id, &client.WaitChangeOptions{Timeout: PebbleCallTimeout - time.Second})
		return err
	})
	if startErr != nil && !strings.Contains(startErr.Error(), "exited quickly") {
		return res, classify(pebbleError("cannot run wazuh-control reload", startErr))
	}
	if err := ep.waitNotActive(ctx, wazuh.ManagerService, wazuhReloadWindow); err != nil {
		return res, err
	}
	infos, err := ep.services(ctx, svc)
	if err != nil {
		return res, classify(err)
	}
	res.Output = ep.logsSince(ctx, svc, since)
	conf := node.Path(path.Join(w.Home, wazuh.OssecConf))
	if info := infos[wazuh.ManagerService]; info == nil || info.Current == client.StatusError {
		refused := strings.TrimSpace(res.Output)
		if lines := errorLines(res.Output); len(lines) > 0 {
			refused = strings.Join(lines, " | ")
		}
		return res, permanent(ErrTypeBadConfig, fmt.Errorf("the wazuh manager on node %s refused its configuration: %s (the daemons keep running the last good configuration%s); fix the file and reconcile again",
			node.Name, refused, ep.restoreGoodConf(ctx, conf)))
	}
	addr := node.APIAddr()
	if err := waitTCP(ctx, addr, wazuhReloadWindow); err != nil {
		return res, fmt.Errorf("wazuh-control reload ended but the API at %s does not answer: %w; output: %s", addr, err, res.Output)
	}
	if cur, err := ep.pull(ctx, conf); err == nil {
		if _, err := ep.pushFiles(ctx, nil, []layer.File{{Path: conf + goodConfSuffix, Content: cur, Perm: 0o640}}); err != nil {
			return res, err
		}
	}
	return res, nil
}

// restoreGoodConf puts the last ossec.conf the manager accepted back in place of a
// refused one, so a later restart does not pick the refused one up; it says what it
// did, for the error message.
func (ep pebbleEndpoint) restoreGoodConf(ctx context.Context, conf string) string {
	good, err := ep.pull(ctx, conf+goodConfSuffix)
	if err != nil || len(good) == 0 {
		return "; there is no earlier good ossec.conf to put back"
	}
	if _, err := ep.pushFiles(ctx, nil, []layer.File{{Path: conf, Content: good, Perm: 0o640}}); err != nil {
		return "; socflow could not put the last good ossec.conf back: " + err.Error()
	}
	return "; socflow put the last good ossec.conf back"
}

// errorLines are the ERROR and CRITICAL lines of the manager's output or logs, which
// say what it refused or why a node is out of the cluster.
func errorLines(text string) []string {
	var keep []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "ERROR") || strings.Contains(l, "CRITICAL") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return keep
}

// waitNotActive waits until a one-shot service has ended (or never ran).
func (ep pebbleEndpoint) waitNotActive(ctx context.Context, name string, window time.Duration) error {
	return waitUntil(ctx, name+" running", window, func() (bool, error) {
		infos, err := ep.services(ctx, []string{name})
		if err != nil {
			return false, classify(err)
		}
		info := infos[name]
		return info == nil || info.Current != client.StatusActive, nil
	}, fmt.Errorf("%s still running after %s", name, window))
}

// logsSince is the services' output since t, one line per entry.
func (ep pebbleEndpoint) logsSince(ctx context.Context, services []string, t time.Time) string {
	entries, err := ep.logs(ctx, services, 200)
	if err != nil {
		return "(cannot read the output: " + err.Error() + ")"
	}
	var lines []string
	for _, e := range entries {
		if !e.Time.Before(t.Add(-time.Second)) {
			lines = append(lines, strings.TrimRight(e.Message, "\n"))
		}
	}
	return strings.Join(lines, "\n")
}

// waitTCP waits until addr accepts a connection; past window it returns the last
// dial error.
func waitTCP(ctx context.Context, addr string, window time.Duration) error {
	var last error
	err := waitUntil(ctx, "waiting for "+addr, window, func() (bool, error) {
		d := net.Dialer{Timeout: 2 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if last = err; err != nil {
			return false, nil
		}
		return true, c.Close()
	}, nil)
	if err == nil && last != nil {
		return last
	}
	return err
}

// waitUntil polls done twice a second, heartbeating beat between tries, until it
// reports true or an error; past window it returns timedOut (nil: no error).
func waitUntil(ctx context.Context, beat string, window time.Duration, done func() (bool, error), timedOut error) error {
	deadline := time.Now().Add(window)
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return timedOut
		}
		activity.RecordHeartbeat(ctx, beat)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ReadWazuhNodeInput names one node of an instance.
type ReadWazuhNodeInput struct {
	// Instance is the defaulted, validated spec.
	Instance wazuh.Instance `json:"instance"`
	// Node is the node's index.
	Node int `json:"node"`
}

// ReadWazuhAPICertResult is a node's API certificate.
type ReadWazuhAPICertResult struct {
	// PEM is the certificate the manager generated at its first start (public).
	PEM string `json:"pem"`
}

// ReadWazuhAPICert reads the certificate the node's API serves, from the container,
// so socflow pins exactly it instead of trusting whatever answers on the port.
func (a *Activities) ReadWazuhAPICert(ctx context.Context, in ReadWazuhNodeInput) (ReadWazuhAPICertResult, error) {
	node, ep, err := a.wazuhNode(in)
	if err != nil {
		return ReadWazuhAPICertResult{}, err
	}
	p := node.Path(path.Join(in.Instance.Wazuh.Home, wazuh.APICert))
	b, err := ep.pull(ctx, p)
	if err != nil {
		return ReadWazuhAPICertResult{}, classify(pebbleError("cannot read the API certificate "+p, err))
	}
	return ReadWazuhAPICertResult{PEM: string(b)}, nil
}

// ReadWazuhClusterLogResult holds a node's latest cluster errors.
type ReadWazuhClusterLogResult struct {
	// Errors are the last ERROR (and CRITICAL) lines of logs/cluster.log, oldest first.
	Errors []string `json:"errors,omitempty"`
}

// wazuhClusterErrors is how many error lines a diagnosis keeps: the cause repeats
// every retry, so the last few say it.
const wazuhClusterErrors = 3

// ReadWazuhClusterLog reads the node's cluster log for why a worker does not join:
// the master logs a key it cannot decrypt with, the worker that the master closed the
// connection.
func (a *Activities) ReadWazuhClusterLog(ctx context.Context, in ReadWazuhNodeInput) (ReadWazuhClusterLogResult, error) {
	node, ep, err := a.wazuhNode(in)
	if err != nil {
		return ReadWazuhClusterLogResult{}, err
	}
	b, err := ep.pull(ctx, node.Path(path.Join(in.Instance.Wazuh.Home, "logs/cluster.log")))
	if err != nil {
		return ReadWazuhClusterLogResult{}, nil // no log yet: nothing to say
	}
	lines := errorLines(string(b))
	return ReadWazuhClusterLogResult{Errors: lines[max(0, len(lines)-wazuhClusterErrors):]}, nil
}

// wazuhNode opens node in.Node's Pebble endpoint.
func (a *Activities) wazuhNode(in ReadWazuhNodeInput) (wazuh.Node, pebbleEndpoint, error) {
	if in.Node < 0 || in.Node >= len(in.Instance.Nodes) {
		return wazuh.Node{}, pebbleEndpoint{}, permanent(ErrTypeInvalidInput, fmt.Errorf("no node %d in a %d-node instance", in.Node, len(in.Instance.Nodes)))
	}
	node := in.Instance.Nodes[in.Node]
	ep, err := a.pebble(node.Pebble)
	return node, ep, classify(err)
}

// RetireWazuhNodeInput names a node an instance no longer has.
type RetireWazuhNodeInput struct {
	// Instance is the defaulted spec that still had the node (its Pebble, root, home).
	Instance wazuh.Instance `json:"instance"`
	// Node is the node's index in Instance.
	Node int `json:"node"`
}

// RetireWazuhNodeResult says what retiring the node did.
type RetireWazuhNodeResult struct {
	// Retired are the services the node's plan no longer starts.
	Retired []string `json:"retired,omitempty"`
	// Stopped are the shippers that were running and were stopped.
	Stopped []string `json:"stopped,omitempty"`
	// Output is what `wazuh-control stop` printed.
	Output string `json:"output,omitempty"`
}

// RetireWazuhNode takes a node out of its instance: its services are retired in the
// Pebble plan (startup disabled, so a restarted Pebble starts none of them again),
// filebeat and rsyslog are stopped, and the manager's daemons — which detached from
// the `wazuh` service, so stopping that service would leave them running — are
// stopped with `wazuh-control stop`. The node's files (queues, logs, keys) are kept.
// Every part is idempotent: a retry, or a node already retired, changes nothing.
func (a *Activities) RetireWazuhNode(ctx context.Context, in RetireWazuhNodeInput) (RetireWazuhNodeResult, error) {
	var res RetireWazuhNodeResult
	node, ep, err := a.wazuhNode(ReadWazuhNodeInput{Instance: in.Instance, Node: in.Node})
	if err != nil {
		return res, err
	}
	inst := in.Instance
	owns := func(name string, svc layer.Service) bool { return wazuhOwner(name, svc) == inst.Name }
	ch, err := ep.applyLayer(ctx, pebbleLayer{label: wazuh.LayerLabel, layer: layer.Layer{Services: map[string]layer.Service{}}, owns: owns, mask: wazuh.Mask})
	if err != nil {
		return res, classify(err)
	}
	res.Retired = ch.Removed
	stopped, err := a.StopPebbleServices(ctx, StopPebbleServicesInput{Pebble: node.Pebble, Services: inst.Shippers()})
	if err != nil {
		return res, err
	}
	res.Stopped = stopped.Stopped
	ctl := node.Path(path.Join(inst.Wazuh.Home, "bin/wazuh-control"))
	var out bytes.Buffer
	err = ep.call(ctx, func(pc *client.Client) error {
		p, err := pc.Exec(&client.ExecOptions{Command: []string{ctl, "stop"}, Timeout: PebbleCallTimeout - time.Second, Stdout: &out, Stderr: &out})
		if err != nil {
			return err
		}
		return p.Wait()
	})
	res.Output = strings.TrimSpace(out.String())
	if err != nil {
		return res, classify(pebbleError(fmt.Sprintf("cannot stop the manager of node %s (%s stop: %s)", node.Name, ctl, res.Output), err))
	}
	return res, nil
}
